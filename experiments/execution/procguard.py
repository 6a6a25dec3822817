"""``python -m experiments.execution.procguard PARENT_PID -- COMMAND...``: arrange to receive SIGTERM when the
process that started us dies, then become COMMAND (exec keeps the pid and the death signal).

Used instead of ``preexec_fn``, which is unsafe in threaded workers. Importing nothing from Django keeps
the extra start-up to a few milliseconds. Where prctl is unavailable (not Linux) the command runs without
it and the reconciler's orphan sweep is the fallback.
"""
import ctypes
import os
import signal
import sys

PR_SET_PDEATHSIG = 1
PARENT_GONE_EXIT = 75  # EX_TEMPFAIL: the launching worker died before we could attach to it


def set_parent_death_signal(signum: int) -> bool:
    try:
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
    except OSError:
        return False
    return libc.prctl(PR_SET_PDEATHSIG, signum, 0, 0, 0) == 0


def main(argv: list[str]) -> None:
    if len(argv) < 3 or argv[1] != "--":
        sys.exit("usage: python -m experiments.execution.procguard PARENT_PID -- COMMAND [ARGS...]")
    parent, command = int(argv[0]), argv[2:]
    set_parent_death_signal(signal.SIGTERM)
    if os.getppid() != parent:  # the parent died before prctl took effect: nobody would watch us
        sys.exit(PARENT_GONE_EXIT)
    os.execvp(command[0], command)


def wrap(command: list[str]) -> list[str]:
    """COMMAND wrapped so that it dies with the calling process."""
    return [sys.executable, "-m", "experiments.execution.procguard", str(os.getpid()), "--", *command]


if __name__ == "__main__":
    main(sys.argv[1:])
