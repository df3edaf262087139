"""01_initialize.py as a user runs it: real subprocesses, real files, the bad-input table."""

import copy
import importlib.util
import json
import os
import shlex
import stat
import subprocess
import sys
from datetime import datetime
from pathlib import Path

import pytest
import prewarmed
from conftest import REPO_ROOT, SRC, run_script, subprocess_env

from utils.configs import load_config_template
from utils.git_info import git_commit
from utils.management import RUN_SUBDIRS

SCRIPT = "01_initialize.py"


def tree(folder: Path) -> set[str]:
    """Every path below `folder` (relative), to compare before and after a command."""
    return {str(p.relative_to(folder)) for p in folder.rglob("*")}


def assert_one_error_line(result: subprocess.CompletedProcess, *fragments: str) -> None:
    assert result.returncode == 2, result
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    for fragment in fragments:
        assert fragment in lines[0]


def test_help_shows_examples() -> None:
    result = run_script(SCRIPT, "--help", timeout=60)
    assert result.returncode == 0
    assert result.stdout.startswith("usage: 01_initialize.py [-h]")
    assert "examples:" in result.stdout
    assert "python src/01_initialize.py -e baseline -r lr3e-3" in result.stdout
    assert "--set" in result.stdout and "CURRENT_EXP" in result.stdout


def test_experiment_only_creates_the_experiment_then_reports_it_exists(
    experiments_root: Path,
) -> None:
    first = run_script(SCRIPT, "-e", "baseline", timeout=60)
    assert first.returncode == 0, first.stderr
    assert (experiments_root / "baseline").is_dir()
    assert list((experiments_root / "baseline").iterdir()) == []
    assert "-r RUN" in first.stdout
    second = run_script(SCRIPT, "-e", "baseline", timeout=60)
    assert second.returncode == 0
    assert "already exists" in second.stdout


def test_run_gets_folders_and_resolved_config_with_meta(experiments_root: Path) -> None:
    args = ("-e", "exp", "-r", "run-1", "--set", "optimizer.lr=0.5", "--set", "model.hidden=64")
    result = run_script(SCRIPT, *args, timeout=60)
    assert result.returncode == 0, result.stderr
    run = experiments_root / "exp" / "run-1"
    assert sorted(p.name for p in run.iterdir()) == sorted([*RUN_SUBDIRS, "config.json"])
    assert "python src/02_train.py -e exp -r run-1" in result.stdout
    assert str(run) in result.stdout

    config = json.loads((run / "config.json").read_text())
    meta = config.pop("meta")
    expected = load_config_template("default")
    expected["optimizer"]["lr"] = 0.5
    expected["model"]["hidden"] = 64
    assert config == expected
    assert datetime.fromisoformat(meta["created"]).tzinfo is not None
    assert meta["git"]["commit"] == git_commit()
    assert meta["git"]["dirty"] in (True, False, None)
    assert meta["command"].endswith("01_initialize.py " + " ".join(args))
    assert meta["config_template"] == {
        "name": "default", "path": str(SRC.parent / "config" / "default.json")
    }
    assert meta["overrides"] == ["optimizer.lr=0.5", "model.hidden=64"]
    assert (meta["experiment"], meta["run"]) == ("exp", "run-1")


