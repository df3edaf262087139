"""The sweep spec: strict keys with the closest one named, spaces per method, the fingerprint."""

import json
from pathlib import Path

import pytest

from sweeps.spec import Choices, Range, SlurmResources, load_spec, parse_spec
from utils.errors import ConfigSyntaxError, SweepSpecError

GRID = {
    "name": "lr", "method": "grid", "parameters": {"optimizer.lr": [0.001, 0.003], "model.hidden": [16, 32]},
    "metric": "val/accuracy", "mode": "max",
}


def spec_with(**changes):
    raw = {**GRID, **changes}
    return parse_spec({key: value for key, value in raw.items() if value is not None}, "spec.json")


def error_of(**changes) -> str:
    with pytest.raises(SweepSpecError) as caught:
        spec_with(**changes)
    return str(caught.value)


def test_a_grid_spec_loads_with_defaults_filled_in(tmp_path: Path) -> None:
    path = tmp_path / "s.json"
    path.write_text(json.dumps(GRID))
    spec = load_spec(path)
    assert spec.parameters == {"optimizer.lr": Choices((0.001, 0.003)), "model.hidden": Choices((16, 32))}
    assert (spec.config, spec.set, spec.trials, spec.seed) == ("default", {}, None, 0)
    assert spec.slurm == SlurmResources(partition=None, time_min=60, gpus_per_trial=0, cpus_per_trial=None)
    assert spec.source == str(path) and spec.raw == GRID


def test_an_unknown_key_names_the_closest_known_one() -> None:
    message = error_of(metrc="val/loss")
    assert "unknown key 'metrc'" in message and "did you mean 'metric'?" in message


def test_a_misspelt_parameters_or_set_names_the_free_object() -> None:
    raw = {key: value for key, value in GRID.items() if key != "parameters"}
    with pytest.raises(SweepSpecError, match="unknown key 'paramters'; did you mean 'parameters'?"):
        parse_spec({**raw, "paramters": GRID["parameters"]}, "spec.json")


def test_an_unknown_key_in_a_range_names_the_closest_known_one() -> None:
    message = error_of(method="random", trials=3, parameters={"optimizer.lr": {"low": 0.1, "hihg": 1.0}})
    assert "'hihg'" in message and "did you mean 'high'?" in message


@pytest.mark.parametrize("missing", ["name", "method", "parameters", "metric"])
def test_a_missing_required_key_is_named(missing: str) -> None:
    assert f"required key '{missing}' is missing" in error_of(**{missing: None})


@pytest.mark.parametrize("parameters", [{}, {"optimizer.lr": []}, {"optimizer.lr": [1e-3], "model.hidden": []}])
def test_an_empty_grid_is_an_error(parameters: dict) -> None:
    assert "empty" in error_of(parameters=parameters)


@pytest.mark.parametrize("method", ["random", "optuna"])
def test_random_and_optuna_need_trials(method: str) -> None:
    assert f"method '{method}' needs 'trials'" in error_of(method=method)


def test_a_grid_refuses_trials_and_ranges() -> None:
    assert "a grid runs every combination" in error_of(trials=3)
    assert "a grid takes a list of values" in error_of(parameters={"optimizer.lr": {"low": 0.1, "high": 1.0}})


@pytest.mark.parametrize("changes, fragment", [
    ({"method": "bayes"}, "method='bayes' has type str; expected 'grid' or 'random' or 'optuna'"),
    ({"mode": "maximum"}, "mode='maximum' has type str; expected 'min' or 'max' or null"),
    ({"trials": 0, "method": "random"}, "trials=0 is out of range; expected >= 1"),
    ({"trials": True, "method": "random"}, "trials=True has type bool; expected int or null"),
    ({"seed": -1}, "seed=-1 is out of range; expected >= 0"),
    ({"name": "a/b"}, "invalid sweep name"),
    ({"name": "x" * 125}, "invalid sweep name"),
    ({"set": [1]}, "'set' must be a JSON object"),
    ({"metric": 3}, "metric=3 has type int; expected str"),
    ({"set": {"optimizer.lr": 0.1}}, "'optimizer.lr' is both swept in 'parameters' and fixed in 'set'"),
])
def test_bad_values_are_named(changes: dict, fragment: str) -> None:
    assert fragment in error_of(**changes)


@pytest.mark.parametrize("method", ["random", "optuna"])
def test_more_trials_than_a_sweep_runs_are_refused_and_the_most_are_accepted(method: str) -> None:
    assert spec_with(method=method, trials=10_000).trials == 10_000
    assert "trials=10001 is more than a sweep runs (at most 10000" in error_of(method=method, trials=10_001)
    assert "trials=1000000000000 is more than a sweep runs" in error_of(method=method, trials=10**12)


