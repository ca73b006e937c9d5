"""Where the repo under test is, and the figures tests measure for the summary."""

from pathlib import Path

REPO = Path(__file__).resolve().parent.parent

# (what, seconds from the fixing event to the first 200 with the new code), printed after the run.
RECOVERIES: list[tuple[str, float]] = []
