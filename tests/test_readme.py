"""Every command in the README is exercised: run here, or named with the test that runs it."""

import json
import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

import prewarmed
from conftest import REPO_ROOT, subprocess_env

README = (REPO_ROOT / "README.md").read_text()

# Commands whose real run lives in another test (too heavy or not runnable inside pytest).
COVERED_ELSEWHERE = {
    "make train": "tests/test_make.py::test_make_train_initializes_and_trains_a_fresh_run",
    "make test": "CI: .ci/run runs it; tests/test_make.py checks the stamp logic",
    "torchrun --standalone --nproc_per_node=2 src/02_train.py -e digits -r ddp":
        "tests/test_train_torchrun.py",
    "torchrun --standalone --nproc_per_node=2 src/02_train.py -e digits -r big --set training.parallel=fsdp":
        "tests/test_train_fsdp.py",
    "torchrun --nnodes=2 --node_rank=0 --nproc_per_node=8 --rdzv_backend=c10d "
    "--rdzv_endpoint=HOST:29500 src/02_train.py -e digits -r big":
        "needs two machines; its single-node form is tests/test_train_torchrun.py",
    # keep_exp.sh works on the repository's own folders, which tests never write into
    "./keep_exp.sh --dry-run": "tests/test_keep_exp.py (on a copy of the layout)",
    "./keep_exp.sh": "tests/test_keep_exp.py (on a copy of the layout)",
    # "Start a new project" and its update block, on a tagged copy of HEAD
    **{command: "tests/template/test_copier_update.py" for command in (
        "pipx run copier copy --vcs-ref v1.0.0 https://github.com/OWNER/pytorch-template my-project",
        "cd my-project", 'git init -q && git add -A && git commit -qm "my-project from pytorch-template v1.0.0"',
        "copier update --defaults --vcs-ref v1.1.0")},
    # "After training", on the digits run that module trains
    **{command: "tests/test_evaluate.py" for command in (
        "python src/05_evaluate.py -e digits -r baseline",
        "python src/05_evaluate.py -e digits -r baseline --checkpoint last --split val")},
    **{f"python src/06_export.py -e digits -r baseline --format {format}": "tests/test_export_digits.py"
       for format in ("safetensors", "pt2", "onnx")},
}


def bash_blocks() -> list[list[str]]:
    return [
        [line.strip() for line in block.splitlines() if line.strip()]
        for block in re.findall(r"```bash\n(.*?)```", README, flags=re.S)
    ]


def test_the_readme_starts_with_the_two_commands():
    assert bash_blocks()[0] == ["make train", "make test"]


def test_the_layout_names_every_module_of_the_data_and_models_folders():
    layout = re.search(r"## Layout\n\n```\n(.*?)```", README, flags=re.S).group(1)
    for folder in ("data", "models"):
        modules = [path.name for path in (REPO_ROOT / "src" / folder).glob("*.py") if path.name != "__init__.py"]
        assert modules, f"src/{folder}/ holds code"
        missing = [name for name in modules if name not in layout]
        assert not missing, f"README's Layout does not say where src/{folder}/{missing} lives"


def test_every_readme_command_is_run_here_or_covered_elsewhere():
    commands = {command for block in bash_blocks() for command in block}
    runnable = (set(WORKFLOW) | set(HELPERS) | set(OWN_TASK) | set(SWEEPS) | set(FINE_TUNE) | set(FORK) | set(INSIDE)
                | set(NAN_HUNT))
    assert commands - runnable - set(COVERED_ELSEWHERE) == set()


def _bash(script: str, timeout: float = 600) -> subprocess.CompletedProcess:
    """Run `script` in bash. In a block (`set -e` then a command a line) `python` starts forked
    from the prewarmed interpreter: the line `prewarmed.bash_path_export()` goes after `set -e`, or
    after `source env.sh` (which activates .venv). The interpreter's own start is `make train`'s
    (tests/test_make.py)."""
    if script.startswith("set -e\n"):
        lines = script.split("\n")
        at = next((n + 1 for n, line in enumerate(lines) if line == "source env.sh"), 1)
        script = "\n".join([*lines[:at], prewarmed.bash_path_export(), *lines[at:]])
    return subprocess.run(
        ["bash", "-c", script], capture_output=True, text=True, timeout=timeout,
        cwd=REPO_ROOT, env=subprocess_env(), check=False,
    )


