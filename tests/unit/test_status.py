from unstuck.cli import format_status
from unstuck.failure import Failure


def test_status_prints_the_errors_hint():
    failure = Failure("import", "ModuleNotFoundError", "No module named 'requests'", "app/main.py", 1,
                      hint="add 'requests' to app/requirements.txt; unstuck installs it in place")
    data = {"state": "broken", "app_module": "app.main:app", "port": 8000, "error": failure.headline(),
            "failure": failure.to_dict()}
    lines = format_status(data, now=0).splitlines()
    assert lines[-2:] == ["error:        ModuleNotFoundError: No module named 'requests' (app/main.py:1)",
                          "hint:         add 'requests' to app/requirements.txt; unstuck installs it in place"]
    del data["failure"]["hint"]
    assert "hint" not in format_status(data, now=0)
