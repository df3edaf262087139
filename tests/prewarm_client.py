"""A `python` for the processes that the tests' processes start: a script (or `-m
torch.distributed.run`) runs forked from the prewarmed interpreter (tests/prewarm_server.py);
anything else runs in the real interpreter, which this program then becomes (`exec`).

Why: the sweep driver starts its trials, and torchrun its workers, as `[sys.executable, ...]`. In
a process forked by the prewarmed server, `sys.executable` is this program, so those trials and
workers skip the 3 s of importing torch too, with the engine's code unchanged.

This program stands in for the forked process it starts: it passes on its standard streams,
environment, working directory and umask; forwards the signals it gets (SIGKILL aside: when this
program dies, the server kills the forked process's whole session); and exits as it exited, by
the same signal or with the same code. The server writes it, with the two constants filled in,
as `python` beside its socket, run by the real interpreter with `-I -S` (the standard library only).

Standard library only, and nothing imported at start that the fallback does not need.
"""

import array
import json
import os
import signal
import socket
import sys

REAL_PYTHON = "@REAL_PYTHON@"
SOCKET_PATH = "@SOCKET_PATH@"
MODULES = ("torch.distributed.run",)  # the modules run forked; any other `-m` runs for real
FORWARDED = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGQUIT, signal.SIGUSR1, signal.SIGUSR2,
             signal.SIGALRM)


def _real(argv: list[str]) -> None:
    os.execv(REAL_PYTHON, [REAL_PYTHON, *argv[1:]])


def _request(argv: list[str]) -> dict | None:
    """What the server is to run for `python ARGS`, or None when it cannot run it."""
    args, unbuffered = argv[1:], False
    while args and args[0] == "-u":  # torchrun starts its workers with `python -u script.py`
        args, unbuffered = args[1:], True
    if len(args) >= 2 and args[0] == "-m" and args[1] in MODULES:
        run = {"module": args[1], "argv": args[1:]}
    elif args and args[0].endswith(".py") and os.path.isfile(args[0]):
        run = {"argv": args}
    else:
        return None
    umask = os.umask(0o022)
    os.umask(umask)
    return {**run, "env": dict(os.environ), "cwd": os.getcwd(), "umask": umask, "new_session": True,
            "tied": True, "unbuffered": unbuffered}


def _standard_streams() -> list[int]:
    """Descriptors 0, 1 and 2, with /dev/null for any that this process was started without."""
    fds = []
    for fd in (0, 1, 2):
        try:
            os.fstat(fd)
            fds.append(fd)
        except OSError:
            fds.append(os.open(os.devnull, os.O_RDWR))
    return fds


def main(argv: list[str]) -> None:
    request = _request(argv)
    if request is None:
        _real(argv)
    conn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        conn.connect(SOCKET_PATH)
    except OSError:  # the server is gone (its test process ended): start for real
        _real(argv)
    received: list[int] = []  # the signals that come before the forked process's pid is known
    pids: list[int] = []

    def forward(signum: int, _frame: object) -> None:
        received.append(signum)
        for pid in pids:
            try:
                os.kill(pid, signum)
            except ProcessLookupError:
                pass

    for signum in FORWARDED:
        signal.signal(signum, forward)
    conn.sendmsg([json.dumps(request).encode()],
                 [(socket.SOL_SOCKET, socket.SCM_RIGHTS, bytes(array.array("i", _standard_streams())))])
    reader = conn.makefile("r")
    reply = json.loads(reader.readline() or '{"error": "the prewarmed server closed"}')
    if "pid" not in reply:
        sys.exit(f"prewarmed start of {argv[1:]}: {reply.get('error')}")
    pid = reply["pid"]
    signal.pthread_sigmask(signal.SIG_BLOCK, FORWARDED)
    pids.append(pid)
    early = list(received)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, FORWARDED)  # from here the handler forwards
    for signum in early:
        os.kill(pid, signum)
    line = reader.readline()
    if not line:
        sys.exit(f"the prewarmed supervisor of pid {pid} vanished")
    code = json.loads(line)["returncode"]
    if code < 0:  # it died by a signal: so does this program, for its parent to see the same
        signal.signal(-code, signal.SIG_DFL)
        os.kill(os.getpid(), -code)
        code = 128 - code
    os._exit(code)


if __name__ == "__main__":
    main(sys.argv)
