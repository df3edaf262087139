"""Start `python src/<script>.py ...` in a process forked from an interpreter that has already
imported torch and the engine (tests/prewarm_server.py).

Why: a training subprocess spent about 3 s of a 2-core CI machine importing torch, the
torch._dynamo that the first optimizer step pulls in, matplotlib and pandas, before doing any
work, and the suite starts a few hundred of them. The forked child is still a real process
with its own pid, real pipes, real signals and a real exit status; it runs the unchanged script
as `__main__` with the test's argv, environment and working directory. What it does not test is
the interpreter's own start-up, so the tests of the CLIs' start (`--help`, usage errors) and of
`make train` keep starting `python` itself; the README's blocks run with `python()` on PATH.

The processes that a forked process starts with `sys.executable` (sweep trials, torchrun's
workers) are forked too: see tests/prewarm_client.py.

`popen(command, ...)` returns a `subprocess.Popen`-like object for a `[sys.executable, script,
...]` or `[sys.executable, "-m", "torch.distributed.run", ...]` command (PREWARM=0 in the
environment turns it off: then it is `subprocess.Popen`).
"""

from __future__ import annotations

import atexit
import json
import os
import select
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import IO, Any

from prewarm_client import MODULES  # what runs forked as `python -m MODULE`: the client's list

SERVER = Path(__file__).with_name("prewarm_server.py")
SRC = Path(__file__).resolve().parents[1] / "src"
START_TIMEOUT_S = 120


class _Server:
    """One prewarmed interpreter per test process (each xdist worker has its own), started on use."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.process: subprocess.Popen | None = None
        self.socket_path: str | None = None

    def path(self) -> str:
        with self.lock:
            if self.process is None or self.process.poll() is not None:
                self._start()
            assert self.socket_path is not None
            return self.socket_path

    def _start(self) -> None:
        folder = tempfile.mkdtemp(prefix="prewarm-")
        self.socket_path = os.path.join(folder, "server.sock")
        env = dict(os.environ, OMP_NUM_THREADS="1", MPLBACKEND="Agg")
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(SRC), env.get("PYTHONPATH", "")]))
        self.process = subprocess.Popen(
            [sys.executable, str(SERVER), self.socket_path], stdout=subprocess.PIPE,
            stdin=subprocess.DEVNULL, env=env, text=True, start_new_session=True,
        )
        ready = _read_line_within(self.process.stdout, START_TIMEOUT_S)
        if ready.strip() != "ready":
            self.stop()
            raise RuntimeError(f"the prewarmed interpreter did not start: {ready!r}")
        atexit.register(self.stop)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=30)


def _read_line_within(stream: IO[str], timeout: float) -> str:
    result: list[str] = []
    reader = threading.Thread(target=lambda: result.append(stream.readline()), daemon=True)
    reader.start()
    reader.join(timeout)
    return result[0] if result else ""


_SERVER = _Server()


def enabled() -> bool:
    return os.environ.get("PREWARM", "1") != "0"



def is_script_command(command: list[str]) -> bool:
    """`[python, <a .py file>, ...]` or `[python, -m, torchrun's module, ...]`: what the prewarmed
    server can run."""
    if len(command) < 2 or command[0] != sys.executable:
        return False
    return str(command[1]).endswith(".py") or (len(command) >= 3 and command[1] == "-m" and command[2] in MODULES)


def python() -> str:
    """A `python` to put in a command line or on PATH: the prewarmed server's (what a script or
    torchrun it names runs forked; anything else runs in the real interpreter), or the real one
    when prewarming is off. Only for this repository's src/: the server has imported its modules."""
    if not enabled():
        return sys.executable
    return os.path.join(os.path.dirname(_SERVER.path()), "python")


def bash_path_export() -> str:
    """`export PATH=...`: a bash line after which `python` is `python()` (its folder first, then the
    real interpreter's, for the other commands of the environment such as `tensorboard`)."""
    import shlex

    folders = [os.path.dirname(python()), os.path.dirname(sys.executable)]
    return f"export PATH={shlex.quote(os.pathsep.join(folders))}:$PATH"


def popen(command: list[str], *, env: dict[str, str] | None = None, cwd: str | Path | None = None,
          stdout: Any = None, stderr: Any = None, stdin: Any = None, text: bool = False,
          start_new_session: bool = False) -> "PrewarmedProcess | subprocess.Popen":
    """Start `command` forked from the prewarmed interpreter (or plainly, see the module doc)."""
    if not (enabled() and is_script_command(command)):
        return subprocess.Popen(command, env=env, cwd=cwd, stdout=stdout, stderr=stderr, stdin=stdin,
                                text=text, start_new_session=start_new_session)
    return PrewarmedProcess(command, env=dict(os.environ if env is None else env), cwd=str(cwd or os.getcwd()),
                            stdout=stdout, stderr=stderr, stdin=stdin, text=text,
                            start_new_session=start_new_session)


def run(command: list[str], *, timeout: float, env: dict[str, str] | None = None,
        cwd: str | Path | None = None, check: bool = False, capture_output: bool = True,
        text: bool = True) -> subprocess.CompletedProcess:
    """`subprocess.run(command, capture_output=True, timeout=...)` through `popen`."""
    pipe = subprocess.PIPE if capture_output else None
    process = popen(command, env=env, cwd=cwd, stdout=pipe, stderr=pipe, stdin=subprocess.DEVNULL, text=text)
    try:
        out, err = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.communicate()
        raise
    done = subprocess.CompletedProcess(command, process.returncode, out, err)
    if check:
        done.check_returncode()
    return done


