from pathlib import Path

import pytest

from unstuck import config
from unstuck.config import ConfigError


def load(tmp_path: Path, **env):
    return config.load({"APP_DIR": str(tmp_path), **env})


def test_defaults(tmp_path):
    s = load(tmp_path)
    assert (s.app_module, s.port, s.host, s.reloader, s.grace) == ("", 8000, "0.0.0.0", "unstuck", 2.0)
    assert s.force_polling is None
    assert (s.warm, s.livereload, s.debug, s.debug_port) == (True, False, False, 5678)
    assert "*.py" in s.watch_patterns and "*.log" in s.ignore_patterns
    assert {"uv.lock", "poetry.lock", ".python-version", "requirements*.txt", "*.toml"} <= set(s.watch_patterns)
    assert s.project_env == Path("/home/app/.unstuck/venv")
    assert s.error_pages == "on"


@pytest.mark.parametrize("value, expected", [("1", "on"), ("0", "off"), ("off", "off"), ("locals", "locals"),
                                             (" LOCALS ", "locals"), ("", "on")])
def test_error_pages(tmp_path, value, expected):
    assert load(tmp_path, UNSTUCK_ERROR_PAGES=value).error_pages == expected


@pytest.mark.parametrize(
    "env, needle",
    [
        ({"PORT": "abc"}, "PORT='abc' is not a port number; use an integer from 1 to 65535"),
        ({"PORT": "70000"}, "PORT='70000'"),
        ({"PORT": "0"}, "PORT='0'"),
        ({"APP_MODULE": "app/main.py"}, "APP_MODULE='app/main.py' is not an import string"),
        ({"APP_MODULE": "app.main"}, "use 'package.module:attribute'"),
        ({"UNSTUCK_RELOADER": "gunicorn"}, "UNSTUCK_RELOADER='gunicorn' is not accepted; use one of: unstuck, uvicorn"),
        ({"UNSTUCK_GRACE": "soon"}, "UNSTUCK_GRACE='soon' is not a number"),
        ({"UNSTUCK_GRACE": "-1"}, "UNSTUCK_GRACE='-1' is out of range"),
        ({"UNSTUCK_POLL": "maybe"}, "UNSTUCK_POLL='maybe' is not accepted; use 1, 0 or auto"),
        ({"LOG_LEVEL": "loud"}, "LOG_LEVEL='loud' is not accepted"),
        ({"UNSTUCK_WATCH": "src/*.py"}, "UNSTUCK_WATCH: 'src/*.py' contains '/'"),
        ({"HOST": "a b"}, "HOST='a b' is not an address"),
        ({"UNSTUCK_DEBUG": "maybe"}, "UNSTUCK_DEBUG='maybe' is not accepted; use 1 or 0"),
        ({"UNSTUCK_DEBUG_PORT": "debug"}, "UNSTUCK_DEBUG_PORT='debug' is not a port number"),
        ({"UNSTUCK_DEBUG_PORT": "8000"}, "UNSTUCK_DEBUG_PORT=8000 is the app's PORT; use another port"),
        ({"UNSTUCK_LIVERELOAD": "auto"}, "UNSTUCK_LIVERELOAD='auto' is not accepted; use 1 or 0"),
        ({"UNSTUCK_PROJECT_ENV": ".venv"}, "UNSTUCK_PROJECT_ENV='.venv' is relative; use an absolute path"),
        ({"UNSTUCK_POLL_MS": "10"}, "UNSTUCK_POLL_MS='10' is out of range; set it to milliseconds between 50 and 10000"),
        ({"UNSTUCK_POLL_SAFETY_MS": "200"}, "UNSTUCK_POLL_SAFETY_MS='200' is out of range; set it to milliseconds "
                                            "between 1000 and 600000, or 0 to turn it off"),
        ({"UNSTUCK_POLL_SAFETY_MS": "often"}, "UNSTUCK_POLL_SAFETY_MS='often' is not a number"),
        ({"UNSTUCK_WARM": "2"}, "UNSTUCK_WARM='2' is not accepted; use 1 or 0"),
        ({"UNSTUCK_APP_LAYER": "yes please"}, "UNSTUCK_APP_LAYER='yes please' is not accepted; use 1 or 0"),
        ({"UNSTUCK_ERROR_PAGES": "vars"}, "UNSTUCK_ERROR_PAGES='vars' is not accepted; use 1, 0 or locals"),
    ],
)
def test_bad_values_name_the_variable_and_the_fix(tmp_path, env, needle):
    with pytest.raises(ConfigError) as info:
        load(tmp_path, **env)
    message = str(info.value)
    assert needle in message
    assert "\n" not in message


