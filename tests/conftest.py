import sys

from repo import REPO, RECOVERIES

sys.path.insert(0, str(REPO / "entrypoint"))


def pytest_terminal_summary(terminalreporter):
    """Recovery times measured by the tests (seconds from the fixing save to the first 200 with it)."""
    if RECOVERIES:
        terminalreporter.section("unstuck recovery times")
        for name, seconds in RECOVERIES:
            terminalreporter.write_line(f"{seconds:7.3f} s  {name}")