class PrewarmedProcess:
    """The part of `subprocess.Popen` the tests use, for a child forked by the prewarmed server."""

    def __init__(self, command: list[str], *, env: dict[str, str], cwd: str, stdout: Any, stderr: Any,
                 stdin: Any, text: bool, start_new_session: bool) -> None:
        self.args = command
        self.returncode: int | None = None
        self.text = text
        child_fds, self._parent_fds, self._to_close = [], {}, []
        for name, spec, default in (("stdin", stdin, 0), ("stdout", stdout, 1), ("stderr", stderr, 2)):
            merged = name == "stderr" and spec == subprocess.STDOUT
            child_fds.append(child_fds[1] if merged else self._child_end(name, spec, default))
        self.stdin = self._parent_fds.get("stdin")
        self.stdout = self._parent_fds.get("stdout")
        self.stderr = self._parent_fds.get("stderr")
        self._conn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self._conn.connect(_SERVER.path())
        umask = os.umask(0o022)
        os.umask(umask)
        argv = [str(part) for part in command[1:]]
        request = {"argv": argv, "env": env, "cwd": cwd, "new_session": start_new_session, "umask": umask}
        if argv[0] == "-m":
            request.update(argv=argv[1:], module=argv[1])
        self._conn.sendmsg([json.dumps(request).encode()],
                           [(socket.SOL_SOCKET, socket.SCM_RIGHTS, bytes(_int_array(child_fds)))])
        for fd in self._to_close:
            os.close(fd)
        self._buffer = b""
        reply = json.loads(self._read_line(None) or '{"error": "the prewarmed server closed"}')
        if "pid" not in reply:
            raise RuntimeError(f"prewarmed start of {command}: {reply.get('error')}")
        self.pid: int = reply["pid"]
        self._readers: dict[str, threading.Thread] = {}
        self._output: dict[str, Any] = {}
        self._status_lock = threading.Lock()

    def _child_end(self, name: str, spec: Any, default: int) -> int:
        if spec is None:
            return default
        if spec == subprocess.DEVNULL:
            fd = os.open(os.devnull, os.O_RDWR)
            self._to_close.append(fd)
            return fd
        if spec == subprocess.PIPE:
            read, write = os.pipe()
            mine, theirs = (write, read) if name == "stdin" else (read, write)
            self._parent_fds[name] = os.fdopen(mine, ("w" if name == "stdin" else "r") + ("" if self.text else "b"))
            self._to_close.append(theirs)
            return theirs
        if hasattr(spec, "fileno"):
            return spec.fileno()
        return int(spec)

    # -- status ---------------------------------------------------------------------------------
    def poll(self) -> int | None:
        if self.returncode is None:
            self._read_status(0)
        return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        if self.returncode is None and not self._read_status(timeout):
            raise subprocess.TimeoutExpired(self.args, timeout)
        assert self.returncode is not None
        return self.returncode

    def _read_status(self, timeout: float | None) -> bool:
        """Read the exit status if it arrives within `timeout` (None: wait); True once known."""
        with self._status_lock:
            if self.returncode is None:
                line = self._read_line(timeout)
                if line is not None:
                    if not line:
                        raise RuntimeError(f"the prewarmed supervisor of pid {self.pid} vanished")
                    self.returncode = json.loads(line)["returncode"]
            return self.returncode is not None

    def _read_line(self, timeout: float | None) -> str | None:
        """One reply line; "" at end of stream; None when `timeout` passes first."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while b"\n" not in self._buffer:
            left = None if deadline is None else max(deadline - time.monotonic(), 0)
            ready, _, _ = select.select([self._conn], [], [], left)
            if not ready:
                return None
            chunk = self._conn.recv(4096)
            if not chunk:
                return ""
            self._buffer += chunk
        line, self._buffer = self._buffer.split(b"\n", 1)
        return line.decode()

    # -- signals --------------------------------------------------------------------------------
    def send_signal(self, signum: int) -> None:
        if self.poll() is None:
            try:
                os.kill(self.pid, signum)
            except ProcessLookupError:
                pass

    def terminate(self) -> None:
        self.send_signal(signal.SIGTERM)

    def kill(self) -> None:
        self.send_signal(signal.SIGKILL)

    # -- output ---------------------------------------------------------------------------------
    def communicate(self, input: Any = None, timeout: float | None = None) -> tuple[Any, Any]:
        if input is not None and self.stdin is not None:
            self.stdin.write(input)
        if self.stdin is not None and not self.stdin.closed:
            self.stdin.close()
        deadline = None if timeout is None else time.monotonic() + timeout
        for name in ("stdout", "stderr"):
            stream = getattr(self, name)
            if stream is not None and name not in self._readers:
                reader = threading.Thread(target=self._drain, args=(name, stream), daemon=True)
                self._readers[name] = reader
                reader.start()
        for reader in self._readers.values():
            reader.join(None if deadline is None else max(deadline - time.monotonic(), 0))
            if reader.is_alive():
                raise subprocess.TimeoutExpired(self.args, timeout)
        self.wait(None if deadline is None else max(deadline - time.monotonic(), 0.01))
        return self._output.get("stdout"), self._output.get("stderr")

    def _drain(self, name: str, stream: IO) -> None:
        self._output[name] = stream.read()
        stream.close()

    def __enter__(self) -> "PrewarmedProcess":
        return self

    def __exit__(self, *exc: object) -> None:
        for stream in (self.stdout, self.stderr, self.stdin):
            if stream is not None and not stream.closed:
                try:
                    stream.close()
                except OSError:
                    pass
        self.wait()
        self._conn.close()

    def __del__(self) -> None:
        try:
            self._conn.close()
        except Exception:
            pass


def _int_array(fds: list[int]):
    import array

    return array.array("i", fds)
