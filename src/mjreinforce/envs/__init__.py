"""Environments: vectorized MuJoCo envs (gymnasium and envpool backends) and MuJoCo physics variation."""