def test_set_values_parse_as_json_else_stay_text(experiments_root: Path) -> None:
    result = run_script(
        SCRIPT, "-e", "exp", "-r", "r",
        "--set", "seed=7", "--set", "logging.wandb=false", "--set", "training.grad_clip=null",
        "--set", "model.channels=[8, 16]", "--set", "logging.wandb_project=my project",
        "--set", "logging.wandb_tags=[\"a\", \"b\"]", "--set", "optimizer.lr=1.5e-3",
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    config = json.loads((experiments_root / "exp" / "r" / "config.json").read_text())
    assert config["seed"] == 7
    assert config["logging"]["wandb"] is False
    assert config["training"]["grad_clip"] is None
    assert config["model"]["channels"] == [8, 16]
    assert config["logging"]["wandb_project"] == "my project"
    assert config["logging"]["wandb_tags"] == ["a", "b"]
    assert config["optimizer"]["lr"] == 1.5e-3


def test_every_example_in_the_help_runs(experiments_root: Path) -> None:
    help_text = run_script(SCRIPT, "--help", timeout=60).stdout
    python = shlex.quote(prewarmed.python())  # each command starts forked from the prewarmed interpreter
    commands = [
        line.strip().replace("python src/", f"{python} src/")
        for line in help_text.splitlines()
        if "src/01_initialize.py" in line and not line.startswith("usage") and "path/to" not in line
    ]
    assert len(commands) >= 5
    result = subprocess.run(
        ["bash", "-c", "set -e\n" + "\n".join(commands)], capture_output=True, text=True,
        timeout=120, cwd=REPO_ROOT, env=subprocess_env(), check=False,
    )
    assert result.returncode == 0, result.stderr
    assert (experiments_root / "baseline" / "tagged" / "config.json").is_file()


def full_template(tmp_path: Path, name: str, **sections: dict) -> Path:
    """A copy of config/default.json with `sections` merged in, written to tmp_path/name."""
    config = copy.deepcopy(load_config_template("default"))
    for section, values in sections.items():
        config[section] = {**config.get(section, {}), **values}
    path = tmp_path / name
    path.write_text(json.dumps(config))
    return path


def test_config_given_as_a_path(tmp_path: Path, experiments_root: Path) -> None:
    template = full_template(tmp_path, "small.json", model={"hidden": 4})
    result = run_script(SCRIPT, "-e", "e", "-r", "r", "-c", str(template), timeout=60)
    assert result.returncode == 0, result.stderr
    config = json.loads((experiments_root / "e" / "r" / "config.json").read_text())
    assert config["model"]["hidden"] == 4
    assert config["meta"]["config_template"] == {"name": str(template), "path": str(template)}


def test_names_fall_back_to_current_exp_and_current_run(experiments_root: Path) -> None:
    result = run_script(SCRIPT, timeout=60, CURRENT_EXP="envexp", CURRENT_RUN="envrun")
    assert result.returncode == 0, result.stderr
    assert (experiments_root / "envexp" / "envrun" / "config.json").is_file()
    explicit = run_script(SCRIPT, "-r", "cli", timeout=60, CURRENT_EXP="envexp")
    assert explicit.returncode == 0, explicit.stderr
    assert (experiments_root / "envexp" / "cli" / "config.json").is_file()


def test_missing_experiment_name_names_the_flag_and_the_variable(experiments_root: Path) -> None:
    result = run_script(SCRIPT, "-r", "orphan", timeout=60)
    assert_one_error_line(result, "no experiment name", "-e/--experiment", "CURRENT_EXP")
    assert tree(experiments_root) == set()


@pytest.mark.parametrize("umask", [0o022, 0o027], ids=["umask-022", "umask-027"])
def test_run_folders_and_config_get_the_modes_of_the_users_umask(
    umask: int, experiments_root: Path
) -> None:
    previous = os.umask(umask)  # the child inherits it
    try:
        result = run_script(SCRIPT, "-e", "shared", "-r", "run", timeout=60)
    finally:
        os.umask(previous)
    assert result.returncode == 0, result.stderr
    run = experiments_root / "shared" / "run"
    modes = {
        str(p.relative_to(experiments_root)): stat.S_IMODE(p.stat().st_mode)
        for p in (run.parent, run, *run.iterdir())
    }
    expected = {str(p.relative_to(experiments_root)): 0o777 & ~umask for p in (run.parent, run)}
    expected |= {f"shared/run/{sub}": 0o777 & ~umask for sub in RUN_SUBDIRS}
    expected["shared/run/config.json"] = 0o666 & ~umask
    assert modes == expected


def test_list_shows_experiments_runs_and_times(experiments_root: Path) -> None:
    empty = run_script(SCRIPT, "--list", timeout=60)
    assert empty.returncode == 0 and "nothing under" in empty.stdout
    for args in (("-e", "a", "-r", "r1"), ("-e", "a", "-r", "r2"), ("-e", "b")):
        assert run_script(SCRIPT, *args, timeout=60).returncode == 0
    listing = run_script(SCRIPT, "--list", timeout=60)
    assert listing.returncode == 0
    rows = [line.split() for line in listing.stdout.splitlines()]
    assert rows[0] == ["EXPERIMENT", "RUN", "CREATED"]
    assert [row[:2] for row in rows[1:]] == [["a", "r1"], ["a", "r2"], ["b", "-"]]
    for row in rows[1:]:
        assert datetime.fromisoformat(row[2]).tzinfo is not None
    only_a = run_script(SCRIPT, "--list", "-e", "a", timeout=60)
    assert [line.split()[1] for line in only_a.stdout.splitlines()[1:]] == ["r1", "r2"]
    missing = run_script(SCRIPT, "--list", "-e", "zzz", timeout=60)
    assert_one_error_line(missing, "'zzz'", "a, b")


def _imported_heavy_libraries(*args: str) -> tuple[int, list[str]]:
    probe = (
        "import importlib.util, json, sys\n"
        f"spec = importlib.util.spec_from_file_location('init_cli', {str(SRC / SCRIPT)!r})\n"
        "module = importlib.util.module_from_spec(spec)\n"
        "spec.loader.exec_module(module)\n"
        f"code = module.main({list(args)!r})\n"
        "heavy = ('torch', 'wandb', 'tensorboard', 'matplotlib')\n"
        "print(json.dumps([code, sorted(m for m in heavy if m in sys.modules)]))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=60,
        env=subprocess_env(), check=False,
    )
    assert result.returncode == 0, result.stderr
    code, heavy = json.loads(result.stdout.splitlines()[-1])
    return code, heavy


def test_listing_and_creating_an_experiment_import_no_heavy_library(experiments_root: Path) -> None:
    assert _imported_heavy_libraries("-e", "light") == (0, [])
    assert _imported_heavy_libraries("--list") == (0, [])
    assert (experiments_root / "light").is_dir()


def test_creating_a_run_imports_its_task_but_no_logging_or_plotting_library(experiments_root: Path) -> None:
    """The task's schema is checked at creation, so its module (and torch) is imported."""
    assert _imported_heavy_libraries("-e", "light", "-r", "run") == (0, ["torch"])
    assert (experiments_root / "light" / "run" / "config.json").is_file()


# ---- the bad-input table: exit 2, one line, nothing created anywhere ----

BAD_NAMES = {
    "dotdot": "..",
    "dotdot-slash": "../x",
    "slash": "a/b",
    "absolute": "<abs>",
    "empty": "",
    "space": " ",
    "200-chars": "n" * 200,
    "newline": "a\nb",
}


@pytest.mark.parametrize("flag", ["-e", "-r"])
@pytest.mark.parametrize("label", list(BAD_NAMES))
def test_bad_name_exits_2_and_creates_nothing(
    label: str, flag: str, tmp_path: Path, experiments_root: Path
) -> None:
    name = str(tmp_path / "abs") if BAD_NAMES[label] == "<abs>" else BAD_NAMES[label]
    args = ["-e", name, "-r", "run"] if flag == "-e" else ["-e", "exp", "-r", name]
    before = tree(tmp_path)
    result = run_script(SCRIPT, *args, timeout=60)
    assert_one_error_line(result, "invalid", "name")
    assert tree(tmp_path) == before


def test_nul_in_a_name_exits_2_and_creates_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    spec = importlib.util.spec_from_file_location("init_cli_nul", SRC / SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    before = tree(tmp_path)
    assert module.main(["-e", "x\0y", "-r", "run"]) == 2
    assert module.main(["-e", "exp", "-r", "x\0y"]) == 2
    errors = capsys.readouterr().err.splitlines()
    assert len(errors) == 2 and all(line.startswith("error: invalid") for line in errors)
    assert tree(tmp_path) == before


def test_missing_config_names_the_choices(tmp_path: Path) -> None:
    before = tree(tmp_path)
    result = run_script(SCRIPT, "-e", "exp", "-r", "run", "-c", "nosuch", timeout=60)
    assert_one_error_line(result, "'nosuch'", "nosuch.json", "available templates: default")
    assert tree(tmp_path) == before


def test_invalid_json_config_names_file_line_and_column(tmp_path: Path) -> None:
    broken = tmp_path / "broken.json"
    broken.write_text('{\n  "seed": 1,\n  "lr": ,\n}\n')
    before = tree(tmp_path)
    result = run_script(SCRIPT, "-e", "exp", "-r", "run", "-c", str(broken), timeout=60)
    assert_one_error_line(result, str(broken), "line 3, column 9")
    assert tree(tmp_path) == before


@pytest.mark.parametrize(
    ("override", "fragments"),
    [
        ("optimizer.lrr=0.1", ("unknown key 'optimizer.lrr'", "did you mean 'optimizer.lr'?")),
        ("training.epochs=abc", ("training.epochs='abc'", "expected int")),
        ("training.epochs=3.5", ("training.epochs=3.5", "expected int")),
        ("training.epochs=0", ("training.epochs=0", "> 0")),
        ("logging.wandb_tags=a", ("logging.wandb_tags='a'", "expected list of str")),
        ("nosection.x=1", ("unknown key 'nosection'", "the known sections are data, debug, distributed, early_stopping")),
        ("training.amp=true", ("training.amp was replaced by training.precision ('fp32' or 'bf16' or 'fp16')",)),
        ("optimizer.lr", ("has no '='", "key.sub=value")),
        ("=3", ("empty key",)),
        ("model=3", ("'model' is a section",)),
    ],
)
def test_bad_override_exits_2_and_creates_nothing(
    override: str, fragments: tuple[str, ...], tmp_path: Path
) -> None:
    before = tree(tmp_path)
    result = run_script(SCRIPT, "-e", "exp", "-r", "run", "--set", override, timeout=60)
    assert_one_error_line(result, *fragments)
    assert tree(tmp_path) == before


def test_template_with_an_unknown_key_exits_2_and_creates_nothing(tmp_path: Path) -> None:
    template = full_template(tmp_path, "typo.json", training={"epoch": 1})
    before = tree(tmp_path)
    result = run_script(SCRIPT, "-e", "exp", "-r", "run", "-c", str(template), timeout=60)
    assert_one_error_line(
        result, str(template), "unknown key 'training.epoch'", "did you mean 'training.epochs'?"
    )
    assert tree(tmp_path) == before


def test_template_with_a_wrong_type_exits_2_and_creates_nothing(tmp_path: Path) -> None:
    template = full_template(tmp_path, "wrong.json", data={"batch_size": "64"})
    before = tree(tmp_path)
    result = run_script(SCRIPT, "-e", "exp", "-r", "run", "-c", str(template), timeout=60)
    assert_one_error_line(result, str(template), "data.batch_size='64'", "expected int")
    assert tree(tmp_path) == before


@pytest.mark.parametrize("args", [["--run=--"], ["-r--"], ["--run", "x", "--run=--"]])
def test_a_double_dash_run_name_is_an_invalid_name(args: list[str], tmp_path: Path) -> None:
    before = tree(tmp_path)
    result = run_script(SCRIPT, "-e", "exp", *args, timeout=60)
    assert_one_error_line(result, "invalid run name '--'")
    assert tree(tmp_path) == before


def test_existing_run_is_left_byte_for_byte_unchanged(
    tmp_path: Path, experiments_root: Path
) -> None:
    assert run_script(SCRIPT, "-e", "exp", "-r", "run", timeout=60).returncode == 0
    config = experiments_root / "exp" / "run" / "config.json"
    content, stamp = config.read_bytes(), config.stat().st_mtime_ns
    (config.parent / "logs" / "log.txt").write_text("kept")
    before = tree(tmp_path)
    result = run_script(SCRIPT, "-e", "exp", "-r", "run", "--set", "seed=9", timeout=60)
    assert_one_error_line(result, "already exists", "nothing was changed")
    result = run_script(SCRIPT, "-e", "exp", "-r", "run", "-c", "does-not-exist", timeout=60)
    assert_one_error_line(result, "already exists")  # named before the template is read
    assert config.read_bytes() == content and config.stat().st_mtime_ns == stamp
    assert (config.parent / "logs" / "log.txt").read_text() == "kept"
    assert tree(tmp_path) == before


def test_two_processes_creating_the_same_run_exactly_one_succeeds(experiments_root: Path) -> None:
    command = [sys.executable, str(SRC / SCRIPT), "-e", "race", "-r", "same"]
    procs = [
        subprocess.Popen(
            [*command, "--set", f"seed={i}"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            text=True, env=subprocess_env(),
        )
        for i in range(2)
    ]
    outcomes = []
    for proc in procs:
        _, err = proc.communicate(timeout=60)
        outcomes.append((proc.returncode, err))
    assert sorted(code for code, _ in outcomes) == [0, 2]
    loser = next(err for code, err in outcomes if code == 2)
    assert "already exists" in loser and len(loser.splitlines()) == 1
    winner_seed = next(i for i, (code, _) in enumerate(outcomes) if code == 0)
    config = json.loads((experiments_root / "race" / "same" / "config.json").read_text())
    assert config["seed"] == winner_seed
    assert [p.name for p in (experiments_root / "race").iterdir()] == ["same"]


# ---- values that would fail only in training, refused at creation (issue 16, item 13) ----

@pytest.mark.parametrize(
    ("override", "fragments"),
    [
        ("task=a.b", ("task='a.b' is not a task name", "known tasks: digits")),
        ("task=../../etc", ("task='../../etc' is not a task name",)),
        ("data.val_fraction=0.0001", ("data.val_fraction=0.0001 holds out 0 of the 1797 images",)),
        ("model.hidden=10000000000", ("parameters", "GiB of memory available", "model.hidden=10000000000")),
    ],
)
def test_a_value_training_could_not_use_exits_2_at_creation(override: str, fragments: tuple, tmp_path: Path) -> None:
    """One case per place that checks (the task's name, a task section's own check, the model's
    size); tests/test_run_config.py has every value."""
    before = tree(tmp_path)
    result = run_script(SCRIPT, "-e", "exp", "-r", "run", "--set", override, timeout=60)
    assert_one_error_line(result, *fragments)
    assert tree(tmp_path) == before


# ---- overrides see the schema, not the template (issue 16, items 16 and 20) ----

def test_overrides_set_keys_a_template_leaves_out_and_merge_a_section_given_whole(
    tmp_path: Path, experiments_root: Path
) -> None:
    template = tmp_path / "sparse.json"
    template.write_text(json.dumps({"task": "digits", "training": {"best_metric": "val/accuracy", "best_mode": "max"}}))
    result = run_script(
        SCRIPT, "-e", "e", "-r", "r", "-c", str(template), "--set", "training.grad_clip=0.5",
        "--set", "optimizer.lr=0.001", "--set", 'training={"epochs": 3}', timeout=60,
    )
    assert result.returncode == 0, result.stderr
    config = json.loads((experiments_root / "e" / "r" / "config.json").read_text())
    assert config["training"]["grad_clip"] == 0.5 and config["optimizer"]["lr"] == 0.001
    assert config["training"]["epochs"] == 3
    assert (config["training"]["best_metric"], config["training"]["best_mode"]) == ("val/accuracy", "max")
    typo = run_script(SCRIPT, "-e", "e", "-r", "r2", "-c", str(template), "--set", "training.grad_clp=0.5", timeout=60)
    assert_one_error_line(typo, "unknown key 'training.grad_clp'", "did you mean 'training.grad_clip'?")


def test_a_task_named_without_a_template_gets_its_declared_defaults(experiments_root: Path) -> None:
    from training.run_config import parse_run_config

    result = run_script(SCRIPT, "-e", "e", "-r", "cnn", "--set", "task=digits", "--set", "training.epochs=2", timeout=60)
    assert result.returncode == 0, result.stderr
    assert "no template: the task's defaults" in result.stdout
    config = json.loads((experiments_root / "e" / "cnn" / "config.json").read_text())
    meta = config.pop("meta")
    assert config == parse_run_config({"task": "digits", "training": {"epochs": 2}}).raw
    assert config["model"]["hidden"] == 128 and config["training"]["best_metric"] == "val/loss"
    assert meta["config_template"] is None and meta["overrides"] == ["task=digits", "training.epochs=2"]


@pytest.mark.parametrize("args", [["-c", "default", "--set", "seed=3"], ["--set", "task=digits"]])
def test_show_config_prints_the_complete_config_and_creates_nothing(args: list[str], tmp_path: Path) -> None:
    from training.run_config import parse_run_config

    before = tree(tmp_path)
    result = run_script(SCRIPT, "--show-config", *args, timeout=60)
    assert result.returncode == 0, result.stderr
    shown = json.loads(result.stdout)
    if args[0] == "-c":
        assert shown == {**load_config_template("default"), "seed": 3}
    else:
        assert shown == parse_run_config({"task": "digits"}).raw and "meta" not in shown
    assert tree(tmp_path) == before


def test_show_config_refuses_a_bad_config_in_one_line(tmp_path: Path) -> None:
    result = run_script(SCRIPT, "--show-config", "--set", "task=digits", "--set", "data.image_size=16", timeout=60)
    assert_one_error_line(result, "--set (no template): unknown key 'data.image_size'")
