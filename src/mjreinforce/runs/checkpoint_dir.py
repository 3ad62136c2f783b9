"""Checkpoint files in a run dir: the ``latest.json`` pointer, rotation, and finding the checkpoint to load.

Layout: ``RUN_DIR/seed_<s>/checkpoints/`` holds ``ckpt_<label>.safetensors`` files (written by
:func:`mjreinforce.runs.checkpoint_format.save_checkpoint`) and a ``latest.json`` pointer
``{"file": "ckpt_<label>.safetensors", ...info}``, always written after the file it names.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch

from mjreinforce.errors import UserError
from mjreinforce.files import atomic_write, remove_stale_temp_files
from mjreinforce.runs.checkpoint_format import save_checkpoint
from mjreinforce.runs.layout import list_seeds, seed_dir, seed_of

LATEST_NAME = "latest.json"
CKPT_PREFIX, CKPT_SUFFIX = "ckpt_", ".safetensors"


def checkpoint_label(name: str) -> int | None:
    """The label of a file name ``ckpt_<label>.safetensors`` (decimal digits), else None."""
    digits = name.removeprefix(CKPT_PREFIX).removesuffix(CKPT_SUFFIX)
    if not name.startswith(CKPT_PREFIX) or not name.endswith(CKPT_SUFFIX) or not digits.isascii():
        return None
    return int(digits) if digits.isdigit() else None


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
    atomic_write(Path(checkpoint_dir) / LATEST_NAME, text)


def _checkpoint_files(checkpoint_dir: Path) -> list[tuple[int, Path]]:
    """``(label, path)`` of every ``ckpt_<label>.safetensors`` in ``checkpoint_dir``, ascending by label."""
    if not checkpoint_dir.is_dir():
        return []
    found = [(label, p) for p in checkpoint_dir.iterdir() if (label := checkpoint_label(p.name)) is not None]
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
    path = checkpoint_dir / f"{CKPT_PREFIX}{step_label}{CKPT_SUFFIX}"
    save_checkpoint(path, tensors, meta)
    write_latest(checkpoint_dir, path.name, {"step_label": step_label, **(info or {})})
    for _, old in _checkpoint_files(checkpoint_dir)[:-keep]:
        if old != path:
            old.unlink(missing_ok=True)
    remove_stale_temp_files(checkpoint_dir)
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
    own = seed_of(path)
    if own is not None or (path / "checkpoints").is_dir():
        if seed is not None and own is not None and own != seed:
            raise UserError(f"{path} is the directory of seed {own}, not of the requested seed {seed}")
        return _seed_latest(path, path)
    seeds = list_seeds(path)
    if seed is not None:
        if seed not in seeds:
            raise UserError(f"{path} has no seed {seed} (seeds: {', '.join(map(str, seeds)) or 'none'})")
        return _seed_latest(seed_dir(path, seed), path)
    if not seeds:
        raise UserError(f"no checkpoint in {path} (training wrote none; no seed_<s> directories found)")
    if len(seeds) > 1:
        raise UserError(
            f"{path} has {len(seeds)} seeds ({', '.join(map(str, seeds))}); "
            "pick one (seed=<s>, or --seed on the command line)"
        )
    return _seed_latest(seed_dir(path, seeds[0]), path)
