"""The server side of tests/prewarmed.py: an interpreter that has imported torch and the engine
once, and forks a real process for each script a test starts.

Run as `python tests/prewarm_server.py SOCKET`. For each connection it receives a JSON request
(argv, env, cwd, new_session, and `module` for `-m`) and the child's stdin/stdout/stderr as file
descriptors, forks a supervisor, which forks the child and reports its pid and then its exit
status on the connection. The child runs the script with `runpy` as `__main__` and leaves through
the interpreter's normal shutdown (atexit, non-daemon threads, flushed streams), exactly as
`python script.py` would.

In the child, `sys.executable` is `python` beside the socket: tests/prewarm_client.py, which
forks the processes the child starts with it (sweep trials, torchrun workers) from this server
too. Its requests are `tied`: when the client dies, the supervisor kills the child's session.
"""

import array
import atexit
import gc
import io
import json
import os
import runpy
import select
import signal
import socket
import sys
import threading
from pathlib import Path

MAX_REQUEST = 1 << 20
FD_COUNT = 3
CLIENT = Path(__file__).with_name("prewarm_client.py")


def _preimport() -> None:
    """What every training or CLI subprocess imports first: most of their start-up time. torch
    comes first, as in 02_train.py."""
    import torch
    import matplotlib

    matplotlib.use("Agg")
    import numpy  # noqa: F401
    import pandas  # noqa: F401
    import sklearn.datasets  # noqa: F401
    import torch._dynamo  # noqa: F401  (the first optimizer step imports it: ~1 s)
    import torch.distributed.run  # noqa: F401  (torchrun)
    import tensorboard.summary.writer.record_writer  # noqa: F401  (what the TensorBoard writer opens with)

    import training.run_config  # noqa: F401
    import training.session  # noqa: F401
    import utils.logging  # noqa: F401
    import visualization.plotting  # noqa: F401
    import pkgutil

    import tasks

    for module in pkgutil.iter_modules(tasks.__path__):  # the project's tasks, whichever it kept
        try:
            __import__(f"tasks.{module.name}")
        except Exception:  # a broken task file fails in the test that uses it, not here
            pass
    del torch


def _threads() -> int:
    return len(os.listdir("/proc/self/task"))


def _receive(conn: socket.socket) -> tuple[dict, list[int]]:
    fds = array.array("i")
    data, ancillary, _, _ = conn.recvmsg(MAX_REQUEST, socket.CMSG_SPACE(FD_COUNT * fds.itemsize))
    for level, kind, payload in ancillary:
        if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
            fds.frombytes(payload[: len(payload) - len(payload) % fds.itemsize])
    return json.loads(data), list(fds)


def _serve(listener: socket.socket) -> tuple[dict, list[int]]:
    """Accept requests for ever in the server; returns only in a forked child, with its request."""
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # supervisors are reaped by the kernel
    while True:
        conn, _ = listener.accept()
        request, fds = _receive(conn)
        if _threads() != 1:  # forking a threaded process could copy a held lock into the child
            conn.sendall(b'{"error": "the prewarmed server has started a thread"}\n')
            sys.exit(f"prewarm server: {_threads()} threads, refusing to fork")
        sys.stdout.flush()
        sys.stderr.flush()
        if os.fork() == 0:
            listener.close()
            signal.signal(signal.SIGCHLD, signal.SIG_DFL)
            child = os.fork()
            if child == 0:
                conn.close()
                return request, fds
            _supervise(conn, child, fds, bool(request.get("tied")))
        conn.close()
        for fd in fds:
            os.close(fd)


def _supervise(conn: socket.socket, child: int, fds: list[int], tied: bool) -> None:
    """Report the child's pid, wait for it, report its exit code as Popen.returncode would.
    A `tied` child (it leads its own session) is killed with its session when the client dies."""
    for fd in fds:
        os.close(fd)
    try:
        conn.sendall(json.dumps({"pid": child}).encode() + b"\n")
        if tied:
            _kill_when_the_client_dies(conn, child)
        _, status = os.waitpid(child, 0)
        conn.sendall(json.dumps({"returncode": os.waitstatus_to_exitcode(status)}).encode() + b"\n")
    finally:
        os._exit(0)


