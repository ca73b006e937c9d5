"""Where the repo under test is, and the figures tests measure for the summary."""

import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent

# FastAPI 0.115 (tests/requirements-fastapi-0.115.txt), installed by `make` apart from the test venv's own FastAPI:
# the form warm/dependant_memo.py applies to. Tests put it first on a subprocess's path.
FASTAPI_0_115 = Path(sys.prefix) / "fastapi-0.115"

# (what, seconds from the fixing event to the first 200 with the new code), printed after the run.
RECOVERIES: list[tuple[str, float]] = []
