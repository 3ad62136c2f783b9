"""What one seed records as it trains: episodes.csv, evals.csv and TensorBoard events."""

from __future__ import annotations

from pathlib import Path

from mjreinforce.algo.rollout import Episode
from mjreinforce.algo.update import UpdateMetrics
from mjreinforce.config import Config
from mjreinforce.files import CsvLog, errors_name
from mjreinforce.runs.layout import EPISODE_COLUMNS, EVAL_COLUMNS, check_real_dirs
from mjreinforce.training.counters import Counters
from mjreinforce.training.evaluation import EvalResult


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
