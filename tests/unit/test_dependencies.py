from unstuck import dependencies


def test_finds_requirement_files_but_not_inside_virtualenvs_or_vcs(tmp_path):
    for rel in ["app/requirements.txt", "requirements-dev.txt", "pyproject.toml", ".venv/lib/pkg/requirements.txt",
                "venv/requirements.txt", "node_modules/x/pyproject.toml", ".git/requirements.txt", "app/main.py"]:
        path = tmp_path / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("")
    found = [p.relative_to(tmp_path).as_posix() for p in dependencies.find(tmp_path)]
    assert found == ["app/requirements.txt", "pyproject.toml", "requirements-dev.txt"]


def test_pyproject_dependencies_become_pip_arguments(tmp_path):
    pyproject = tmp_path / "pyproject.toml"
    pyproject.write_text('[project]\nname = "x"\ndependencies = ["six==1.16.0"]\n')
    assert dependencies.requirements(pyproject) == ["six==1.16.0"]
    pyproject.write_text('[project]\nname = "x"\n')
    assert dependencies.requirements(pyproject) is None
    assert dependencies.requirements(tmp_path / "requirements.txt") == ["-r", str(tmp_path / "requirements.txt")]
