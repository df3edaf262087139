"""Checkpoints: `io` saves, loads and restores one file (`diagnosis` says why one cannot be
used); `manager` keeps a run's last/best/epoch files and finds the resume point."""
