"""Hyper-parameter sweeps on Ray Tune: :func:`load_sweep`, :func:`run_sweep`.

A sweep file (validated completely before Ray starts)::

    preset = "vpg"                          # base preset (default vpg)
    seeds = [1, 2]                          # every config point is trained over these seeds
    metric = "final_window_mean_return"     # or "best_eval_mean_return"; mode = "max" (or "min")
    search = "grid"                         # or "random" with num_samples = N (and sample_seed)
    [config]                                # fixed overrides of any config key
    total_steps = 20000
    [space]                                 # grid: lists; random: lists or {low, high, log}
    learning_rate = [1e-3, 3e-3]
    [asha]                                  # optional early stopping, in updates
    grace_period = 5

Each (config point, seed) is one Tune trial (1 CPU) that reports every update to Tune; point
``k`` is the run directory ``OUT/trial_<k>``. ASHA therefore judges seeds one by one on their
running window mean return, and a point's metric is the mean over its seeds that finished.
"""

from __future__ import annotations

import csv
import difflib
import itertools
import json
import math
import os
import random
import shutil
import socket
import sys
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeGuard

from mjreinforce.config import (
    DEFAULT_PRESET,
    FIELD_NAMES,
    Config,
    load_preset,
    preset_names,
    save_toml,
    validate,
    with_overrides,
)
from mjreinforce.errors import UserError
from mjreinforce.experiments import error_line, mark_seed_failed
from mjreinforce.progress import ProgressEvent
from mjreinforce.rundir import read_json, seed_dir, write_json_atomic

# --------------------------------------------------------------------------
# Sweep files
# --------------------------------------------------------------------------
SWEEP_KEYS = ("preset", "seeds", "metric", "mode", "search", "num_samples", "sample_seed", "config", "space", "asha")
SWEEP_METRICS = ("final_window_mean_return", "best_eval_mean_return")
ASHA_DEFAULTS: dict[str, float] = {"grace_period": 1, "reduction_factor": 4, "max_t": 10**9}
"""ASHA in units of updates (one ``tune.report`` per update); max_t is effectively unlimited."""


@dataclass(frozen=True)
class SweepSpec:
    """A validated sweep: ``points`` are the searched values of each config point (key -> TOML
    value, trial order); each point is ``base`` with its values and is trained over ``base.seeds``."""

    base: Config
    preset: str
    points: tuple[dict[str, Any], ...]
    metric: str = "final_window_mean_return"
    mode: str = "max"
    asha: dict[str, float] | None = None

    def config(self, k: int) -> Config:
        """The validated config of point ``k``."""
        return validate(with_overrides(self.base, self.points[k]))

    @property
    def keys(self) -> tuple[str, ...]:
        return tuple(self.points[0]) if self.points else ()


def load_sweep(path: Path | str) -> SweepSpec:
    """Read and validate a sweep file (see :func:`parse_sweep`); a missing or malformed file is a
    :class:`UserError`."""
    path = Path(path)
    try:
        raw = tomllib.loads(path.read_text())
    except (FileNotFoundError, IsADirectoryError):
        raise UserError(f"sweep file not found: {path}") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise UserError(f"sweep file {path} is not valid TOML: {exc}") from None
    return parse_sweep(raw, source=f"sweep file {path}")


