"""Summary tables over runs: final returns, IQM with bootstrap CIs, time to target, improvement.

Every per-run number is built from one score per seed (the seed's mean return
over its last ``window`` episodes), following Agarwal et al. (2021): seeds,
not episodes, are the independent samples. Tables are pandas DataFrames and
are written as Markdown (:func:`to_markdown`, the one Markdown table writer; no ``tabulate``) plus CSV.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from mjreinforce.analysis import stats
from mjreinforce.config_bounds import limit_rows
from mjreinforce.files import atomic_write
from mjreinforce.runs.reading import RunData


def final_returns(run: RunData, window: int = 50) -> np.ndarray:
    """Per-seed scores, shape ``(seeds,)``: mean return of each seed's last ``window`` episodes."""
    return np.array([stats.final_window_mean(f["return"].to_numpy(), window) for _, f in run.by_seed()])


def _status_text(run: RunData) -> str:
    """Seed statuses as counts, e.g. ``"4 finished, 1 interrupted"``."""
    counts = pd.Series(list(run.seed_status.values()), dtype=object).value_counts()
    return ", ".join(f"{n} {status}" for status, n in counts.items())


def _target_columns(run: RunData, target: float, window: int) -> dict[str, object]:
    """Median (over the seeds that reached it) env steps and seconds to ``target``, and the count."""
    steps: list[float] = []
    seconds: list[float] = []
    for _, frame in run.by_seed():
        returns = frame["return"].to_numpy()
        s = stats.steps_to_target(frame["env_steps"].to_numpy(), returns, target, window)
        if s is not None:
            steps.append(s)
            sec = stats.seconds_to_target(frame["wall_seconds"].to_numpy(), returns, target, window)
            seconds.append(float("nan") if sec is None else sec)
    return {
        "steps_to_target": float(np.median(steps)) if steps else float("nan"),
        "seconds_to_target": float(np.median(seconds)) if seconds else float("nan"),
        "seeds_reached": f"{len(steps)}/{len(run.seeds)}",
    }


def summary_table(
    runs: Sequence[RunData], target: float | None = None, window: int = 50, rng_seed: int = 0
) -> pd.DataFrame:
    """One row per run.

    Columns: ``label, env, algorithm, seeds`` (seeds with episodes), ``status``
    (counts of seed statuses, see :class:`RunData`), ``episodes`` (mean per seed),
    ``final_return`` (mean over seeds of the last-``window`` mean return),
    ``final_return_std`` (std over seeds, ddof=0), ``iqm_final_return`` with its
    95% percentile-bootstrap interval ``iqm_ci_low, iqm_ci_high`` (2000
    resamples of the seeds, ``np.random.default_rng(rng_seed)``). With a
    ``target``: ``steps_to_target`` and ``seconds_to_target`` (medians over the
    seeds that reached it, NaN if none did; see :func:`stats.steps_to_target`)
    and ``seeds_reached`` as ``"k/n"``.
    """
    rows = []
    for run in runs:
        scores = final_returns(run, window)
        rng = np.random.default_rng(rng_seed)
        low, high = stats.bootstrap_ci(scores, stats.iqm, rng=rng)
        row: dict[str, object] = {
            "label": run.label,
            "env": run.env_id,
            "algorithm": run.algorithm,
            "seeds": len(scores),
            "status": _status_text(run),
            "episodes": float(run.episodes.groupby("seed").size().mean()) if scores.size else 0.0,
            "final_return": float(scores.mean()) if scores.size else float("nan"),
            "final_return_std": float(scores.std()) if scores.size else float("nan"),
            "iqm_final_return": stats.iqm(scores),
            "iqm_ci_low": low,
            "iqm_ci_high": high,
        }
        if target is not None:
            row.update(_target_columns(run, target, window))
        rows.append(row)
    return pd.DataFrame(rows)


