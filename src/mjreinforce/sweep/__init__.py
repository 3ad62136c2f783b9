"""Hyperparameter sweeps on Ray Tune: the sweep-file format and running it."""