def parse_sweep(raw: dict[str, Any], source: str = "sweep file") -> SweepSpec:
    """Validate a sweep table and enumerate its config points, all before anything runs.

    Grid search: every ``[space]`` value is a non-empty list; the points are their Cartesian
    product (file order, last key fastest). Random search: ``num_samples`` points, each value drawn
    independently from a list (uniform choice) or a ``{low, high, log}`` range (integers when both
    bounds are integers, inclusive; log-uniform with ``log = true``), by ``random.Random(sample_seed)``.
    Every point's config is validated; the first problem is one :class:`UserError` line.
    """
    unknown = sorted(set(raw) - set(SWEEP_KEYS))
    if unknown:
        raise UserError(f"unknown key {unknown[0]!r} in {source} (expected: {', '.join(SWEEP_KEYS)})")
    preset = _option(raw, "preset", [*preset_names()], DEFAULT_PRESET)
    base = load_preset(preset)
    try:
        base = with_overrides(base, _table(raw, "config"))
    except UserError as exc:
        raise UserError(f"[config]: {exc}") from None
    if "seeds" in raw:
        base = with_overrides(base, {"seeds": raw["seeds"]})
    metric = _option(raw, "metric", SWEEP_METRICS, SWEEP_METRICS[0])
    mode = _option(raw, "mode", ("max", "min"), "max")
    search = _option(raw, "search", ("grid", "random"), "grid")
    space = _table(raw, "space")
    _check_space(space, search)
    if search == "grid":
        if "num_samples" in raw:
            raise UserError("num_samples needs search = 'random' (a grid tries every combination once)")
        points = [dict(zip(space, values, strict=True)) for values in itertools.product(*space.values())]
    else:
        num_samples, sample_seed = raw.get("num_samples"), raw.get("sample_seed", 0)
        if not _is_int(num_samples) or num_samples < 1:
            raise UserError(f"search = 'random' needs num_samples = N >= 1, got {num_samples!r}")
        if not _is_int(sample_seed):
            raise UserError(f"sample_seed must be an integer, got {sample_seed!r}")
        rng = random.Random(sample_seed)
        points = [{key: _draw(rng, spec) for key, spec in space.items()} for _ in range(num_samples)]
    spec = SweepSpec(base, preset, tuple(points), metric, mode, _asha(raw.get("asha")))
    for k, point in enumerate(points):
        try:
            cfg = spec.config(k)
        except UserError as exc:
            raise UserError(f"config point {k} ({_describe(point)}): {exc}") from None
        if metric == "best_eval_mean_return" and cfg.eval_every == 0:
            raise UserError("metric 'best_eval_mean_return' needs eval_every > 0 in [config]")
    return spec


def _option(raw: dict[str, Any], key: str, choices: Any, default: str) -> str:
    value = raw.get(key, default)
    if value not in choices:
        raise UserError(f"{key} must be one of {', '.join(map(str, choices))}; got {value!r}")
    return str(value)


def _table(raw: dict[str, Any], key: str) -> dict[str, Any]:
    value = raw.get(key, {})
    if not isinstance(value, dict):
        raise UserError(f"{key} must be a table ([{key}] with key = value lines), got {value!r}")
    return value


def _is_int(value: Any) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _check_space(space: dict[str, Any], search: str) -> None:
    """Reject an empty space, unknown or unsearchable keys and malformed value specs."""
    if not space:
        raise UserError("[space] is empty: give at least one config key with the values to search")
    for key, spec in space.items():
        if key not in FIELD_NAMES:
            close = difflib.get_close_matches(key, FIELD_NAMES, n=3)
            hint = f" (did you mean {', '.join(close)}?)" if close else ""
            raise UserError(f"unknown config key {key!r} in [space]{hint}")
        if key == "seeds":
            raise UserError("seeds cannot be searched: list them in the top-level seeds = [...]")
        if isinstance(spec, list):
            if not spec:
                raise UserError(f"[space] {key} is an empty list: give at least one value")
            continue
        if search == "grid":
            raise UserError(
                f"[space] {key}: grid search needs a list of values ({{low, high}} ranges need search = 'random')"
            )
        _check_range(key, spec)


def _check_range(key: str, spec: Any) -> None:
    if not isinstance(spec, dict) or not {"low", "high"} <= set(spec) or set(spec) - {"low", "high", "log"}:
        raise UserError(f"[space] {key} must be a list or {{low = ..., high = ..., log = true|false}}; got {spec!r}")
    low, high, log = spec["low"], spec["high"], spec.get("log", False)
    if not (_is_number(low) and _is_number(high) and low < high):
        raise UserError(f"[space] {key}: low and high must be numbers with low < high; got {low!r} and {high!r}")
    if not isinstance(log, bool) or (log and low <= 0):
        raise UserError(f"[space] {key}: log must be true or false, and log = true needs low > 0")