def improvement_table(runs: Sequence[RunData], window: int = 50, n_boot: int = 2000, rng_seed: int = 0) -> pd.DataFrame:
    """Probability of improvement of every run X over every other run Y (ordered pairs, X != Y).

    Columns ``x, y, p_improvement, ci_low, ci_high, seeds_x, seeds_y`` where
    ``p_improvement = P(X > Y) + 0.5 P(X = Y)`` over the per-seed final returns
    (:func:`stats.probability_of_improvement`) and the interval is a 95%
    stratified percentile bootstrap. Empty (with these columns) for one run.
    """
    columns = ["x", "y", "p_improvement", "ci_low", "ci_high", "seeds_x", "seeds_y"]
    scores = {id(run): final_returns(run, window) for run in runs}
    rows = []
    for a in runs:
        for b in runs:
            if a is b:
                continue
            x, y = scores[id(a)], scores[id(b)]
            rng = np.random.default_rng(rng_seed)
            low, high = stats.probability_of_improvement_ci(x, y, n_boot, rng=rng)
            p = stats.probability_of_improvement(x, y)
            rows.append([a.label, b.label, p, low, high, x.size, y.size])
    return pd.DataFrame(rows, columns=columns)


def format_cell(value: object) -> str:
    """Markdown text of one cell: NaN/None as "-", floats to 4 significant digits (whole numbers >= 1000 as ints)."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    if isinstance(value, (float, np.floating)):
        v = float(value)
        return f"{v:.0f}" if abs(v) >= 1000 else f"{v:.4g}"
    return str(value).replace("|", "\\|").replace("\n", " ")


def to_markdown(df: pd.DataFrame, *, right: Sequence[bool] | None = None, compact_rule: bool = False) -> str:
    """A GitHub-flavoured Markdown table, one line per row, each cell by :func:`format_cell`.

    ``right`` says for each column whether it is right-aligned (default: the numeric columns).
    ``compact_rule`` writes the rule under the header without spaces (``|---|---:|``) instead of
    ``| --- | ---: |``.
    """
    flags = [pd.api.types.is_numeric_dtype(df[c]) for c in df.columns] if right is None else list(right)
    if len(flags) != len(df.columns):
        raise ValueError(f"{len(flags)} alignments for {len(df.columns)} columns")
    rules = ["---:" if r else "---" for r in flags]
    rule = "|" + "|".join(rules) + "|" if compact_rule else "| " + " | ".join(rules) + " |"
    header = "| " + " | ".join(format_cell(str(c)) for c in df.columns) + " |"
    body = ["| " + " | ".join(format_cell(v) for v in row) + " |" for row in df.itertuples(index=False)]
    return "\n".join([header, rule, *body]) + "\n"


def limits_table() -> str:
    """Every bound of :mod:`mjreinforce.config_bounds` as a Markdown table (docs/configuration.md's Limits)."""
    return to_markdown(pd.DataFrame(limit_rows(), columns=["value", "range", "why"]), compact_rule=True)


def _slug(title: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", title.lower()).strip("_") or "table"


def write_tables(*tables: pd.DataFrame, out_stem: Path, titles: Sequence[str] = ()) -> list[Path]:
    """Write ``out_stem.md`` with every table, and one CSV per table; return the paths written.

    In the Markdown file table ``i`` is preceded by ``## titles[i]`` when titles
    are given. The first table goes to ``out_stem.csv``; table ``i > 0`` to
    ``out_stem_<slug of titles[i]>.csv`` (``out_stem_<i+1>.csv`` without titles).
    """
    if titles and len(titles) != len(tables):
        raise ValueError(f"{len(titles)} titles for {len(tables)} tables")
    out_stem = Path(out_stem)
    out_stem.parent.mkdir(parents=True, exist_ok=True)
    sections, paths = [], []
    for i, table in enumerate(tables):
        heading = f"## {titles[i]}\n\n" if titles else ""
        sections.append(heading + to_markdown(table))
        suffix = "" if i == 0 else f"_{_slug(titles[i]) if titles else i + 1}"
        csv_path = out_stem.with_name(f"{out_stem.name}{suffix}.csv")
        atomic_write(csv_path, table.to_csv(index=False))
        paths.append(csv_path)
    md_path = out_stem.with_name(f"{out_stem.name}.md")
    atomic_write(md_path, "\n".join(sections))
    return [md_path, *paths]


__all__ = [
    "final_returns",
    "format_cell",
    "improvement_table",
    "limits_table",
    "summary_table",
    "to_markdown",
    "write_tables",
]
