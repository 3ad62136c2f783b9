"""Trained policies in use: loading a checkpoint as a policy, evaluation, robustness grids over physics, video."""
