"""The prewarmed start of scripts (tests/prewarmed.py) behaves as `python script.py` does.

Each case runs the same script both ways and compares what a test can see: the exit status,
the output, the environment, argv and working directory, and the exit path (non-daemon
threads joined, atexit handlers run) — so the training tests that start their scripts through
it test the same thing as a plain start would.
"""

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

import prewarmed
from conftest import subprocess_env

CASES = {
    "exit_0": "print('out'); import sys; print('err', file=sys.stderr)",
    "exit_2": "import sys; sys.exit(2)",
    "exit_message": "import sys; sys.exit('a message')",
    "exit_257": "import sys; sys.exit(257)",
    "exception": "raise ValueError('boom')",
    "atexit_and_threads": textwrap.dedent("""
        import atexit, threading, time
        atexit.register(lambda: print('atexit ran', flush=True))
        threading.Thread(target=lambda: (time.sleep(0.2), print('thread finished', flush=True))).start()
    """),
    "environment": textwrap.dedent("""
        import os, sys
        print(os.getcwd(), os.environ.get('PREWARM_PROBE'), sys.argv[1:], sys.path[0] == os.path.dirname(__file__))
    """),
}


def _both_ways(script: Path, tmp_path: Path) -> tuple[subprocess.CompletedProcess, subprocess.CompletedProcess]:
    command = [sys.executable, str(script), "a", "b c"]
    env = subprocess_env(PREWARM_PROBE="seen")
    plain = subprocess.run(command, capture_output=True, text=True, timeout=60, env=env, cwd=tmp_path)
    forked = prewarmed.run(command, timeout=60, env=env, cwd=tmp_path)
    return plain, forked


@pytest.mark.parametrize("case", sorted(CASES))
def test_a_prewarmed_script_exits_and_prints_as_a_plain_start_does(case: str, tmp_path: Path) -> None:
    script = tmp_path / f"{case}.py"
    script.write_text(CASES[case])
    plain, forked = _both_ways(script, tmp_path)
    assert forked.returncode == plain.returncode
    assert forked.stdout == plain.stdout
    assert forked.stderr.splitlines()[-1:] == plain.stderr.splitlines()[-1:]  # tracebacks differ in depth only


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT, signal.SIGKILL])
def test_a_signal_ends_a_prewarmed_script_with_the_same_status(signum: int, tmp_path: Path) -> None:
    script = tmp_path / "wait.py"
    script.write_text("import time\nprint('ready', flush=True)\ntime.sleep(60)\n")
    codes = []
    for start in (subprocess.Popen, prewarmed.popen):
        process = start([sys.executable, str(script)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                        env=subprocess_env(), cwd=tmp_path, start_new_session=True)
        try:
            assert process.stdout.readline().strip() == "ready"
            assert os.getpgid(process.pid) == process.pid  # its own session, so killpg works
            process.send_signal(signum)
            process.communicate(timeout=60)
        finally:
            if process.poll() is None:
                process.kill()
                process.communicate()
        codes.append(process.returncode)
    assert codes[0] == codes[1] != 0


def test_two_prewarmed_scripts_draw_different_random_seeds(tmp_path: Path) -> None:
    script = tmp_path / "seeds.py"
    script.write_text("import random, numpy, torch\nprint(random.random(), numpy.random.rand(), torch.rand(1).item())\n")
    outputs = [prewarmed.run([sys.executable, str(script)], timeout=60, env=subprocess_env(), cwd=tmp_path).stdout
               for _ in range(2)]
    first, second = (output.split() for output in outputs)
    assert all(a != b for a, b in zip(first, second)), outputs


def test_a_prewarmed_start_can_be_turned_off(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    script = tmp_path / "nothing.py"
    script.write_text("pass\n")
    started = []
    for setting in ("1", "0"):
        monkeypatch.setenv("PREWARM", setting)
        process = prewarmed.popen([sys.executable, str(script)], env=subprocess_env(), cwd=tmp_path)
        assert process.wait(timeout=60) == 0
        started.append(type(process))
    assert started == [prewarmed.PrewarmedProcess, subprocess.Popen]


# A prewarmed script starts CHILD with `sys.executable`, as the sweep driver and torchrun do,
# signals it once it is ready and prints what it saw; CHILD reports whether torch was imported
# before it ran (a fork of the prewarmed interpreter) and leaves 143 on SIGTERM, as 02_train.py does.
PARENT = """\
import signal, subprocess, sys
child = subprocess.Popen([sys.executable, sys.argv[1], *sys.argv[3:]], stdout=subprocess.PIPE, text=True,
                         start_new_session=True)
print(child.stdout.readline().strip(), flush=True)
child.send_signal(getattr(signal, sys.argv[2]))
child.wait(60)
print(child.returncode, flush=True)
"""
CHILD = """\
import os, signal, sys, time
signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
print("torch" in sys.modules, sys.argv[1:], os.getcwd() == os.environ["EXPECTED_CWD"], flush=True)
time.sleep(60)
"""


@pytest.mark.parametrize("signum, returncode", [("SIGTERM", "143"), ("SIGINT", "-2"), ("SIGKILL", "-9")])
def test_a_script_a_prewarmed_script_starts_is_forked_too_and_ends_as_it_would(signum: str, returncode: str,
                                                                               tmp_path: Path) -> None:
    """Through tests/prewarm_client.py: argv, working directory, the signal passed on, the exit
    status passed back (the child's own, 143, or its death by the signal)."""
    (tmp_path / "parent.py").write_text(PARENT)
    (tmp_path / "child.py").write_text(CHILD)
    done = prewarmed.run([sys.executable, str(tmp_path / "parent.py"), str(tmp_path / "child.py"), signum, "x y"],
                         timeout=120, env=subprocess_env(EXPECTED_CWD=str(tmp_path)), cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    ready, code = done.stdout.splitlines()
    assert ready == "True ['x y'] True", "forked from the prewarmed interpreter, with its argv and cwd"
    assert code == returncode


def test_a_forked_childs_session_dies_with_the_python_that_started_it(tmp_path: Path) -> None:
    """SIGKILL cannot be passed on: the server kills the forked child's session when its `python`
    (tests/prewarm_client.py) dies, as a process group killed together would."""
    parent = ("import subprocess, sys\n"
              "child = subprocess.Popen([sys.executable, sys.argv[1]], start_new_session=True)\n"
              "print(child.pid, flush=True)\n"
              "import time; time.sleep(60)\n")
    (tmp_path / "parent.py").write_text(parent)
    (tmp_path / "child.py").write_text("import os, time\nopen('child.pid', 'w').write(str(os.getpid()))\n"
                                       "time.sleep(600)\n")
    process = prewarmed.popen([sys.executable, str(tmp_path / "parent.py"), str(tmp_path / "child.py")],
                              stdout=subprocess.PIPE, text=True, env=subprocess_env(), cwd=tmp_path,
                              start_new_session=True)
    try:
        child = None
        client = int(process.stdout.readline())
        pid_file = tmp_path / "child.pid"
        deadline = time.monotonic() + 60
        while not pid_file.exists() or not pid_file.read_text():
            assert time.monotonic() < deadline, "the child did not start"
            time.sleep(0.05)
        child = int(pid_file.read_text())
        assert child != client, "the child is a fork of the server, not its `python`"
        os.kill(client, signal.SIGKILL)
        deadline = time.monotonic() + 30
        while _alive(child):
            assert time.monotonic() < deadline, "the child outlived its `python`"
            time.sleep(0.05)
    finally:
        if child is not None and _alive(child):
            os.kill(child, signal.SIGKILL)
        process.kill()
        process.communicate()


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state not in ("Z", "X")