def _block_starting(first: str) -> list[str]:
    return next(block for block in bash_blocks() if block[0] == first)


WORKFLOW = next(block for block in bash_blocks() if "python src/01_initialize.py -e digits -r baseline --set training.epochs=5" in block)
HELPERS = next(block for block in bash_blocks() if block[0] == "source env.sh" and "setexp digits" in block)
OWN_TASK = next(block for block in bash_blocks() if "cp src/tasks/digits.py src/tasks/my_task.py" in block)
SWEEPS = _block_starting("python src/04_sweep.py -e digits -s config/sweeps/example.json --dry-run")
FINE_TUNE = next(block for block in bash_blocks() if any("training.init_from=digits/baseline " in c for c in block))
FORK = next(block for block in bash_blocks() if any(" --from digits/baseline" in c for c in block))
INSIDE, NAN_HUNT = (next(block for block in bash_blocks() if block[0].startswith(f"python src/01_initialize.py {run}"))
                    for run in ("-e digits -r inside", "-e digits -r nan-hunt"))


@pytest.mark.slow
def test_the_workflow_block_runs_as_written(experiments_root):
    commands = [c for c in WORKFLOW if not c.startswith("tensorboard ")]
    result = _bash("set -e\n" + "\n".join(commands))
    assert result.returncode == 0, result.stderr[-3000:]
    assert (experiments_root / "digits" / "baseline" / "checkpoints" / "best.pt").is_file()
    assert (experiments_root / "digits" / "wide" / "config.json").is_file()
    assert "baseline" in result.stdout and "wide" in result.stdout
    assert list((experiments_root / "digits").glob("*.png")), "03_compare writes its plot"
    perf = _bash(f"{shlex.quote(sys.executable)} -c {shlex.quote(PERF)}", timeout=120)
    assert perf.returncode == 0, perf.stderr[-3000:]
    lines = perf.stdout.splitlines()
    assert all(name in lines[0] for name in ("samples_per_s", "step_ms", "data_wait_fraction", "peak_memory_mb"))
    assert [line.split()[0] for line in lines[2:]] == ["1", "2", "3", "4", "5"], perf.stdout  # every epoch


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _serves(command: str, port: int) -> bool:
    """Start `command` (a TensorBoard server), wait until it answers on `port`, stop it."""
    # its own session, so that stopping it also stops what the shell function started
    process = subprocess.Popen(["bash", "-c", f"exec {command}"], cwd=REPO_ROOT, env=subprocess_env(),
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline and process.poll() is None:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=2) as response:
                    return response.status == 200
            except OSError:
                time.sleep(0.2)
        return False
    finally:
        _stop_group(process)


def _group_alive(process: subprocess.Popen) -> bool:
    process.poll()  # reap the leader so that a zombie does not count
    try:
        os.killpg(process.pid, 0)
    except ProcessLookupError:
        return False
    return True


def _stop_group(process: subprocess.Popen) -> None:
    """SIGTERM the whole process group, SIGKILL it if anything is left after 10 s."""
    os.killpg(process.pid, signal.SIGTERM)
    deadline = time.monotonic() + 10
    while _group_alive(process) and time.monotonic() < deadline:
        time.sleep(0.1)
    if _group_alive(process):
        os.killpg(process.pid, signal.SIGKILL)
    process.wait()


@pytest.mark.slow
def test_the_tensorboard_command_serves_the_experiments(experiments_root):
    command = next(c for c in WORKFLOW if c.startswith("tensorboard "))
    port = _free_port()
    command = command.replace("experiments", shlex.quote(str(experiments_root))) + f" --port {port}"
    assert _serves(f"bash -c 'source env.sh && exec {command}'", port)  # as after the block's first line


def test_the_env_sh_block_runs_as_written(experiments_root):
    script = "\n".join(c for c in HELPERS if c not in COVERED_ELSEWHERE and not c.startswith("tboard"))
    result = _bash("set -e\n" + script, timeout=120)
    assert result.returncode == 0, result.stderr
    assert (experiments_root / "digits" / "baseline" / "config.json").is_file()
    assert "digits" in result.stdout and "baseline" in result.stdout


