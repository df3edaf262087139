"""Sweeps: many runs of one config with different parameters, plus one state file.

`src/04_sweep.py` is the command line; `src/03_compare.py --sweep` tabulates and plots a sweep
(`sweeps.table`, `visualization.sweep_plots`). The modules, in the order a sweep uses them:

- `spec`: reads the strict JSON spec (and its `slurm` resources) into a frozen `SweepSpec`.
- `trials`: plans the trials of a grid or random search; run names, overrides, train commands.
- `trial_runs`: checks every trial config before anything exists, then creates each trial's run.
- `state`: the state file `<EXP>/sweeps/<NAME>/state.json`, its trial records and the driver lock.
- `driver`: launches trials up to N at once, records how each ends, stops them all on a signal.
- `local`: the local executor: trials as `02_train.py` processes, threads and GPUs shared out.
- `slurm`: the SLURM executor: one submitit job per trial, reattached by a rerun.
- `slurm_job`: the submitit job of one trial: runs it, and on timeout makes it save and requeues.
- `optuna_search`: the Optuna search: TPE asks each trial, the median pruner.
- `optuna_storage`: the study's journal file (every executor, shared filesystems), old SQLite studies copied in.
- `optuna_trial`: the process of one Optuna trial: trains it and reports its epochs to the study.
- `results`: how a trial ended (from its exit code and summary.json) and its metric (from its CSV).
- `report`: what the driver and `--status` print: progress lines, the trial table, failed logs.
- `table`: the table `03_compare.py --sweep` prints and exports (pandas, read from state and CSVs).
"""
