"""Sweeps: many runs of one config with different parameters, plus one state file.

`src/04_sweep.py` is the command line. `spec` reads the spec, `trials` plans the trials of a
grid or random search, `trial_runs` checks and creates their runs, `state` keeps the state
file, `local` runs trials on this machine, `results` reads how they ended, `report` prints,
and `driver` ties them together. `optuna_search` and `optuna_trial` choose trials with Optuna;
`slurm` and `slurm_job` run them as SLURM jobs through submitit.
"""
