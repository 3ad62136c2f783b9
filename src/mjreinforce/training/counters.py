"""A seed's progress counters: what the loop counts, the logs update and a checkpoint restores."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field


@dataclass
class Counters:
    """A seed's progress, restored on resume."""

    episodes: int = 0
    updates: int = 0
    evals: int = 0
    wall_seconds: float = 0.0
    best_eval: float | None = None
    last_eval: float | None = None
    last_eval_steps: int | None = None
    eval_env_steps: int = 0
    target_hit: tuple[int, float] | None = None
    window: deque[float] = field(default_factory=deque)
