"""Training: the per-seed loop and its parts, checkpoint snapshots, resume, seeds in worker processes, progress."""
