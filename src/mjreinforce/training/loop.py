"""One seed's training loop, :func:`train_seed`: collect, returns, update, log, evaluate, checkpoint -- read
top to bottom.

Its parts are built and closed in :mod:`mjreinforce.training.seed_parts`. :func:`mjreinforce.training.run.train`
runs every seed of a config into one run directory (in this process, or in worker processes through
:mod:`mjreinforce.training.workers`); :func:`mjreinforce.training.resume.resume_run` continues a run.
"""

from __future__ import annotations

from pathlib import Path

from mjreinforce.algo.returns import advantages_and_targets
from mjreinforce.config import Config
from mjreinforce.runs import checkpoint_dir
from mjreinforce.runs.layout import check_real_dirs
from mjreinforce.training import snapshot
from mjreinforce.training.interrupt import GracefulInterrupt
from mjreinforce.training.progress import Progress
from mjreinforce.training.records import SeedResult
from mjreinforce.training.seed_parts import SeedParts, build_seed, finishing


def train_seed(cfg: Config, seed: int, out: Path, progress: Progress, resume: bool = False) -> SeedResult:
    """Train one seed into ``out`` (its ``seed_<s>`` directory) and return its result.

    With ``resume`` the seed continues from its latest checkpoint (tables cut back to it; the caller has
    verified them with :func:`mjreinforce.training.resume.verify_seed`). The first Ctrl-C or SIGTERM finishes
    the current update, writes a checkpoint and stops the seed. An update that leaves a non-finite loss,
    gradient norm, std or weight (:meth:`Learner.divergence`) ends the seed with status "diverged" and no
    checkpoint of that state: the last good checkpoint stays the latest.
    """
    s = build_seed(cfg, seed, out, resume)
    c, collector, learner, normalizer = s.counters, s.collector, s.learner, s.normalizer
    with GracefulInterrupt() as interrupt, finishing(s, progress) as end:
        while s.budget.spent(c.episodes, collector.env_steps) < s.budget.total:
            # the schedule reads the progress before the rollout: no update runs at learning rate 0
            learner.set_progress(s.budget.fraction(c.episodes, collector.env_steps))
            steps_before = collector.env_steps
            # 1. collect a rollout with the current policy (no autograd graph)
            rollout = collector.collect(
                s.policy,
                normalizer,
                cfg.rollout_steps,
                on_episode=lambda ep: s.logs.episode(ep, s.wall()),
                min_steps=cfg.episode_batch_steps,
            )
            # 2. returns: bootstrap values and advantages (pure functions; terminated and truncated apart)
            obs, next_obs = normalizer(rollout.obs), normalizer(rollout.next_obs)
            s.reward_scaler.update(rollout.rewards, rollout.episode_ends)  # identity unless normalize_rewards
            batch = advantages_and_targets(
                s.reward_scaler(rollout.rewards),
                rollout.terminated,
                rollout.truncated,
                learner.values(obs),
                learner.values(next_obs),
                method=cfg.advantage,
                gamma=cfg.gamma,
                lam=cfg.gae_lambda,
                bootstrap_truncated=cfg.bootstrap_truncated,
            )
            # 3. update; normalizer statistics change only after it
            metrics = learner.update(obs, rollout.raw_actions, rollout.valid, batch)
            normalizer.update(rollout.obs[rollout.valid])
            c.updates += 1
            # 4. log
            rate = collector.env_steps / max(s.wall(), 1e-9)
            s.logs.update(metrics, rate, collector.env_steps)
            s.report(progress, rate)
            reason = learner.divergence(metrics)
            if reason is not None:
                end.diverged = (c.updates, reason)  # critical: no evaluation or checkpoint of this state
                break
            # 5. evaluate (deterministic, one reused vector env, fixed seeds) and stop at the target
            if eval_due(cfg, steps_before, collector.env_steps) and _evaluate(s):
                c.target_hit = (collector.env_steps, s.wall())
                break
            # 6. checkpoint
            if cfg.checkpoint_every and c.updates % cfg.checkpoint_every == 0:
                _save_checkpoint(s)
            if interrupt.requested:
                break
        end.status = "diverged" if end.diverged else "interrupted" if interrupt.requested else "finished"
        if end.status == "finished" and s.evaluator is not None and c.last_eval_steps != collector.env_steps:
            _evaluate(s)  # the final policy is always evaluated
        if not end.diverged:
            _save_checkpoint(s)
    if end.status == "interrupted":
        raise interrupt.exception()
    assert end.result is not None
    return end.result


def eval_due(cfg: Config, steps_before: int, steps_now: int) -> bool:
    """True when the update that took the env steps from ``steps_before`` to ``steps_now`` is followed by an
    evaluation: it crossed a multiple of ``eval_every_steps`` (0: never)."""
    if not cfg.eval_every_steps:
        return False
    return steps_now // cfg.eval_every_steps > steps_before // cfg.eval_every_steps


def _evaluate(s: SeedParts) -> bool:
    """One deterministic evaluation, logged; True when it reaches ``target_return``."""
    assert s.evaluator is not None
    evaluation = s.evaluator(s.policy, s.normalizer)
    c, steps = s.counters, s.collector.env_steps
    c.eval_env_steps += s.evaluator.last_env_steps
    c.last_eval, c.last_eval_steps = evaluation.mean_return, steps
    s.logs.evaluation(evaluation, steps, s.wall())
    return s.cfg.target_return is not None and evaluation.mean_return >= s.cfg.target_return


def _save_checkpoint(s: SeedParts) -> None:
    """Capture the seed's state (:func:`mjreinforce.training.snapshot.capture`) into a rotated checkpoint."""
    c = s.counters
    c.wall_seconds = s.wall()
    check_real_dirs(s.out)
    tensors, meta = snapshot.capture(
        s.cfg, s.seed, s.learner, s.normalizer, s.reward_scaler, s.collector, c, s.logs.digests()
    )
    checkpoint_dir.save_checkpoint_rotating(
        s.out / "checkpoints",
        c.updates,
        tensors,
        meta,
        info={"updates": c.updates, "env_steps": s.collector.env_steps},
    )