def test_a_grid_of_more_combinations_than_a_sweep_runs_is_refused_without_listing_them() -> None:
    values = list(range(100))
    assert len(spec_with(parameters={"optimizer.lr": values, "model.hidden": values}).parameters) == 2
    huge = {key: values for key in ("optimizer.lr", "model.hidden", "seed", "training.epochs", "data.batch_size")}
    assert "the grid's 10000000000 combinations are more than a sweep runs" in error_of(parameters=huge)


@pytest.mark.parametrize("space, fragment", [
    ({"low": 1.0, "high": 0.5}, "low=1.0 must be below high=0.5"),
    ({"low": 0.0, "high": 1.0, "log": True}, "a log range needs low > 0"),
    ({"low": "a", "high": 1.0}, "low='a' has type str; expected int or float"),
    ({"low": 0.1, "high": 1.0, "log": "yes"}, "log='yes' has type str; expected bool"),
    ({"choices": []}, "the list of values is empty"),
    ({"choices": 3}, "choices=3 has type int; expected list"),
    (3, "expected a list of values"),
    ({"low": 0.1, "high": float("inf")}, "high=inf is out of range; expected a finite number"),
])
def test_bad_spaces_are_named(space, fragment: str) -> None:
    assert fragment in error_of(method="random", trials=2, parameters={"optimizer.lr": space})


def test_an_empty_slurm_block_takes_the_defaults() -> None:
    assert spec_with(slurm={}).slurm == SlurmResources()


def test_the_slurm_block_is_read_into_resources() -> None:
    spec = spec_with(slurm={"partition": "gpu", "time_min": 90, "gpus_per_trial": 2, "cpus_per_trial": 8})
    assert spec.slurm == SlurmResources("gpu", 90, 2, 8)


@pytest.mark.parametrize("slurm, fragment", [
    ({"gpu_per_trial": 2}, "unknown key 'slurm.gpu_per_trial'; did you mean 'slurm.gpus_per_trial'?"),
    ({"time_min": 0}, "slurm.time_min=0 is out of range; expected >= 1"),
    ({"cpus_per_trial": 2.5}, "slurm.cpus_per_trial=2.5 has type float; expected int or null"),
    ({"gpus_per_trial": None}, "slurm.gpus_per_trial=None has type null; expected int"),
    ({"gpus_per_trial": True}, "slurm.gpus_per_trial=True has type bool; expected int"),
    ({"partition": ""}, "slurm.partition='' is out of range; expected a partition name"),
    ([1], "slurm=[1] must be a section (an object of keys)"),
])
def test_the_slurm_block_is_checked_with_the_spec_whatever_the_executor(slurm, fragment: str) -> None:
    assert fragment in error_of(slurm=slurm)


def test_random_spaces_take_lists_choices_and_ranges() -> None:
    spec = spec_with(method="optuna", trials=4, parameters={
        "optimizer.lr": {"low": 1e-4, "high": 1e-2, "log": True},
        "model.hidden": {"low": 8, "high": 64},
        "optimizer.name": {"choices": ["adamw", "sgd"]},
        "model.dropout": [0.0, 0.1],
    })
    assert spec.parameters["optimizer.lr"] == Range(1e-4, 1e-2, True)
    assert spec.parameters["model.hidden"].integer and not spec.parameters["optimizer.lr"].integer
    assert spec.parameters["optimizer.name"] == Choices(("adamw", "sgd"))
    assert spec.parameters["model.dropout"] == Choices((0.0, 0.1))


def test_a_missing_or_malformed_file_is_a_one_line_error(tmp_path: Path) -> None:
    with pytest.raises(SweepSpecError, match="does not exist"):
        load_spec(tmp_path / "missing.json")
    (tmp_path / "bad.json").write_text('{"name": "a",\n "name": "b"}')
    with pytest.raises(ConfigSyntaxError, match="duplicate key 'name'"):
        load_spec(tmp_path / "bad.json")
    (tmp_path / "list.json").write_text("[1]")
    with pytest.raises(ConfigSyntaxError, match="top level must be a JSON object"):
        load_spec(tmp_path / "list.json")


def test_the_fingerprint_holds_every_field_but_slurm_with_defaults() -> None:
    spec = spec_with(slurm={"partition": "gpu"})
    assert spec.fingerprint() == {
        "name": "lr", "config": "default", "method": "grid", "parameters": GRID["parameters"],
        "metric": "val/accuracy", "mode": "max", "set": {}, "trials": None, "seed": 0,
    }
    assert spec_with(slurm={"partition": "cpu"}).fingerprint() == spec.fingerprint()
    assert spec_with(set={"training.epochs": 2}).fingerprint() != spec.fingerprint()
