"""Experiments and runs on disk: root, paths, atomic creation, listing."""

import math
import os
import stat
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from utils import management
from utils.configs import load_config_file
from utils.errors import (
    ConfigValueError,
    ExperimentNotFoundError,
    InvalidNameError,
    RunExistsError,
    RunNotFoundError,
)
from utils.management import (
    RUN_SUBDIRS,
    RunInfo,
    create_experiment,
    create_run,
    experiment_path,
    format_run_table,
    list_all,
    list_experiments,
    list_runs,
    require_new_run,
    require_run,
    run_path,
)

CONFIG = {"seed": 1, "model": {"hidden": 8}}


def test_root_comes_from_the_environment(experiments_root: Path) -> None:
    assert management.experiments_root() == experiments_root.resolve()


def test_root_defaults_to_the_repo_experiments_folder(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("EXPERIMENTS_ROOT")
    assert management.experiments_root() == Path(__file__).resolve().parents[1] / "experiments"


def test_paths_lie_under_the_root(experiments_root: Path) -> None:
    assert experiment_path("e") == experiments_root / "e"
    assert run_path("e", "r") == experiments_root / "e" / "r"


@pytest.mark.parametrize("bad", ["..", "../x", "a/b", "/abs", "", " ", "x\0y", "a\nb", "n" * 200])
def test_bad_names_never_become_paths(bad: str) -> None:
    with pytest.raises(InvalidNameError, match="invalid experiment name"):
        experiment_path(bad)
    with pytest.raises(InvalidNameError, match="invalid run name"):
        run_path("ok", bad)


def test_symlinked_experiment_pointing_outside_is_refused(
    tmp_path: Path, experiments_root: Path
) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (experiments_root / "link").symlink_to(outside)
    with pytest.raises(InvalidNameError, match="outside the experiments root"):
        create_run("link", "r", CONFIG)
    assert list(outside.iterdir()) == []


def test_create_experiment_is_idempotent(experiments_root: Path) -> None:
    path = create_experiment("e")
    (path / "marker").write_text("x")
    assert create_experiment("e") == path
    assert (path / "marker").read_text() == "x"


def test_create_run_builds_the_whole_folder(experiments_root: Path) -> None:
    path = create_run("e", "r", CONFIG)
    assert path == experiments_root / "e" / "r"
    assert sorted(p.name for p in path.iterdir()) == sorted([*RUN_SUBDIRS, "config.json"])
    assert load_config_file(path / "config.json") == CONFIG
    assert [p.name for p in (experiments_root / "e").iterdir()] == ["r"]


@pytest.fixture(params=[0o022, 0o027], ids=["umask-022", "umask-027"])
def umask(request: pytest.FixtureRequest) -> Iterator[int]:
    """Run the test under this umask, then restore the previous one."""
    previous = os.umask(request.param)
    try:
        yield request.param
    finally:
        os.umask(previous)


def test_run_folders_get_the_mode_mkdir_gives_under_the_umask(umask: int) -> None:
    path = create_run("e", "r", CONFIG)
    for folder in (path.parent, path, *(path / sub for sub in RUN_SUBDIRS)):
        assert stat.S_IMODE(folder.stat().st_mode) == 0o777 & ~umask, folder


def test_create_run_never_overwrites(experiments_root: Path) -> None:
    path = create_run("e", "r", CONFIG)
    before = (path / "config.json").read_bytes()
    with pytest.raises(RunExistsError, match="already exists .*nothing was changed"):
        create_run("e", "r", {"seed": 2})
    assert (path / "config.json").read_bytes() == before
    with pytest.raises(RunExistsError):
        require_new_run("e", "r")
    assert require_new_run("e", "other") == experiments_root / "e" / "other"


def test_unsaveable_config_creates_nothing(experiments_root: Path) -> None:
    with pytest.raises(ConfigValueError):
        create_run("e", "r", {"loss": math.nan})
    assert list(experiments_root.iterdir()) == []


def test_concurrent_creators_of_one_run_exactly_one_wins(experiments_root: Path) -> None:
    workers = 8
    barrier = threading.Barrier(workers)
    outcomes: list[object] = [None] * workers

    def create(index: int) -> None:
        barrier.wait(timeout=30)
        try:
            create_run("race", "same", {"seed": index})
            outcomes[index] = "created"
        except RunExistsError:
            outcomes[index] = "exists"

    threads = [threading.Thread(target=create, args=(i,)) for i in range(workers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert sorted(outcomes) == ["created"] + ["exists"] * (workers - 1)
    assert load_config_file(experiments_root / "race" / "same" / "config.json")["seed"] == outcomes.index("created")
    assert [p.name for p in (experiments_root / "race").iterdir()] == ["same"]


def test_require_run_says_how_to_create_it() -> None:
    with pytest.raises(RunNotFoundError, match=r"01_initialize.py -e e -r r"):
        require_run("e", "r")


def test_listing_shows_runs_and_empty_experiments(experiments_root: Path) -> None:
    create_run("b", "r2", {"meta": {"created": "2024-01-01T00:00:00+00:00"}})
    create_run("b", "r1", CONFIG)
    create_experiment("a")
    (experiments_root / "b" / ".r3.creating-x").mkdir()  # a run still being staged
    (experiments_root / "b" / ".r3.creating-x" / "config.json").write_text("{}")
    (experiments_root / "b" / "not-a-run").mkdir()
    assert list_experiments() == ["a", "b"]
    assert [row.run for row in list_runs("b")] == ["r1", "r2"]
    rows = list_all()
    assert [(row.experiment, row.run) for row in rows] == [("a", None), ("b", "r1"), ("b", "r2")]
    assert rows[2] == RunInfo("b", "r2", "2024-01-01T00:00:00+00:00")


def test_listing_an_unknown_experiment_names_the_existing_ones() -> None:
    create_experiment("alpha")
    with pytest.raises(ExperimentNotFoundError, match="'beta' does not exist.*alpha"):
        list_runs("beta")


def test_listing_a_missing_root_is_empty(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("EXPERIMENTS_ROOT", str(tmp_path / "nowhere"))
    assert list_all() == []


def test_table_aligns_columns() -> None:
    table = format_run_table([RunInfo("long-experiment", "r", "t1"), RunInfo("e", None, "t2")])
    assert table.splitlines() == [
        "EXPERIMENT       RUN  CREATED",
        "long-experiment  r    t1",
        "e                -    t2",
    ]
