"""Planning trials: grid order and names, seeded random draws, overrides, commands, the search."""

import math

from sweeps.spec import parse_spec
from sweeps.state import SweepState, TrialRecord
from sweeps.trials import (
    TRAIN_SCRIPT,
    PlannedSearch,
    edge_params,
    plan_grid,
    plan_random,
    plan_trials,
    total_trials,
    train_command,
    trial_overrides,
)
from utils.configs import apply_overrides, load_config_template


def make_spec(method: str = "grid", parameters: dict | None = None, **extra):
    raw = {
        "name": "sw", "method": method, "metric": "val/loss", "mode": "min",
        "parameters": parameters or {"optimizer.lr": [0.001, 0.003], "model.hidden": [16, 32, 64]}, **extra,
    }
    return parse_spec(raw, "spec.json")


RANDOM = {
    "optimizer.lr": {"low": 1e-4, "high": 1e-1, "log": True},
    "model.hidden": {"low": 8, "high": 12},
    "model.dropout": {"low": 0.0, "high": 0.5},
    "optimizer.name": {"choices": ["adamw", "sgd"]},
}


def test_a_grid_runs_every_combination_numbered_over_sorted_keys_with_zero_padded_names() -> None:
    plans = plan_grid(make_spec())
    assert [plan.run for plan in plans] == [f"sw-{n:03d}" for n in range(6)]
    assert [plan.number for plan in plans] == list(range(6))
    # model.hidden sorts before optimizer.lr: the last of the sorted keys varies fastest
    assert [(plan.params["model.hidden"], plan.params["optimizer.lr"]) for plan in plans] == [
        (16, 0.001), (16, 0.003), (32, 0.001), (32, 0.003), (64, 0.001), (64, 0.003),
    ]
    assert all(list(plan.params) == ["optimizer.lr", "model.hidden"] for plan in plans), "shown in the spec's order"
    assert total_trials(make_spec()) == 6


def test_the_order_of_the_keys_in_the_spec_changes_no_trial() -> None:
    swapped = {"model.hidden": [16, 32, 64], "optimizer.lr": [0.001, 0.003]}
    assert plan_grid(make_spec(parameters=swapped)) == plan_grid(make_spec())
    reordered = dict(reversed(list(RANDOM.items())))
    assert plan_random(make_spec("random", reordered, trials=8)) == plan_random(make_spec("random", RANDOM, trials=8))


def test_random_draws_are_the_same_for_the_same_seed_and_differ_for_another() -> None:
    spec = make_spec("random", RANDOM, trials=20, seed=3)
    assert plan_random(spec) == plan_random(make_spec("random", RANDOM, trials=20, seed=3))
    assert plan_random(spec) != plan_random(make_spec("random", RANDOM, trials=20, seed=4))
    assert total_trials(spec) == 20 and len(plan_random(spec)) == 20


def test_more_random_trials_keep_the_first_ones() -> None:
    few = plan_random(make_spec("random", RANDOM, trials=5))
    assert plan_random(make_spec("random", RANDOM, trials=9))[:5] == few


def test_random_draws_stay_in_their_ranges_with_the_right_types() -> None:
    plans = plan_random(make_spec("random", RANDOM, trials=200))
    lrs = [plan.params["optimizer.lr"] for plan in plans]
    assert all(isinstance(lr, float) and 1e-4 <= lr <= 1e-1 for lr in lrs)
    # log-uniform: about a third of the draws in each decade
    in_first_decade = sum(lr < 1e-3 for lr in lrs)
    assert 40 < in_first_decade < 95
    hidden = [plan.params["model.hidden"] for plan in plans]
    assert all(type(h) is int for h in hidden) and set(hidden) == {8, 9, 10, 11, 12}
    assert all(0.0 <= plan.params["model.dropout"] <= 0.5 for plan in plans)
    assert {plan.params["optimizer.name"] for plan in plans} == {"adamw", "sgd"}


def test_an_integer_log_range_reaches_both_bounds() -> None:
    plans = plan_random(make_spec("random", {"model.hidden": {"low": 1, "high": 4, "log": True}}, trials=300))
    values = {plan.params["model.hidden"] for plan in plans}
    assert values == {1, 2, 3, 4}


def test_optuna_trials_are_not_planned_but_every_bound_and_choice_is_checked() -> None:
    spec = make_spec("optuna", {"optimizer.lr": {"low": 0.001, "high": 0.1}, "optimizer.name": ["adamw", "sgd"]},
                     trials=6)
    assert plan_trials(spec) is None and total_trials(spec) == 6
    edges = edge_params(spec)
    assert {"optimizer.lr": 0.001, "optimizer.name": "adamw"} in edges
    assert {"optimizer.lr": 0.1, "optimizer.name": "adamw"} in edges
    assert {"optimizer.lr": 0.001, "optimizer.name": "sgd"} in edges


def test_overrides_apply_set_first_then_the_trial_parameters() -> None:
    spec = make_spec(set={"training.epochs": 2, "model.channels": [4, 8], "optimizer.name": "sgd"})
    overrides = trial_overrides(spec, {"optimizer.lr": 0.001, "model.hidden": 16})
    assert overrides == ['training.epochs=2', 'model.channels=[4, 8]', 'optimizer.name="sgd"',
                         "optimizer.lr=0.001", "model.hidden=16"]
    config = apply_overrides(load_config_template("default"), overrides)
    assert config["model"] == {**config["model"], "channels": [4, 8], "hidden": 16}
    assert config["optimizer"]["name"] == "sgd" and math.isclose(config["optimizer"]["lr"], 0.001)


def test_the_train_command_resumes_only_when_asked() -> None:
    assert train_command("e", "sw-000", False) == [str(TRAIN_SCRIPT), "-e", "e", "-r", "sw-000"]
    assert train_command("e", "sw-000", True)[-1] == "--resume"
    assert TRAIN_SCRIPT.is_file()


def test_the_planned_search_hands_out_each_trial_not_yet_in_the_state_once() -> None:
    spec = make_spec()
    search = PlannedSearch(spec, "e")
    state = SweepState("sw", "e", spec.raw, spec.fingerprint())
    handed = []
    while (plan := search.next_trial(state)) is not None:
        handed.append(plan.run)
        state.trials.append(TrialRecord(plan.number, plan.run, plan.params))
    assert handed == [f"sw-{n:03d}" for n in range(6)]
    assert search.trial_command(state.trials[2], resume=True) == train_command("e", "sw-002", True)
