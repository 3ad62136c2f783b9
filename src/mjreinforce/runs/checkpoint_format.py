"""Atomic, code-free checkpoints: named tensors plus JSON metadata in one safetensors file.

File format (``FORMAT_VERSION`` 1): a plain safetensors file whose header ``__metadata__`` holds one key,
``"mjreinforce"``, mapping to ``json.dumps({"format_version": 1, "checksum": <sha256 hex>, "meta": meta})``.
The checksum covers ``json.dumps(meta)`` and every tensor's name, dtype, shape and bytes, so a flipped bit
anywhere in the file is reported instead of silently loaded (Python's ``json`` re-serializes loaded JSON
to the same text, which is what makes the meta part checkable). Loading parses JSON and raw tensor bytes
only; nothing in the file is ever executed, and there is no fallback to ``torch.load``/pickle.

Nested state (optimizer ``state_dict()``, RNG states) is split by :func:`flatten_state` into tensors and a
JSON-able skeleton, and rebuilt by :func:`unflatten_state`. Skeleton encoding:

- ``torch.Tensor``  -> ``{"__tensor__": key}`` (the tensor is stored under ``key`` in the tensor dict)
- ``numpy.ndarray`` -> ``{"__ndarray__": {"tensor": key, "dtype": "<u4", "shape": [...]}}`` (raw bytes, uint8)
- ``tuple``         -> ``{"__tuple__": [items]}`` (so ``random.setstate`` gets the tuples it insists on)
- ``dict`` with str keys, none of them a marker above -> a JSON object; any other dict (e.g. the int keys
  of an optimizer's ``state``) -> ``{"__dict__": [[key, value], ...]}``
- ``list`` -> JSON list; ``int``/``float``/``bool``/``str``/``None`` as is; numpy scalars -> Python scalars
  (``np.int64`` -> ``int``). Floats (NaN and +-inf included) round-trip exactly through Python's ``json``.

Where checkpoints live in a run dir, the ``latest.json`` pointer and rotation are
:mod:`mjreinforce.runs.checkpoint_dir`.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import numpy as np
import safetensors.torch
import torch
from safetensors import SafetensorError

from mjreinforce.errors import UserError, one_line
from mjreinforce.files import atomic_write

FORMAT_VERSION = 1
METADATA_KEY = "mjreinforce"
_MARKERS = ("__tensor__", "__ndarray__", "__tuple__", "__dict__")
_LEN_BYTES = 8  # safetensors: u64 little-endian header length, then the JSON header
_MAX_HEADER_BYTES = 100_000_000  # safetensors' own limit


# ----------------------------------------------------------------------------------------------- writing
def _checksum(tensors: dict[str, torch.Tensor], meta: dict) -> str:
    """SHA-256 over ``json.dumps(meta)`` then (name, dtype, shape, raw bytes) of each tensor, by name."""
    h = hashlib.sha256(json.dumps(meta).encode())
    for name in sorted(tensors):
        t = tensors[name].contiguous()
        h.update(json.dumps([name, str(t.dtype), list(t.shape)]).encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()


def save_checkpoint(path: Path, tensors: dict[str, torch.Tensor], meta: dict) -> None:
    """Atomically write ``tensors`` (moved to CPU, made contiguous) and JSON-able ``meta`` to ``path``.

    Tensors that share memory (tied weights) are copied so safetensors accepts them. Raises ``TypeError``
    for a non-tensor value and ``ValueError``/``TypeError`` (from ``json``) for non-JSON-able ``meta``.
    """
    cpu: dict[str, torch.Tensor] = {}
    for name, t in tensors.items():
        if not isinstance(t, torch.Tensor):
            raise TypeError(f"checkpoint tensor {name!r} is a {type(t).__name__}, not a torch.Tensor")
        cpu[name] = t.detach().to("cpu").contiguous().clone()
    envelope = {"format_version": FORMAT_VERSION, "checksum": _checksum(cpu, meta), "meta": meta}
    data = safetensors.torch.save(cpu, metadata={METADATA_KEY: json.dumps(envelope)})
    atomic_write(Path(path), data)


# ----------------------------------------------------------------------------------------------- reading
def _read_header(path: Path, data: bytes) -> dict:
    """Parse the safetensors header (u64 little-endian length, then JSON) or raise a one-line UserError."""
    if not data:
        raise UserError(f"checkpoint {path} is empty (0 bytes); the run may have been killed while writing")
    if len(data) <= _LEN_BYTES:
        raise UserError(f"checkpoint {path} is truncated or not a checkpoint (only {len(data)} bytes)")
    n = int.from_bytes(data[:_LEN_BYTES], "little")
    if not 0 < n <= _MAX_HEADER_BYTES or data[_LEN_BYTES] != ord("{"):
        # not safetensors; name the dangerous formats (a zip is what torch.save writes, 0x80 opens a pickle)
        if data.startswith(b"PK\x03\x04") or (data[0] == 0x80 and 2 <= data[1] <= 5):
            raise UserError(
                f"{path} is a torch.save/pickle file, not a mjreinforce checkpoint; "
                "it is not loaded because unpickling can run arbitrary code"
            )
        raise UserError(f"{path} is not a mjreinforce checkpoint (not a safetensors file)")
    if _LEN_BYTES + n > len(data):
        raise UserError(f"checkpoint {path} is truncated ({len(data)} bytes; its header alone needs {_LEN_BYTES + n})")
    try:
        header = json.loads(data[_LEN_BYTES : _LEN_BYTES + n].decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise UserError(f"checkpoint {path} is corrupted (unreadable header: {one_line(e)})") from None
    if not isinstance(header, dict):
        raise UserError(f"checkpoint {path} is corrupted (header is not a JSON object)")
    return header


def _read_envelope(path: Path, header: dict) -> dict:
    """Return ``{"format_version", "checksum", "meta"}`` from the header, checking the format version."""
    metadata = header.get("__metadata__")
    if not isinstance(metadata, dict) or METADATA_KEY not in metadata:
        raise UserError(f"{path} is a safetensors file but not a mjreinforce checkpoint (no {METADATA_KEY!r} metadata)")
    try:
        envelope = json.loads(metadata[METADATA_KEY])
    except (TypeError, json.JSONDecodeError) as e:
        raise UserError(f"checkpoint {path} is corrupted (metadata: {one_line(e)})") from None
    version = envelope.get("format_version") if isinstance(envelope, dict) else None
    if (
        not isinstance(version, int)
        or isinstance(version, bool)
        or version < 1
        or not isinstance(envelope.get("meta"), dict)
        or not isinstance(envelope.get("checksum"), str)
    ):
        raise UserError(f"checkpoint {path} is corrupted (malformed mjreinforce metadata)")
    if version > FORMAT_VERSION:
        raise UserError(
            f"checkpoint {path} has format version {version}, but this mjreinforce reads only "
            f"up to version {FORMAT_VERSION}; upgrade mjreinforce to load it"
        )
    return envelope


def load_checkpoint(path: Path) -> tuple[dict[str, torch.Tensor], dict]:
    """Load ``(tensors, meta)`` written by :func:`save_checkpoint`; tensors are on CPU.

    Every failure the user can cause (missing path, directory, empty/truncated/corrupted file, pickle or
    torch.save file, foreign safetensors file, newer format version) raises a one-line :class:`UserError`
    naming ``path``.
    """
    path = Path(path)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise UserError(f"checkpoint {path} does not exist") from None
    except IsADirectoryError:
        raise UserError(f"checkpoint {path} is a directory; pass a checkpoint file or a run dir") from None
    except OSError as e:
        raise UserError(f"cannot read checkpoint {path}: {one_line(e.strerror or e)}") from None
    envelope = _read_envelope(path, _read_header(path, data))
    try:
        tensors = safetensors.torch.load(data)
    except (SafetensorError, KeyError, ValueError, RuntimeError) as e:  # KeyError: a dtype torch lacks
        raise UserError(f"checkpoint {path} is corrupted or truncated ({one_line(e)})") from None
    if _checksum(tensors, envelope["meta"]) != envelope["checksum"]:
        raise UserError(f"checkpoint {path} is corrupted (checksum mismatch)")
    return tensors, envelope["meta"]


# ------------------------------------------------------------------------------------------ nested state
def flatten_state(prefix: str, nested: Any) -> tuple[dict[str, torch.Tensor], Any]:
    """Split ``nested`` into ``(tensors, skeleton)``; see the module docstring for the skeleton encoding.

    Tensor keys are ``"<prefix>/<path>"`` (e.g. ``"optim/state/0/exp_avg"``), made unique with a ``#n``
    suffix if two paths collide. ``prefix`` must be non-empty and contain no ``/``, so the tensor dicts of
    different prefixes can be merged without clashes. Unsupported leaf types raise ``TypeError``.
    """
    if not prefix or "/" in prefix:
        raise ValueError(f"prefix must be non-empty and contain no '/', got {prefix!r}")
    tensors: dict[str, torch.Tensor] = {}

    def add(path: str, t: torch.Tensor) -> str:
        key, n = f"{prefix}/{path}" if path else prefix, 1
        while key in tensors:
            key, n = f"{prefix}/{path}#{n}", n + 1
        tensors[key] = t
        return key

    def walk(obj: Any, path: str) -> Any:
        def sub(k: object) -> str:
            return f"{path}/{k}" if path else str(k)

        if isinstance(obj, torch.Tensor):
            return {"__tensor__": add(path, obj.detach())}
        if isinstance(obj, np.ndarray):
            if obj.dtype.hasobject:
                raise TypeError(f"cannot checkpoint object array at {prefix}/{path}")
            raw = torch.from_numpy(np.ascontiguousarray(obj).reshape(-1).view(np.uint8).copy())
            spec = {"tensor": add(path, raw), "dtype": obj.dtype.str, "shape": list(obj.shape)}
            return {"__ndarray__": spec}
        if isinstance(obj, (bool, np.bool_)):
            return bool(obj)
        if isinstance(obj, (int, np.integer)):
            return int(obj)
        if isinstance(obj, (float, np.floating)):
            return float(obj)
        if obj is None or isinstance(obj, str):
            return obj
        if isinstance(obj, tuple):
            return {"__tuple__": [walk(v, sub(i)) for i, v in enumerate(obj)]}
        if isinstance(obj, list):
            return [walk(v, sub(i)) for i, v in enumerate(obj)]
        if isinstance(obj, dict):
            if all(isinstance(k, str) and k not in _MARKERS for k in obj):
                return {k: walk(v, sub(k)) for k, v in obj.items()}
            return {"__dict__": [[walk(k, sub("key")), walk(v, sub(k))] for k, v in obj.items()]}
        raise TypeError(f"cannot checkpoint {type(obj).__name__} at {prefix}/{path}")

    return tensors, walk(nested, "")


def unflatten_state(skeleton: Any, tensors: dict[str, torch.Tensor]) -> Any:
    """Inverse of :func:`flatten_state`: rebuild the nested structure, looking tensors up by key.

    A missing tensor key raises ``KeyError`` (the skeleton and tensors come from different checkpoints).
    """
    if isinstance(skeleton, list):
        return [unflatten_state(v, tensors) for v in skeleton]
    if not isinstance(skeleton, dict):
        return skeleton
    if len(skeleton) == 1:
        ((tag, value),) = skeleton.items()
        if tag == "__tensor__":
            return tensors[value]
        if tag == "__ndarray__":
            raw = tensors[value["tensor"]].numpy().tobytes()
            return np.frombuffer(raw, dtype=np.dtype(value["dtype"])).reshape(value["shape"]).copy()
        if tag == "__tuple__":
            return tuple(unflatten_state(v, tensors) for v in value)
        if tag == "__dict__":
            return {unflatten_state(k, tensors): unflatten_state(v, tensors) for k, v in value}
    return {k: unflatten_state(v, tensors) for k, v in skeleton.items()}
