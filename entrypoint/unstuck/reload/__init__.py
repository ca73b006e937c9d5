"""The reload server (`unstuck serve`): its generation state machine, its events, its side of the warm process."""
