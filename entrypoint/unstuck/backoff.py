"""Crash backoff shared by the app's generations and the Procfile workers.

supervisord's own backoff ends in FATAL; uvicorn's reloader has none (a crash stays dead until a save).
Here the first crash restarts at once, consecutive ones wait 1, 2, 4 ... s up to a cap, and a process
that ran long enough before dying is not part of a crash loop.
"""

from __future__ import annotations

from dataclasses import dataclass

# A process that served this long before dying was not crash-looping: its crash restarts at once.
STABLE_AFTER_S = 10.0


def delay(crashes: int, cap: float) -> float:
    """0 s for the first crash in a row, then 1, 2, 4 ... s up to the cap."""
    return 0.0 if crashes <= 1 else min(2.0 ** (crashes - 2), cap)


@dataclass
class Backoff:
    cap: float
    stable_after: float = STABLE_AFTER_S
    crashes: int = 0  # in a row

    def crashed(self, lived: float) -> float:
        """Count a crash of a process that ran `lived` seconds; return how long to wait before restarting."""
        self.crashes = 1 if lived >= self.stable_after else self.crashes + 1
        return delay(self.crashes, self.cap)

    def reset(self) -> None:
        """A save or a healthy start: what follows is not part of the same crash loop."""
        self.crashes = 0
