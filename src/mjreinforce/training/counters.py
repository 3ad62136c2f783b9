"""A seed's progress: the counters the loop keeps, the logs update and a checkpoint restores, and its budget."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

from mjreinforce.config import Config


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


class Budget:
    """Progress through ``total_steps`` or ``total_episodes``."""

    def __init__(self, cfg: Config) -> None:
        self.unit, self.total = cfg.budget

    def spent(self, episodes: int, env_steps: int) -> int:
        """How much of the budget is used, in its unit (episodes or env steps)."""
        return episodes if self.unit == "episodes" else env_steps

    def fraction(self, episodes: int, env_steps: int) -> float:
        return min(1.0, self.spent(episodes, env_steps) / self.total)