@pytest.mark.slow
def test_tboard_serves_on_the_given_port():
    port = _free_port()
    assert _serves(f"bash -c 'source env.sh && tboard {port}'", port)


NEEDS_A_TRAINED_RUN = "load_trained("  # such blocks run in tests/test_evaluate.py, which trains one
PERF = next(block for block in re.findall(r"```python\n(.*?)```", README, flags=re.S) if "perf/" in block)


def python_blocks() -> list[str]:
    """The blocks that run on their own (PERF reads the workflow's run: the workflow test runs it)."""
    blocks = re.findall(r"```python\n(.*?)```", README, flags=re.S)
    return [block for block in blocks if NEEDS_A_TRAINED_RUN not in block and block != PERF]


@pytest.mark.parametrize("index", range(len(python_blocks())))
def test_every_python_block_runs_as_written(index, experiments_root, tmp_path):
    block = tmp_path / "block.py"  # a file, for the prewarmed interpreter to run
    block.write_text(python_blocks()[index])
    result = prewarmed.run([sys.executable, str(block)], timeout=180, cwd=REPO_ROOT, env=subprocess_env())
    assert result.returncode == 0, result.stderr[-3000:]
    if "logging-demo" in python_blocks()[index]:
        import pandas as pd

        metrics = pd.read_csv(experiments_root / "digits" / "logging-demo" / "logs" / "metrics.csv")
        assert list(metrics["step"]) == list(range(100))
    elif "NullLogger" in python_blocks()[index]:
        assert result.stdout.strip() == "False"
        assert not any(experiments_root.iterdir()), "a NullLogger writes nothing"
    else:
        assert "features" in result.stdout and "forward" in result.stdout


def _files(root) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*"))
            if p.is_file() and "__pycache__" not in p.parts}