def _kill_when_the_client_dies(conn: socket.socket, child: int) -> None:
    """Return once the child has ended; SIGKILL its session first if the connection closes."""
    exited = os.pidfd_open(child)
    try:
        while True:
            ready, _, _ = select.select([conn, exited], [], [])
            if exited in ready:
                return
            if not conn.recv(1):  # the client sends nothing after its request: this is its end
                try:
                    os.killpg(child, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                return
    finally:
        os.close(exited)


def _become(request: dict, fds: list[int]) -> dict:
    """Turn this forked process into `python argv...` started by the test: its env, working
    directory and umask, its standard streams, and a session of its own when asked. Returns
    what to run: {"script": path} or {"module": name}."""
    for target, fd in enumerate(fds):
        os.dup2(fd, target)
    for fd in fds:
        if fd > 2:
            os.close(fd)
    if request["new_session"]:
        os.setsid()
    for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGCHLD, signal.SIGPIPE):
        signal.signal(signum, signal.default_int_handler if signum == signal.SIGINT else signal.SIG_DFL)
    signal.signal(signal.SIGPIPE, signal.SIG_IGN)  # what CPython sets at start-up
    os.environ.clear()
    os.environ.update(request["env"])
    os.chdir(request["cwd"])
    os.umask(request["umask"])
    fileio = sys.modules.get("utils.fileio")
    if fileio is not None:  # it reads the umask once at import; a fresh interpreter reads the test's
        fileio._UMASK, fileio.FILE_MODE = request["umask"], 0o666 & ~request["umask"]
    _reseed()
    sys.executable = SHIM
    if request.get("unbuffered"):  # `python -u`
        for name, fd in (("stdout", 1), ("stderr", 2)):
            setattr(sys, name, io.TextIOWrapper(open(fd, "wb", buffering=0, closefd=False), write_through=True,
                                                encoding=getattr(sys, name).encoding, errors="backslashreplace"))
    module = request.get("module")
    script = os.path.abspath(request["argv"][0]) if module is None else ""
    sys.argv = [script, *request["argv"][1:]] if module is None else list(request["argv"])
    sys.path[0] = os.path.dirname(script) if module is None else os.getcwd()
    for entry in reversed(request["env"].get("PYTHONPATH", "").split(os.pathsep)):
        if entry and os.path.abspath(entry) not in map(os.path.abspath, sys.path):
            sys.path.insert(1, entry)
    return {"module": module} if module is not None else {"script": script}


def _reseed() -> None:
    """A fresh interpreter draws its random seeds from the OS; a fork would share the server's."""
    import random

    import numpy
    import torch

    random.seed()
    numpy.random.seed()
    torch.seed()


SHIM = ""  # the path of the `python` that the children's `sys.executable` names


def _write_shim(socket_path: str) -> str:
    """tests/prewarm_client.py as an executable `python` beside the socket, for this server."""
    shim = os.path.join(os.path.dirname(socket_path), "python")
    source = CLIENT.read_text().replace("@REAL_PYTHON@", sys.executable).replace("@SOCKET_PATH@", socket_path)
    with open(shim, "w") as file:
        file.write(f"#!{sys.executable} -IS\n{source}")
    os.chmod(shim, 0o755)
    return shim


def main() -> None:
    global SHIM
    path = sys.argv[1]
    SHIM = _write_shim(path)
    _preimport()
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(path)
    listener.listen(64)
    print("ready", flush=True)
    gc.freeze()  # the children's collections skip the preimported objects: no copy-on-write of them
    request, fds = _serve(listener)
    _exit_like_python(_become(request, fds))


def _exit_like_python(target: dict) -> None:
    """Run the script, then leave as CPython does (non-daemon threads joined, atexit handlers
    run, streams flushed, the same exit status) but without tearing down every module: freeing
    torch's objects one by one in a forked child copies every page it touches and took seconds."""
    code = 0
    try:
        if "module" in target:
            runpy.run_module(target["module"], run_name="__main__", alter_sys=True)
        else:
            runpy.run_path(target["script"], run_name="__main__")
    except SystemExit as exit_:
        code = _exit_code(exit_.code)
    except KeyboardInterrupt:
        code = -signal.SIGINT
        sys.excepthook(*sys.exc_info())
    except BaseException:
        code = 1
        sys.excepthook(*sys.exc_info())
    threading._shutdown()  # what the interpreter does first at exit
    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except Exception:
            code = code or 120  # CPython's status when flushing the standard streams fails
    if code == -signal.SIGINT:  # CPython ends by SIGINT after an uncaught KeyboardInterrupt
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        os.kill(os.getpid(), signal.SIGINT)
    os._exit(code)


def _exit_code(value: object) -> int:
    if value is None:
        return 0
    if isinstance(value, int):
        return value & 0xFF
    print(value, file=sys.stderr)
    return 1


if __name__ == "__main__":
    main()
