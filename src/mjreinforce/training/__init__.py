"""Training: the per-seed loop, its checkpointed state, seeds in worker processes, progress, interrupts."""
