"""Checkpoints: `io` saves, loads and restores one file; `manager` keeps a run's last/best/epoch files and finds the resume point."""
