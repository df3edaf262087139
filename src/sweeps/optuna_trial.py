"""The process of one Optuna trial: trains its run through 02_train.py's `main` and reports each
evaluated epoch's metric to the study, whose median pruner may stop the run.

    python src/sweeps/optuna_trial.py --storage JOURNAL --study NAME --trial-number K --metric M \
        --startup-trials S --first-epoch E -- <02_train.py arguments>

A pruned run stops at the epoch boundary like early stopping (checkpoint saved, exit 0,
`stopped_early` in its summary.json starts with "pruned"); the driver then tells the study.
Exit codes are 02_train.py's: 0 done or pruned, 1 failed, 2 usage error, 130/143 stopped by a
signal. Under torchrun only rank 0 talks to the study (the engine asks callbacks on rank 0).
"""

import argparse
import importlib.util
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

SRC = Path(__file__).resolve().parents[1]
if sys.path and Path(sys.path[0]).resolve() == Path(__file__).resolve().parent:
    sys.path[0] = str(SRC)  # run as a script: import from src/, as 02_train.py does

from sweeps.optuna_search import PruningRule, import_optuna, trial_by_number  # noqa: E402
from sweeps.optuna_storage import open_storage  # noqa: E402
from sweeps.trials import TRAIN_SCRIPT  # noqa: E402
from utils.errors import SweepSpecError  # noqa: E402


def parse_args(argv: list[str]) -> tuple[argparse.Namespace, list[str]]:
    """The study options, and the 02_train.py arguments after `--`."""
    split = argv.index("--") if "--" in argv else len(argv)
    parser = argparse.ArgumentParser(description="Train one trial of an Optuna sweep (started by 04_sweep.py).")
    parser.add_argument("--storage", required=True, help="the study's journal file (<sweep dir>/study.journal)")
    parser.add_argument("--study", required=True, help="the study name (the sweep's name)")
    parser.add_argument("--trial-number", type=int, required=True, help="the Optuna trial this run is")
    parser.add_argument("--metric", required=True, help="the metric reported each evaluated epoch")
    parser.add_argument("--startup-trials", type=int, required=True, help="completed trials before pruning")
    parser.add_argument("--first-epoch", type=int, required=True, help="the first epoch that may be pruned")
    return parser.parse_args(argv[:split]), argv[split + 1:]


class PruningReporter:
    """The epoch callback: reports the metric to the Optuna trial, stops the run when pruned.

    The study is opened at the first call, so ranks other than 0, which are never asked,
    never connect to it. A trial the study has finished already (its run folder was deleted and
    the sweep trains it again) reports nothing: the study keeps the result it was told.
    """

    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.trial: Any = None
        self.finished = False

    def __call__(self, epoch: int, history: dict[str, float]) -> str | None:
        metric = self.args.metric
        if metric not in history:
            raise SweepSpecError(
                f"the sweep's metric {metric!r} is not logged by this run (it logs {', '.join(sorted(history))}); "
                "set 'metric' in the spec to one of them"
            )
        trial = self._trial()
        if self.finished:
            return None
        value = history[metric]
        trial.report(value, step=epoch)
        if trial.should_prune():
            return f"pruned by optuna's median pruner at epoch {epoch} ({metric}={value:.4g})"
        return None

    def _trial(self) -> Any:
        if self.trial is None:
            optuna = import_optuna()
            rule = PruningRule(self.args.startup_trials, self.args.first_epoch)
            storage = open_storage(self.args.storage)
            study = optuna.load_study(study_name=self.args.study, storage=storage, pruner=rule.build())
            self.trial = trial_by_number(study, self.args.trial_number)
            self.finished = storage.get_trial(self.trial._trial_id).state.is_finished()
        return self.trial


def load_train_main() -> Callable[..., int]:
    """`main` of src/02_train.py (a file name that starts with a digit cannot be imported)."""
    spec = importlib.util.spec_from_file_location("train_cli", TRAIN_SCRIPT)
    assert spec is not None and spec.loader is not None, f"cannot load {TRAIN_SCRIPT}"
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.main


def main(argv: list[str] | None = None) -> int:
    args, train_args = parse_args(sys.argv[1:] if argv is None else argv)
    return load_train_main()(train_args, callbacks=[PruningReporter(args)])


if __name__ == "__main__":
    sys.exit(main())
