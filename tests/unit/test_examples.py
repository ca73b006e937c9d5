"""The README shows the "use it on your project" snippets exactly as they are in examples/ (which the
integration tests run), and they stay as short as promised."""

from repo import REPO

README = (REPO / "README.md").read_text()


def test_the_readme_shows_the_snippets_that_are_tested():
    for name in ("compose.yaml", "devcontainer.json"):
        text = (REPO / "examples" / name).read_text().strip()
        assert text in README, f"README.md does not show examples/{name} as it is"


def test_the_snippets_are_at_most_15_lines():
    for name in ("compose.yaml", "devcontainer.json"):
        assert len((REPO / "examples" / name).read_text().strip().splitlines()) <= 15, name
