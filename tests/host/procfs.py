"""What /proc says of a process the tests started."""


def not_running(pid: int) -> bool:
    """Gone, or a zombie left for its parent (or PID 1) to reap."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rpartition(")")[2].split()[0] in ("Z", "X")
    except FileNotFoundError:
        return True