def _draw(rng: random.Random, spec: Any) -> Any:
    """One value from a list (uniform choice) or a range (integers if both bounds are)."""
    if isinstance(spec, list):
        return spec[rng.randrange(len(spec))]
    low, high, log = spec["low"], spec["high"], spec.get("log", False)
    if log:
        value = math.exp(rng.uniform(math.log(low), math.log(high)))
        return min(high, max(low, round(value))) if _is_int(low) and _is_int(high) else value
    return rng.randint(low, high) if _is_int(low) and _is_int(high) else rng.uniform(low, high)


def _asha(table: Any) -> dict[str, float] | None:
    """``[asha]`` with ``grace_period`` (updates), ``reduction_factor``, ``max_t``; None if absent."""
    if table is None:
        return None
    if not isinstance(table, dict) or set(table) - set(ASHA_DEFAULTS):
        raise UserError(f"[asha] accepts only {', '.join(ASHA_DEFAULTS)}; got {table!r}")
    asha = ASHA_DEFAULTS | table
    grace_period, max_t = asha["grace_period"], asha["max_t"]
    if not (_is_int(grace_period) and _is_int(max_t) and 1 <= grace_period <= max_t):
        raise UserError("[asha] grace_period and max_t must be integers with 1 <= grace_period <= max_t")
    if not _is_number(asha["reduction_factor"]) or asha["reduction_factor"] <= 1:
        raise UserError(f"[asha] reduction_factor must be a number > 1, got {asha['reduction_factor']!r}")
    return asha


def _describe(point: dict[str, Any]) -> str:
    return ", ".join(f"{k}={v!r}" for k, v in point.items())


# --------------------------------------------------------------------------
# Running a sweep on Ray Tune
# --------------------------------------------------------------------------
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

    from mjreinforce.trainer import train_seed

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
    summary = read_json(out / "summary.json")
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
    started = connect_ray(address, workers, quiet)  # before touching out: a bad address leaves nothing behind
    try:
        _prepare_sweep_dir(out, overwrite)
        for k, cfg in enumerate(configs):
            (out / trial_name(k)).mkdir()
            save_toml(cfg, out / trial_name(k) / "config.toml")
        errors = _run_tune(sweep, configs, out, workers, quiet)
    finally:
        if started:
            import ray

            ray.shutdown()
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
    """Refuse a file, a non-empty non-sweep directory, or an existing sweep without ``overwrite``."""
    if out.exists() and not out.is_dir():
        raise UserError(f"output path {out} exists and is not a directory")
    if out.exists() and any(out.iterdir()):
        if not ((out / "sweep_results.csv").exists() or any(out.glob("trial_*")) or (out / "tune").exists()):
            raise UserError(f"output directory {out} is not empty and is not a mjreinforce sweep; choose another --out")
        if not overwrite:
            raise UserError(f"output directory {out} already holds a sweep; pass --overwrite to replace it")


def _prepare_sweep_dir(out: Path, overwrite: bool) -> None:
    """An empty sweep directory, like :func:`~mjreinforce.rundir.prepare_run_dir` for runs."""
    _check_sweep_dir(out, overwrite)
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)


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
    from mjreinforce.envs import resolve_backend

    run_dir = out / trial_name(k)
    summaries = {s: read_json(seed_dir(run_dir, s) / "summary.json") for s in cfg.seeds}
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
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["trial", *sweep.keys, sweep.metric, "finished_seeds", "seeds", "run_dir"])
        for p in points:
            values = [json.dumps(v) if isinstance(v, list) else v for v in p.values.values()]
            finished = sum(s == "finished" for s in p.seed_status.values())
            writer.writerow([p.trial, *values, p.metric, finished, len(p.seed_status), p.run_dir])
    return path
