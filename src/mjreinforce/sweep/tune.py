"""Hyper-parameter sweeps on Ray Tune: :func:`run_sweep` trains a :class:`~mjreinforce.sweep.spec.SweepSpec`.

The sweep file and its validation are in :mod:`mjreinforce.sweep.spec` (:func:`load_sweep`).

Each (config point, seed) is one Tune trial (1 CPU) that reports every update to Tune; point
``k`` is the run directory ``OUT/trial_<k>``. ASHA therefore judges seeds one by one on their
running window mean return, and a point's metric is the mean over its seeds that finished.
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
import socket
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mjreinforce.config import Config, save_toml
from mjreinforce.envs.vector import resolve_backend
from mjreinforce.errors import UserError, error_line
from mjreinforce.files import atomic_write, read_json_or_empty, write_json_atomic
from mjreinforce.runs.layout import seed_dir
from mjreinforce.runs.lock import LOCK_NAME, RunLock
from mjreinforce.runs.ownership import KIND_TEXT, check_run_path, directory_kind, is_sweep_output, remove_entry
from mjreinforce.sweep.spec import SweepSpec
from mjreinforce.training.interrupt import stop_signals_raise
from mjreinforce.training.loop import train_seed
from mjreinforce.training.progress import ProgressEvent
from mjreinforce.training.workers import mark_seed_failed


@dataclass(frozen=True)
class PointResult:
    """One config point of a finished sweep: ``metric`` is the mean over its finished seeds
    (NaN when none finished); ``seed_status`` is "finished", "failed", "stopped" (early, by ASHA)
    or "missing" (no summary.json where this process can see it: ``out`` not shared with a node)."""

    trial: int
    run_dir: Path
    values: dict[str, Any]
    metric: float
    seed_status: dict[int, str]


@dataclass(frozen=True)
class SweepResult:
    out: Path
    metric: str
    mode: str
    points: tuple[PointResult, ...]
    best: PointResult
    best_config: Path
    results_csv: Path


def trial_name(k: int) -> str:
    return f"trial_{k}"


class _TrialStopped(KeyboardInterrupt):
    """Tune stopped this trial: the trainer records "interrupted", the trial then says "stopped"."""


class _TuneProgress:
    """Reports each update to Ray Tune (one ``training_iteration`` per update)."""

    def update(self, event: ProgressEvent) -> None:
        if event.final:
            return
        from ray import tune

        try:
            tune.report(
                {
                    "window_mean_return": event.window_mean_return,
                    "env_steps": event.env_steps,
                    "episodes": event.episodes,
                }
            )
        except SystemExit:  # Tune's way of stopping a function trial (e.g. ASHA) inside report()
            raise _TrialStopped from None

    def close(self) -> None:
        pass


def _sweep_trial(params: dict[str, Any], *, configs: tuple[Config, ...], out: Path) -> None:
    """One Tune trial: seed ``params["seed"]`` of config point ``params["point"]``."""
    from ray import tune

    k, seed = int(params["point"]), int(params["seed"])
    seed_out = seed_dir(out / trial_name(k), seed)
    try:
        result = train_seed(configs[k], seed, seed_out, _TuneProgress())
    except _TrialStopped:
        _set_status(seed_out, "stopped")
        return
    except Exception as exc:
        mark_seed_failed(seed_out, seed, exc)
        raise
    final = {
        "window_mean_return": result.final_window_mean_return,
        "env_steps": result.env_steps,
        "episodes": result.episodes,
    }
    if result.best_eval_mean_return is not None:
        final["best_eval_mean_return"] = result.best_eval_mean_return
    tune.report(final)


def _set_status(out: Path, status: str) -> None:
    summary = read_json_or_empty(out / "summary.json")
    if summary:
        write_json_atomic(out / "summary.json", summary | {"status": status})


def run_sweep(
    sweep: SweepSpec,
    out: Path | str,
    address: str | None = None,
    workers: int | None = None,
    *,
    overwrite: bool = False,
    quiet: bool = False,
) -> SweepResult:
    """Train every (config point x seed) as one Ray Tune trial, then rank the points.

    Point ``k`` is the run directory ``out/trial_<k>`` (config.toml, seed_<s>/, summary.json).
    Writes ``out/sweep_results.csv`` (one row per point) and ``out/best_config.toml`` (the full
    resolved config of the best point). Uses the running Ray instance if there is one, else
    ``address`` (a cluster whose nodes share ``out``'s filesystem) or a local instance with
    ``workers`` CPUs (default: all cores). At most ``workers`` trials run at once (None: as many as
    the CPUs allow). With ``[asha]`` poor seeds are stopped early on their running window mean
    return. Raises :class:`UserError` when no point finished a seed.
    """
    if workers is not None and workers < 1:
        raise UserError(f"workers must be >= 1, got {workers}")
    out = Path(out).resolve()
    configs = tuple(sweep.config(k) for k in range(len(sweep.points)))
    _check_sweep_dir(out, overwrite)
    with stop_signals_raise():  # Ctrl-C (exit 130) and SIGTERM (143) stop it, also from a background shell
        started = connect_ray(address, workers, quiet)  # before touching out: a bad address leaves nothing behind
        try:
            out.mkdir(parents=True, exist_ok=True)
            with RunLock(out):  # one writer: a second sweep (or --overwrite) on the same directory is refused
                return _sweep_locked(sweep, configs, out, workers, overwrite, quiet)
        finally:
            if started:
                import ray

                ray.shutdown()


def _sweep_locked(
    sweep: SweepSpec, configs: tuple[Config, ...], out: Path, workers: int | None, overwrite: bool, quiet: bool
) -> SweepResult:
    """:func:`run_sweep`'s writing part, under the directory's lock."""
    _prepare_sweep_dir(out, overwrite)
    for k, cfg in enumerate(configs):
        (out / trial_name(k)).mkdir()
        save_toml(cfg, out / trial_name(k) / "config.toml")
    errors = _run_tune(sweep, configs, out, workers, quiet)
    for (k, seed), message in sorted(errors.items()):
        print(f"mjreinforce sweep: trial {k} seed {seed} failed: {message}", file=sys.stderr)
    points = tuple(_finish_point(sweep, k, cfg, out, errors) for k, cfg in enumerate(configs))
    results_csv = _write_results(points, sweep, out / "sweep_results.csv")
    ranked = [p for p in points if math.isfinite(p.metric)]
    if not ranked:
        raise UserError(f"no config point finished a seed; see {results_csv}")
    best = (max if sweep.mode == "max" else min)(ranked, key=lambda p: p.metric)
    save_toml(configs[best.trial], out / "best_config.toml")
    return SweepResult(out, sweep.metric, sweep.mode, points, best, out / "best_config.toml", results_csv)


def _check_sweep_dir(out: Path, overwrite: bool) -> None:
    """Refuse (one line, nothing touched) a file, a non-empty directory that is not a sweep (a run, a
    benchmark, anything else: the line says which), an existing sweep without ``overwrite`` (an interrupted
    one too: it says so), and, with it, a sweep directory holding anything a sweep did not write."""
    check_run_path(out)
    kind = directory_kind(out)
    if kind in ("missing", "empty"):
        return
    if kind == "file":
        raise UserError(f"output path {out} exists and is not a directory")
    if kind in KIND_TEXT and kind != "sweep":
        raise UserError(f"output directory {out} holds {KIND_TEXT[kind]}, not a sweep; choose another --out")
    if kind != "sweep":
        raise UserError(f"output directory {out} is not empty and is not a mjreinforce sweep; choose another --out")
    if not overwrite:
        what = "a sweep" if (out / "sweep_results.csv").exists() else "an unfinished sweep (no sweep_results.csv)"
        raise UserError(f"output directory {out} already holds {what}; pass --overwrite to run it again")
    foreign = sorted(p.name for p in out.iterdir() if not is_sweep_output(p))
    if foreign:
        raise UserError(
            f"--overwrite refused: {out} holds {foreign[0]!r}, which mjreinforce did not write; move it away "
            "or choose another --out"
        )


def _prepare_sweep_dir(out: Path, overwrite: bool) -> None:
    """An empty sweep directory (but for the lock, which the caller holds): checks again, then deletes only
    what a sweep writes; symlinks are unlinked, not followed."""
    _check_sweep_dir(out, overwrite)
    for entry in out.iterdir():
        if entry.name != LOCK_NAME:
            remove_entry(entry)


def _run_tune(
    sweep: SweepSpec, configs: tuple[Config, ...], out: Path, workers: int | None, quiet: bool
) -> dict[tuple[int, int], str]:
    """Run one trial per (point, seed) on the connected Ray; return the error line of each failed one."""
    from ray import tune
    from ray.tune.schedulers import ASHAScheduler

    scheduler = None
    if sweep.asha:
        asha: dict[str, Any] = dict(sweep.asha)
        scheduler = ASHAScheduler(metric="window_mean_return", mode=sweep.mode, **asha)
    trainable = tune.with_resources(tune.with_parameters(_sweep_trial, configs=configs, out=out), {"cpu": 1})
    tuner = tune.Tuner(
        trainable,
        param_space={
            "point": tune.grid_search(list(range(len(configs)))),
            "seed": tune.grid_search(list(sweep.base.seeds)),
        },
        tune_config=tune.TuneConfig(
            scheduler=scheduler,
            max_concurrent_trials=workers,
            trial_name_creator=_tune_trial_name,
            trial_dirname_creator=_tune_trial_name,
        ),
        run_config=tune.RunConfig(name="tune", storage_path=str(out), verbose=0 if quiet else 1),
    )
    previous = os.environ.get("TUNE_DISABLE_SIGINT_HANDLER")
    os.environ["TUNE_DISABLE_SIGINT_HANDLER"] = "1"  # Ctrl-C raises KeyboardInterrupt here (exit 130)
    try:
        grid = tuner.fit()
    finally:
        if previous is None:
            del os.environ["TUNE_DISABLE_SIGINT_HANDLER"]
        else:
            os.environ["TUNE_DISABLE_SIGINT_HANDLER"] = previous
    results = [grid[i] for i in range(len(grid))]
    return {
        (int(r.config["point"]), int(r.config["seed"])): error_line(r.error)
        for r in results
        if r.error is not None and r.config
    }


def _tune_trial_name(trial: Any) -> str:
    return f"{trial_name(trial.config['point'])}_seed_{trial.config['seed']}"


def connect_ray(address: str | None, workers: int | None = None, quiet: bool = False) -> bool:
    """Make sure Ray is initialized; True if this call started it (the caller shuts it down).
    Without ``address`` a local instance with ``workers`` CPUs (default: all cores) is started.

    An ``address`` is probed with a plain TCP connection first (3 s timeout) because ``ray.init``
    keeps retrying an address that does not answer for minutes.
    """
    import logging

    import ray

    if ray.is_initialized():
        return False
    options: dict[str, Any] = {"logging_level": logging.WARNING, "log_to_driver": not quiet}
    if address is None:
        ray.init(num_cpus=workers or os.cpu_count() or 1, include_dashboard=False, **options)
        return True
    _check_reachable(address)
    try:
        ray.init(address=address, **options)
    except Exception as exc:  # noqa: BLE001 -- ray raises ConnectionError, RuntimeError, ValueError...
        raise UserError(f"cannot connect to Ray at {address}: {error_line(exc)}") from None
    return True


_HTTP2_PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + b"\x00\x00\x00\x04\x00\x00\x00\x00\x00"
"""The HTTP/2 client preface and an empty SETTINGS frame: a gRPC server (Ray's GCS, the Ray
Client server) answers with its own SETTINGS frame (9-byte header, type byte 0x04 at index 3)."""


def _check_reachable(address: str, timeout: float = 3.0) -> None:
    """Raise :class:`UserError` unless ``HOST:PORT`` (optionally ``ray://``) answers like a gRPC server
    within ``timeout`` seconds. ``auto``/``local`` are left to ``ray.init``; with ``RAY_USE_TLS`` only
    the TCP connection is checked."""
    if address in ("auto", "local"):
        return
    host, sep, port = address.split("://", 1)[-1].rpartition(":")
    if not sep or not host or not port.isdigit():
        raise UserError(f"--address must be HOST:PORT, ray://HOST:PORT or auto; got {address!r}")
    hint = "start one with `ray start --head` or leave out --address for a local instance"
    try:
        with socket.create_connection((host.strip("[]"), int(port)), timeout=timeout) as sock:
            if os.environ.get("RAY_USE_TLS", "0").lower() in ("1", "true"):
                return
            sock.sendall(_HTTP2_PREFACE)
            reply = sock.recv(9)
    except OSError as exc:
        reason = exc.strerror or str(exc) or type(exc).__name__
        raise UserError(f"no Ray cluster answers at {address} ({reason}); {hint}") from None
    if len(reply) < 4 or reply[3] != 0x04:
        raise UserError(f"{address} answers but is not a Ray cluster (no gRPC reply); {hint}")


def _finish_point(sweep: SweepSpec, k: int, cfg: Config, out: Path, errors: dict[tuple[int, int], str]) -> PointResult:
    """Seed statuses and the metric of point ``k``; writes its ``summary.json`` as ``train`` does."""
    run_dir = out / trial_name(k)
    summaries = {s: read_json_or_empty(seed_dir(run_dir, s) / "summary.json") for s in cfg.seeds}
    # no summary: the trial failed, was stopped by ASHA before writing one, or its files are elsewhere
    missing = "stopped" if sweep.asha else "missing"
    status = {s: str(summaries[s].get("status") or ("failed" if (k, s) in errors else missing)) for s in cfg.seeds}
    finished = {s: summaries[s] for s in cfg.seeds if status[s] == "finished"}
    values = [float(v) for v in (f.get(sweep.metric) for f in finished.values()) if v is not None]
    metric = sum(values) / len(values) if values else float("nan")
    write_json_atomic(
        run_dir / "summary.json",
        {
            "env_id": cfg.env_id,
            "algorithm": cfg.algorithm_name,
            "preset": sweep.preset,
            "backend": resolve_backend(cfg),
            "seeds": {str(s): r for s, r in finished.items()},
        },
    )
    return PointResult(k, run_dir, sweep.points[k], metric, status)


def _write_results(points: tuple[PointResult, ...], sweep: SweepSpec, path: Path) -> Path:
    """``trial, <searched keys...>, <metric>, finished_seeds, seeds, run_dir``: one row per point."""
    text = io.StringIO()
    writer = csv.writer(text)
    writer.writerow(["trial", *sweep.keys, sweep.metric, "finished_seeds", "seeds", "run_dir"])
    for p in points:
        values = [json.dumps(v) if isinstance(v, list) else v for v in p.values.values()]
        finished = sum(s == "finished" for s in p.seed_status.values())
        writer.writerow([p.trial, *values, p.metric, finished, len(p.seed_status), p.run_dir])
    atomic_write(path, text.getvalue())
    return path
