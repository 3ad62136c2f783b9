"""What one seed records: episodes.csv, evals.csv and TensorBoard events as it trains, then its result
(:class:`SeedResult`, its ``summary.json``)."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mjreinforce.algo.rollout import Episode
from mjreinforce.algo.update import UpdateMetrics
from mjreinforce.config import Config
from mjreinforce.files import CsvLog, errors_name
from mjreinforce.runs.layout import EPISODE_COLUMNS, EVAL_COLUMNS, check_real_dirs
from mjreinforce.training.counters import Counters
from mjreinforce.training.evaluation import EvalResult


@dataclass(frozen=True)
class SeedResult:
    """What one seed's training produced (also its ``summary.json``)."""

    seed: int
    status: str
    episodes: int
    env_steps: int
    wall_seconds: float
    final_window_mean_return: float
    steps_per_second: float
    best_eval_mean_return: float | None = None
    final_eval_mean_return: float | None = None
    """Mean return of the last deterministic evaluation, which is at the end of training."""
    eval_env_steps: int = 0
    """Env steps simulated by evaluations (their cost, beside ``env_steps`` of training)."""
    steps_to_target: int | None = None
    seconds_to_target: float | None = None
    diverged_at_update: int | None = None
    divergence: str | None = None
    """With status "diverged": what was not finite after update ``diverged_at_update``, e.g. "policy loss is nan"."""


def seed_result(
    seed: int, status: str, c: Counters, env_steps: int, wall: float, diverged: tuple[int, str] | None
) -> SeedResult:
    """The :class:`SeedResult` of a seed that ended with ``status`` (``diverged``: the update and the reason)."""
    return SeedResult(
        seed=seed,
        status=status,
        episodes=c.episodes,
        env_steps=env_steps,
        wall_seconds=wall,
        final_window_mean_return=window_mean(c.window),
        steps_per_second=env_steps / max(wall, 1e-9),
        best_eval_mean_return=c.best_eval,
        final_eval_mean_return=c.last_eval,
        eval_env_steps=c.eval_env_steps,
        steps_to_target=c.target_hit[0] if c.target_hit else None,
        seconds_to_target=c.target_hit[1] if c.target_hit else None,
        diverged_at_update=diverged[0] if diverged else None,
        divergence=diverged[1] if diverged else None,
    )


def window_mean(window: deque[float]) -> float:
    """Mean return of the episodes in the moving window; NaN before the first episode."""
    return float(np.mean(window)) if window else float("nan")


class SeedRecords:
    """The files one seed writes as it trains: episodes.csv, evals.csv, TensorBoard events."""

    def __init__(self, cfg: Config, seed: int, out: Path, counters: Counters, purge_step: int | None) -> None:
        self.seed, self.counters = seed, counters
        self.episodes = CsvLog(out / "episodes.csv", EPISODE_COLUMNS)
        self.evals = CsvLog(out / "evals.csv", EVAL_COLUMNS)
        self.tb = None
        self.tb_dir = out / "tb"
        if cfg.tensorboard:
            check_real_dirs(out)  # never write events through a symlinked tb/
            from torch.utils.tensorboard import SummaryWriter

            # purge_step drops events a killed run wrote after its last checkpoint
            self.tb = SummaryWriter(log_dir=str(self.tb_dir), purge_step=purge_step)

    def episode(self, ep: Episode, wall: float) -> None:
        c = self.counters
        c.episodes += 1
        c.window.append(ep.ret)
        self.episodes.write(
            (
                self.seed,
                c.episodes,
                ep.env_steps,
                ep.ret,
                ep.length,
                int(ep.terminated),
                int(ep.truncated),
                round(wall, 4),
            )
        )
        self._scalar("episode/return", ep.ret, ep.env_steps)
        self._scalar("episode/length", ep.length, ep.env_steps)

    def update(self, m: UpdateMetrics, rate: float, env_steps: int) -> None:
        for name, value in m.__dict__.items():
            if value is not None:
                self._scalar(f"train/{name}", value, env_steps)
        self._scalar("train/steps_per_second", rate, env_steps)

    def evaluation(self, result: EvalResult, env_steps: int, wall: float) -> None:
        c = self.counters
        c.evals += 1
        c.best_eval = result.mean_return if c.best_eval is None else max(c.best_eval, result.mean_return)
        self.evals.write(
            (
                self.seed,
                c.updates,
                env_steps,
                round(wall, 4),
                result.mean_return,
                float(result.returns.std()),
                float(result.lengths.mean()),
            )
        )
        self._scalar("eval/mean_return", result.mean_return, env_steps)

    def _scalar(self, tag: str, value: float, step: int) -> None:
        """One TensorBoard scalar. Its writer thread fails silently (see cli.main) and the error comes back
        here, without a file name: name the tb directory."""
        if self.tb is not None:
            with errors_name(self.tb_dir):
                self.tb.add_scalar(tag, value, step)

    def digests(self) -> dict[str, dict[str, int | str]]:
        """Rows written so far and the sha256 of each table's bytes (for the checkpoint; see training.resume)."""
        c = self.counters
        return {
            "episodes.csv": {"rows": c.episodes, "sha256": self.episodes.sha256.hexdigest()},
            "evals.csv": {"rows": c.evals, "sha256": self.evals.sha256.hexdigest()},
        }

    def close(self) -> None:
        self.episodes.close()
        self.evals.close()
        if self.tb is not None:
            with errors_name(self.tb_dir):
                self.tb.close()
