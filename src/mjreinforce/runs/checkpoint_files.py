"""Checkpoint files in a run dir: the ``latest.json`` pointer, rotation, and finding the checkpoint to load.

Layout: ``RUN_DIR/seed_<s>/checkpoints/`` holds ``ckpt_<label>.safetensors`` files (written by
:func:`mjreinforce.runs.checkpoint.save_checkpoint`) and a ``latest.json`` pointer
``{"file": "ckpt_<label>.safetensors", ...info}``, always written after the file it names.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import torch

from mjreinforce.runs.checkpoint import atomic_write_bytes, save_checkpoint
from mjreinforce.errors import UserError

LATEST_NAME = "latest.json"
_CKPT_RE = re.compile(r"^ckpt_(\d+)\.safetensors$")
_SEED_RE = re.compile(r"^seed_(-?\d+)$")


def write_latest(checkpoint_dir: Path, filename: str, info: dict) -> None:
    """Atomically write ``checkpoint_dir/latest.json`` = ``{"file": filename, **info}``.

    ``filename`` is a bare file name inside ``checkpoint_dir``; ``info`` must be JSON-able and must not
    contain ``"file"``.
    """
    if Path(filename).name != filename or filename in ("", ".", ".."):
        raise ValueError(f"filename must be a bare file name inside {checkpoint_dir}, got {filename!r}")
    if "file" in info:
        raise ValueError("info must not contain the key 'file'")
    text = json.dumps({"file": filename, **info}, indent=2) + "\n"
    atomic_write_bytes(Path(checkpoint_dir) / LATEST_NAME, text.encode())


def _checkpoint_files(checkpoint_dir: Path) -> list[tuple[int, Path]]:
    """``(label, path)`` of every ``ckpt_<label>.safetensors`` in ``checkpoint_dir``, ascending by label."""
    if not checkpoint_dir.is_dir():
        return []
    found = [(int(m.group(1)), p) for p in checkpoint_dir.iterdir() if (m := _CKPT_RE.match(p.name))]
    return sorted(found)


def save_checkpoint_rotating(
    checkpoint_dir: Path,
    step_label: int,
    tensors: dict[str, torch.Tensor],
    meta: dict,
    keep: int = 3,
    *,
    info: dict | None = None,
) -> Path:
    """Write ``ckpt_<step_label>.safetensors``, point ``latest.json`` at it, keep the ``keep`` newest.

    Order matters for crash safety: the new file is complete before ``latest.json`` names it, and old files
    are deleted only after that, so ``latest.json`` always names an existing, complete file. "Newest" means
    highest label; the file ``latest.json`` names is never deleted (even after resuming from a lower label).
    Stale temp files of interrupted saves are removed too. Returns the path written.
    """
    if keep < 1:
        raise ValueError(f"keep must be >= 1, got {keep}")
    if isinstance(step_label, bool) or not isinstance(step_label, int) or step_label < 0:
        raise ValueError(f"step_label must be a non-negative int, got {step_label!r}")
    checkpoint_dir = Path(checkpoint_dir)
    path = checkpoint_dir / f"ckpt_{step_label}.safetensors"
    save_checkpoint(path, tensors, meta)
    write_latest(checkpoint_dir, path.name, {"step_label": step_label, **(info or {})})
    for _, old in _checkpoint_files(checkpoint_dir)[:-keep]:
        if old != path:
            old.unlink(missing_ok=True)
    for stale in checkpoint_dir.glob(".ckpt_*.safetensors.*.tmp"):
        stale.unlink(missing_ok=True)
    return path


def _seed_latest(seed_dir: Path, shown: Path) -> Path:
    """The checkpoint a seed dir's ``checkpoints/latest.json`` names (or, without a pointer, the highest
    ``ckpt_<label>`` file: a crash between the first save and its pointer). ``shown`` is the user's path."""
    checkpoint_dir = seed_dir / "checkpoints"
    pointer = checkpoint_dir / LATEST_NAME
    if not pointer.is_file():
        files = _checkpoint_files(checkpoint_dir)
        if files:
            return files[-1][1]
        where = shown if shown == seed_dir else f"{shown} ({seed_dir.name})"
        raise UserError(
            f"no checkpoint in {where} (training wrote none; it may have stopped before its "
            "first checkpoint, or checkpointing was disabled)"
        )
    try:
        target = json.loads(pointer.read_text(encoding="utf-8"))["file"]
        if not isinstance(target, str) or Path(target).name != target:
            raise TypeError
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, KeyError, TypeError):
        raise UserError(f"checkpoint pointer {pointer} is unreadable or malformed") from None
    if not (checkpoint_dir / target).is_file():
        raise UserError(f"checkpoint pointer {pointer} names {target}, which does not exist")
    return checkpoint_dir / target


def latest_checkpoint(path: Path, seed: int | None = None) -> Path:
    """Resolve a checkpoint file, a ``checkpoints/`` dir, a seed dir or a run dir to one checkpoint file.

    - a file -> itself (``latest.json`` -> the file it names); ``load_checkpoint`` validates the contents;
    - ``seed_<s>/`` (or its ``checkpoints/``) -> the file ``checkpoints/latest.json`` names;
    - a run dir -> ``seed_<seed>/`` if ``seed`` is given, else its only ``seed_<s>/``; with several seed dirs
      and no ``seed`` a UserError lists them. No checkpoint at all -> UserError("no checkpoint in ...").
    """
    path = Path(path)
    if not path.exists():
        raise UserError(f"{path} does not exist (expected a checkpoint file, a seed dir or a run dir)")
    if path.is_file():
        return _seed_latest(path.parent.parent, path) if path.name == LATEST_NAME else path
    if path.name == "checkpoints":
        return _seed_latest(path.parent, path)
    if (m := _SEED_RE.match(path.name)) or (path / "checkpoints").is_dir():
        if seed is not None and m and int(m.group(1)) != seed:
            raise UserError(f"{path} is the directory of seed {m.group(1)}, not of the requested seed {seed}")
        return _seed_latest(path, path)
    seeds = sorted(int(m.group(1)) for p in path.iterdir() if p.is_dir() and (m := _SEED_RE.match(p.name)))
    if seed is not None:
        if seed not in seeds:
            raise UserError(f"{path} has no seed {seed} (seeds: {', '.join(map(str, seeds)) or 'none'})")
        return _seed_latest(path / f"seed_{seed}", path)
    if not seeds:
        raise UserError(f"no checkpoint in {path} (training wrote none; no seed_<s> directories found)")
    if len(seeds) > 1:
        raise UserError(
            f"{path} has {len(seeds)} seeds ({', '.join(map(str, seeds))}); "
            "pick one (seed=<s>, or --seed on the command line)"
        )
    return _seed_latest(path / f"seed_{seeds[0]}", path)