def test_missing_app_dir_says_how_to_mount(tmp_path):
    with pytest.raises(ConfigError, match=r"APP_DIR='.*nope' does not exist in the container; mount your project"):
        config.load({"APP_DIR": str(tmp_path / "nope")})


def test_relative_app_dir_rejected(tmp_path):
    with pytest.raises(ConfigError, match="APP_DIR='work' is relative"):
        config.load({"APP_DIR": "work"}, check_dirs=False)


def test_patterns_and_flags_parse(tmp_path):
    s = load(tmp_path, UNSTUCK_WATCH="*.py, *.sql", UNSTUCK_IGNORE="data", UNSTUCK_POLL="1", UNSTUCK_GRACE="0.5")
    assert s.watch_patterns == ("*.py", "*.sql")
    assert s.ignore_patterns == ("data",)
    assert s.force_polling is True and s.grace == 0.5


@pytest.mark.parametrize("value, expected", [
    ("", ""), ("  ", ""), ("app.main:app", "app.main:app"), ("pkg.factory:create_app()", "pkg.factory:create_app()"),
])
def test_app_module_may_be_empty_or_a_factory_call(tmp_path, value, expected):
    assert load(tmp_path, APP_MODULE=value).app_module == expected


def test_app_module_factory_call_takes_no_arguments(tmp_path):
    with pytest.raises(ConfigError, match=r"APP_MODULE='pkg:create_app\(1\)' is not an import string"):
        load(tmp_path, APP_MODULE="pkg:create_app(1)")


def test_unstuck_requirements_names_existing_files_relative_to_app_dir(tmp_path):
    (tmp_path / "requirements").mkdir()
    (tmp_path / "requirements/local.txt").write_text("django\n")
    (tmp_path / "pyproject.toml").write_text("[project]\n")
    assert load(tmp_path).requirements == ()
    assert load(tmp_path, UNSTUCK_REQUIREMENTS=" requirements/local.txt, pyproject.toml ,").requirements == (
        "requirements/local.txt", "pyproject.toml")
    (tmp_path / "poetry.lock").write_text("")
    assert load(tmp_path, UNSTUCK_REQUIREMENTS="poetry.lock").requirements == ("poetry.lock",)


@pytest.mark.parametrize("value, needle", [
    ("requirements/missing.txt", "UNSTUCK_REQUIREMENTS: 'requirements/missing.txt' does not exist under "),
    ("/etc/requirements.txt", "UNSTUCK_REQUIREMENTS: '/etc/requirements.txt' is not a path inside APP_DIR"),
    ("../requirements.txt", "is not a path inside APP_DIR; use paths relative to"),
    ("setup.py", "UNSTUCK_REQUIREMENTS: 'setup.py' is not a requirements file"),
])
def test_a_bad_unstuck_requirements_is_one_line_that_says_the_fix(tmp_path, value, needle):
    with pytest.raises(ConfigError) as info:
        load(tmp_path, UNSTUCK_REQUIREMENTS=value)
    assert needle in str(info.value) and "\n" not in str(info.value)


def test_the_safety_poll_is_every_5_s_unless_set_and_0_turns_it_off(tmp_path):
    assert load(tmp_path).safety_poll_ms == 5000
    assert load(tmp_path, UNSTUCK_POLL_SAFETY_MS="2000").safety_poll_ms == 2000
    assert load(tmp_path, UNSTUCK_POLL_SAFETY_MS="0").safety_poll_ms == 0


def test_the_release_may_run_10_minutes_unless_set_and_0_means_no_limit(tmp_path):
    assert load(tmp_path).release_timeout == 600
    assert load(tmp_path, UNSTUCK_RELEASE_TIMEOUT="30").release_timeout == 30
    assert load(tmp_path, UNSTUCK_RELEASE_TIMEOUT="0").release_timeout == 0
    for bad in ("ten", "-1", "100000"):
        with pytest.raises(ConfigError) as info:
            load(tmp_path, UNSTUCK_RELEASE_TIMEOUT=bad)
        assert str(info.value).startswith(f"UNSTUCK_RELEASE_TIMEOUT={bad!r} is ") and "(0: no limit)" in str(info.value)
