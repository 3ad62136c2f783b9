"""The benchmark's cells (:class:`Cell`: one seed of one env and preset, one seed directory) and what to do
with each before the suite runs (:func:`plan_cell`, :func:`plan_cells`).

A cell counts as finished only when its ``summary.json`` says so *and* agrees with its final checkpoint and
its tables: the same episode and env-step counts, tables that hold exactly the rows the checkpoint covers
(sha256 of their bytes, header included, as the checkpoint recorded), and a checkpoint of the cell's config
(its ``seeds`` aside: a later call may add seeds to the run directory). Any other cell is resumed from its
latest checkpoint when :func:`mjreinforce.training.resume.verify_seed` accepts it (rows after the checkpoint
are then cut off), else redone from the start; the plan says which and why.
"""

from __future__ import annotations

import hashlib
from contextlib import ExitStack
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from mjreinforce.config import Config
from mjreinforce.errors import UserError, one_line
from mjreinforce.files import complete_lines, read_json_or_empty, read_nofollow
from mjreinforce.runs import checkpoint_dir, checkpoint_format
from mjreinforce.runs.layout import check_real_dirs, seed_dir
from mjreinforce.runs.lock import LOCK_NAME, RunLock
from mjreinforce.runs.ownership import config_sha256
from mjreinforce.training.resume import verify_seed
from mjreinforce.training.snapshot import TABLES, has_checkpoint


@dataclass(frozen=True)
class Cell:
    """One seed of one (env, preset) run directory."""

    env_id: str
    preset: str
    seed: int

    def __str__(self) -> str:
        return f"{self.env_id} {self.preset} seed {self.seed}"


def run_name(preset: str, env_id: str) -> str:
    return f"{preset}-{env_id}"


def cell_dir(out: Path, cell: Cell) -> Path:
    """The seed directory of ``cell`` in the benchmark directory ``out``."""
    return seed_dir(out / run_name(cell.preset, cell.env_id), cell.seed)


@dataclass(frozen=True)
class CellPlan:
    """``action``: "done" (finished, agreeing: skipped), "new" (nothing there yet), "resume" (from its latest
    checkpoint) or "redo" (from the start); ``why``: the reason for a resume or a redo."""

    action: str
    why: str = ""


def plan_cell(out: Path, cfg: Config) -> CellPlan:
    """The plan for the cell whose seed directory is ``out``, trained with ``cfg`` (read-only; a symlinked
    seed, ``checkpoints/`` or ``tb/`` directory is a one-line UserError)."""
    check_real_dirs(out)
    if not out.exists() or all(p.name == LOCK_NAME for p in out.iterdir()):
        return CellPlan("new")
    summary = read_json_or_empty(out / "summary.json")
    status = summary.get("status")
    said = f"its summary.json says {status}" if status else "it has no summary.json"
    if not has_checkpoint(out):
        return CellPlan("redo", f"{said} and it has no checkpoint")
    try:
        file = checkpoint_dir.latest_checkpoint(out)
        tensors, meta = checkpoint_format.load_checkpoint(file)
        state = checkpoint_format.unflatten_state(meta["state"], tensors)
        same_run = replace(cfg, seeds=tuple(meta["config"]["seeds"]))
        env_steps = int(state["collector"]["env_steps"])
    except UserError as exc:
        return CellPlan("redo", f"{said}; {one_line(exc)}")
    except (KeyError, TypeError, ValueError, IndexError):
        return CellPlan("redo", f"{said}; its checkpoint {file} lacks the counts a cell is checked by")
    if status == "finished":
        disagreement = _disagreement(out, summary, meta, env_steps, config_sha256(same_run))
        if disagreement is None:
            return CellPlan("done")
        said = f"its summary.json says finished, but {disagreement}"
    try:
        verify_seed(out, same_run)
    except UserError as exc:
        return CellPlan("redo", f"{said}; {one_line(exc)}")
    return CellPlan("resume", f"{said}; it continues from its checkpoint at {env_steps:,} env steps")


def _disagreement(out: Path, summary: dict[str, Any], meta: dict[str, Any], env_steps: int, sha: str) -> str | None:
    """What a finished cell's summary, final checkpoint and tables disagree on (None: they agree)."""
    tables = meta.get("tables")
    if meta.get("config_sha256") != sha or not isinstance(tables, dict):
        return "its checkpoint was made with another config"
    try:
        rows = {name: int(tables[name]["rows"]) for name in TABLES}
        digests = {name: str(tables[name]["sha256"]) for name in TABLES}
    except (KeyError, TypeError, ValueError):
        return "its checkpoint lacks the table digests"
    if summary.get("episodes") != rows["episodes.csv"]:
        return f"it counts {summary.get('episodes')} episodes and its final checkpoint {rows['episodes.csv']}"
    if summary.get("env_steps") != env_steps:
        return f"it counts {summary.get('env_steps')} env steps and its final checkpoint {env_steps}"
    for name in TABLES:
        try:
            data = read_nofollow(out / name)
        except OSError:
            return f"{name} is missing or cannot be read"
        held = len(complete_lines(data)) - 1
        if held != rows[name]:
            return f"{name} holds {max(held, 0)} rows and its final checkpoint covers {rows[name]}"
        if hashlib.sha256(data).hexdigest() != digests[name]:
            return f"{name} differs from what its final checkpoint recorded"
    return None


def plan_cells(
    out: Path, configs: dict[tuple[str, str], Config], cells: list[Cell], overwrite: bool, locks: ExitStack
) -> dict[Cell, CellPlan]:
    """Each cell's plan (:func:`mjreinforce.suite.cells.plan_cell`; all "new" with ``overwrite``), holding the
    lock of every seed directory that exists (one that another process still writes, e.g. the worker of a
    killed benchmark that has not stopped yet, is refused with the lock's line)."""
    plans: dict[Cell, CellPlan] = {}
    for cell in cells:
        path = cell_dir(out, cell)
        check_real_dirs(path)
        if path.is_dir():
            locks.enter_context(RunLock(path))
        plans[cell] = CellPlan("new") if overwrite else plan_cell(path, configs[(cell.env_id, cell.preset)])
    return plans


def announce(cell: Cell, plan: CellPlan) -> None:
    """One line for a cell that is resumed or redone, saying why."""
    if plan.action == "resume":
        print(f"benchmark: {cell} is resumed: {plan.why}", flush=True)
    elif plan.action == "redo":
        print(f"benchmark: {cell} is redone from the start: {plan.why}", flush=True)