@pytest.mark.slow
def test_the_bring_your_own_task_block_runs_as_written_and_touches_two_files(tmp_path, experiments_root):
    copy = tmp_path / "repo"
    for folder in ("src", "config"):
        shutil.copytree(REPO_ROOT / folder, copy / folder, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(REPO_ROOT / "env.sh", copy / "env.sh")  # the block starts with `source env.sh`
    before = _files(copy)
    script = f"set -e\nexport PATH={shlex.quote(str(Path(sys.executable).parent))}:$PATH\n" + "\n".join(OWN_TASK)
    env = subprocess_env()
    env["PYTHONPATH"] = str(copy / "src")
    result = subprocess.run(["bash", "-c", script], capture_output=True, text=True, timeout=300,
                            cwd=copy, env=env, check=False)
    assert result.returncode == 0, result.stderr[-3000:]
    after = _files(copy)
    assert set(after) - set(before) == {"src/tasks/my_task.py", "config/my_task.json"}
    assert all(after[name] == content for name, content in before.items()), "no other file changes"
    run = json.loads((experiments_root / "mine" / "first" / "config.json").read_text())
    assert run["task"] == "my_task"
    assert "test/accuracy" in result.stdout


def test_the_config_tables_are_the_ones_the_declarations_generate():
    from training.config_table import BLOCK, render
    from training.task import available_tasks

    blocks = BLOCK.findall(README)
    assert {name for _, name, _, _ in blocks} >= {"engine", "digits"}
    for _, name, table, _ in blocks:
        if name == "engine" or name in available_tasks():  # a deleted example's table may stay
            assert table == render(name), f"regenerate with: PYTHONPATH=src python -m training.config_table --write ({name})"


@pytest.mark.slow
def test_the_sweeps_block_runs_as_written(experiments_root):
    result = _bash("set -e\n" + "\n".join(SWEEPS))  # _bash puts the venv's folder on PATH too
    assert result.returncode == 0, result.stderr[-3000:]
    runs = sorted(p.parent.parent.name for p in (experiments_root / "digits").glob("lr-hidden-*/logs/summary.json"))
    assert runs == [f"lr-hidden-{n:03d}" for n in range(4)]
    assert "lr-hidden-003  start" in result.stdout, "the dry run lists the trials"
    assert "[4/4]" in result.stdout and result.stdout.count("done") >= 8, "progress lines, then the status table"
    lines = result.stdout.splitlines()
    title = lines.index("sweep lr-hidden: val/accuracy (max is best), 4 trials: 4 done")
    rows = lines[title + 2:title + 6]
    assert rows[0].startswith("  * ") and all(" done " in row for row in rows), "03_compare: best first, marked"
    assert sorted(re.search(r"lr-hidden-\d{3}", row).group() for row in rows) == runs, "a row per trial"
    png = experiments_root / "digits" / "sweeps" / "lr-hidden" / "lr-hidden_val_accuracy.png"
    assert f"plot: {png}" in result.stdout and png.read_bytes().startswith(b"\x89PNG")


def test_the_readme_shows_the_example_sweep_spec_as_it_is():
    shown = re.search(r"## Sweeps.*?```json\n(.*?)```", README, flags=re.S).group(1)
    assert json.loads(shown) == json.loads((REPO_ROOT / "config" / "sweeps" / "example.json").read_text())


RUN_COMMANDS = Path(__file__).with_name("run_commands.py")


def _run_commands(commands: list[str]) -> list[int]:
    """Run `python src/NN_name.py ...` commands one after another in one process forked from the
    prewarmed interpreter (tests/run_commands.py); their exit codes."""
    assert all(command.startswith("python src/") for command in commands)
    result = prewarmed.run([sys.executable, str(RUN_COMMANDS), json.dumps(commands)], timeout=300, cwd=REPO_ROOT,
                           env=subprocess_env(OMP_NUM_THREADS="1"))
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


@pytest.mark.slow
def test_the_see_inside_blocks_run_as_written(experiments_root):
    import pandas as pd

    codes = _run_commands([*INSIDE, *NAN_HUNT])
    assert codes == [0, 0, 0, 1, 0], "the NaN hunt's first training exits 1"
    logs = experiments_root / "digits" / "inside" / "logs"
    metrics = pd.read_csv(logs / "metrics.csv")
    assert list(metrics.loc[metrics["debug/features.0.0/weight_grad_norm"].notna(), "step"]) == [0, 5, 10, 15]
    plots = {path.stem for path in (logs.parent / "plots").glob("*.png")}
    assert "loss" in plots and not plots & {name.rsplit("/", 1)[-1] for name in metrics if name.startswith("debug/")}, (
        "the debug stats stay out of plots/")
    (trace,) = (logs / "torch_profiler").glob("*.pt.trace.json")
    assert any(event.get("name") == "ProfilerStep#1" for event in json.loads(trace.read_text())["traceEvents"])
    assert "top operators by self time" in (logs / "log.txt").read_text()
    quoted = re.search(r"The second command exits 1 with `(.*?)`", README, flags=re.S).group(1)
    hunt = experiments_root / "digits" / "nan-hunt"
    (restarted,) = (hunt / "restarted").iterdir()
    assert " ".join(quoted.split()) in (restarted / "logs" / "log.txt").read_text(), "the README quotes the log"
    assert (hunt / "logs" / "summary.json").is_file(), "the resume with the fix finished"


@pytest.mark.slow
def test_the_fine_tune_and_fork_blocks_run_as_written(experiments_root):
    from train_support import make_run, train

    make_run("digits", "baseline", "training.epochs=1", "data.batch_size=256")  # the Workflow's run, briefly
    assert train("digits", "baseline").returncode == 0
    assert _run_commands([*FINE_TUNE, *FORK]) == [0] * (len(FINE_TUNE) + len(FORK))
    digits = experiments_root / "digits"
    assert json.loads((digits / "finetuned" / "config.json").read_text())["training"]["init_from"] == "digits/baseline"
    log = (digits / "newhead" / "logs" / "log.txt").read_text()
    assert "init_from digits/baseline:last: loaded" in log and "not loaded (init_strict=false)" in log
    assert json.loads((digits / "newhead" / "logs" / "sessions.jsonl").read_text())["init_from"]["loaded"] > 0
    fork = json.loads((digits / "baseline-long" / "config.json").read_text())
    assert fork["meta"]["parent"] == "digits/baseline" and fork["training"]["epochs"] == 30
