"""Tests for mjreinforce.runs.checkpoint_format: real files, real optimizers, real RNGs, real pickle payloads."""

from __future__ import annotations

import json
import os
import pickle
import random
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import safetensors.torch
import torch

from mjreinforce.errors import UserError
from mjreinforce.files import atomic_write
from mjreinforce.runs.checkpoint_dir import latest_checkpoint, save_checkpoint_rotating, write_latest
from mjreinforce.runs.checkpoint_format import (
    FORMAT_VERSION,
    flatten_state,
    load_checkpoint,
    save_checkpoint,
    unflatten_state,
)


def _tensors() -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    return {
        "policy/w": torch.randn(4, 3, generator=g),
        "policy/b": torch.randn(3, generator=g, dtype=torch.float64),
        "scalar": torch.tensor(2.5),
        "steps": torch.arange(5, dtype=torch.int64),
        "mask": torch.tensor([True, False, True]),
        "half": torch.randn(2, 2, generator=g).to(torch.bfloat16),
        "empty": torch.zeros(0, 3),
    }


def _assert_same_tensors(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> None:
    assert a.keys() == b.keys()
    for k in a:
        assert a[k].dtype == b[k].dtype and a[k].shape == b[k].shape, k
        assert torch.equal(a[k], b[k]), k


def _assert_user_error(path: Path) -> str:
    """load_checkpoint(path) raises a one-line UserError naming path; returns the message."""
    with pytest.raises(UserError) as info:
        load_checkpoint(path)
    msg = str(info.value)
    assert "\n" not in msg and str(path) in msg, msg
    return msg


# ------------------------------------------------------------------------------------------ round trips
def test_tensors_and_meta_round_trip(tmp_path: Path) -> None:
    meta = {
        "env_id": "Hopper-v5",
        "update": 7,
        "lr": 3e-4,
        "big": 2**100,
        "nan": float("nan"),
        "nested": {"a": [1, 2.5, None, True]},
        "text": "ünïcode",
    }
    path = tmp_path / "c.safetensors"
    save_checkpoint(path, _tensors(), meta)
    tensors, loaded = load_checkpoint(path)
    _assert_same_tensors(_tensors(), tensors)
    assert np.isnan(loaded.pop("nan")) and np.isnan(meta.pop("nan"))
    assert loaded == meta
    # the file is a plain safetensors file with our JSON (format version included) under one metadata key
    with safetensors.safe_open(path, framework="pt") as f:
        envelope = json.loads(f.metadata()["mjreinforce"])
    assert envelope["format_version"] == FORMAT_VERSION and envelope["meta"]["update"] == 7


def test_shared_memory_and_noncontiguous_tensors_are_saved(tmp_path: Path) -> None:
    base = torch.arange(12.0).reshape(3, 4)
    tensors = {"w": base, "tied": base, "transposed": base.T}
    save_checkpoint(tmp_path / "c.safetensors", tensors, {})
    loaded, _ = load_checkpoint(tmp_path / "c.safetensors")
    assert torch.equal(loaded["tied"], base) and torch.equal(loaded["transposed"], base.T)


def test_flatten_skeleton_is_json_and_preserves_types() -> None:
    nested = {
        0: {"t": torch.ones(2)},
        "tup": (1, (2.0, "x"), [3, None]),
        "np": np.int64(7),
        "npf": np.float32(0.5),
        "arr": np.arange(6, dtype=np.uint32).reshape(2, 3),
        "__tensor__": "a str key that looks like a marker",
        "same/path": torch.zeros(1),
        "same": {"path": torch.ones(1)},
    }
    tensors, skeleton = flatten_state("s", nested)
    skeleton = json.loads(json.dumps(skeleton))  # must survive JSON text
    assert all(k.startswith("s/") for k in tensors) and len(tensors) == 4  # unique keys despite the clash
    back = unflatten_state(skeleton, tensors)
    assert set(back) == set(nested) and 0 in back  # int key stays int
    assert torch.equal(back[0]["t"], torch.ones(2))
    assert back["tup"] == (1, (2.0, "x"), [3, None]) and isinstance(back["tup"][1], tuple)
    assert type(back["np"]) is int and back["np"] == 7 and type(back["npf"]) is float
    assert back["arr"].dtype == np.uint32 and np.array_equal(back["arr"], nested["arr"])
    assert back["__tensor__"] == nested["__tensor__"]
    assert torch.equal(back["same/path"], torch.zeros(1)) and torch.equal(back["same"]["path"], torch.ones(1))
    with pytest.raises(ValueError):
        flatten_state("a/b", {})
    with pytest.raises(TypeError):
        flatten_state("x", {"bad": object()})


def _train_steps(model: torch.nn.Module, opt: torch.optim.Optimizer, seeds: range) -> None:
    for s in seeds:
        x = torch.randn(16, 3, generator=torch.Generator().manual_seed(s))
        opt.zero_grad()
        model(x).pow(2).mean().backward()
        opt.step()


def test_adamw_state_round_trip_gives_identical_next_step(tmp_path: Path) -> None:
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(3, 8), torch.nn.Tanh(), torch.nn.Linear(8, 2))
    opt = torch.optim.AdamW(model.parameters(), lr=1e-2, weight_decay=0.1)
    _train_steps(model, opt, range(3))
    opt_tensors, opt_skeleton = flatten_state("optim", opt.state_dict())
    model_tensors = {f"model/{k}": v for k, v in model.state_dict().items()}
    save_checkpoint(tmp_path / "c.safetensors", {**model_tensors, **opt_tensors}, {"optim": opt_skeleton})

    tensors, meta = load_checkpoint(tmp_path / "c.safetensors")
    model2 = torch.nn.Sequential(torch.nn.Linear(3, 8), torch.nn.Tanh(), torch.nn.Linear(8, 2))
    model2.load_state_dict({k.removeprefix("model/"): v for k, v in tensors.items() if k[:6] == "model/"})
    opt2 = torch.optim.AdamW(model2.parameters(), lr=1e-2, weight_decay=0.1)
    opt2.load_state_dict(unflatten_state(meta["optim"], tensors))
    # a fresh optimizer (no restored moments) would take a different step: the check below can fail
    model3 = torch.nn.Sequential(torch.nn.Linear(3, 8), torch.nn.Tanh(), torch.nn.Linear(8, 2))
    model3.load_state_dict(model.state_dict())
    opt3 = torch.optim.AdamW(model3.parameters(), lr=1e-2, weight_decay=0.1)

    for m, o in ((model, opt), (model2, opt2), (model3, opt3)):
        _train_steps(m, o, range(3, 5))
    for p, p2 in zip(model.parameters(), model2.parameters(), strict=True):
        assert torch.equal(p, p2)
    assert not all(torch.equal(p, p3) for p, p3 in zip(model.parameters(), model3.parameters(), strict=True))


def test_rng_states_round_trip(tmp_path: Path) -> None:
    torch.manual_seed(123)
    random.seed(5)
    pcg = np.random.default_rng(42)
    mt = np.random.Generator(np.random.MT19937(7))  # its state holds a uint32 ndarray
    pcg.random(3), mt.random(3), random.random(), torch.rand(3)  # advance past the seeding
    states = {
        "torch": torch.get_rng_state(),
        "pcg": pcg.bit_generator.state,
        "mt": mt.bit_generator.state,
        "python": random.getstate(),
    }
    tensors, skeleton = flatten_state("rng", states)
    save_checkpoint(tmp_path / "rng.safetensors", tensors, {"rng": skeleton})
    expected = (torch.rand(5), pcg.random(5), mt.random(5), [random.random() for _ in range(5)])

    loaded_tensors, meta = load_checkpoint(tmp_path / "rng.safetensors")
    back = unflatten_state(meta["rng"], loaded_tensors)
    torch.set_rng_state(back["torch"])
    pcg2, mt2 = np.random.default_rng(), np.random.Generator(np.random.MT19937())
    pcg2.bit_generator.state, mt2.bit_generator.state = back["pcg"], back["mt"]
    random.setstate(back["python"])
    assert torch.equal(torch.rand(5), expected[0])
    assert np.array_equal(pcg2.random(5), expected[1]) and np.array_equal(mt2.random(5), expected[2])
    assert [random.random() for _ in range(5)] == expected[3]


# ------------------------------------------------------------------------------------ hostile and broken
class _Payload:
    """Unpickling this runs ``touch marker`` through os.system."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple:
        return os.system, (f"touch '{self.marker}'",)


def test_code_executing_pickles_are_refused_and_never_run(tmp_path: Path) -> None:
    proof = tmp_path / "proof"
    pickle.loads(pickle.dumps(_Payload(proof)))
    assert proof.exists()  # the payload really runs code when unpickled ...
    torch.save(_Payload(tmp_path / "proof2"), tmp_path / "proof.pt")
    torch.load(tmp_path / "proof.pt", weights_only=False)
    assert (tmp_path / "proof2").exists()  # ... also through torch.load

    marker = tmp_path / "marker"
    raw = tmp_path / "ckpt_1.safetensors"
    raw.write_bytes(pickle.dumps({"w": _Payload(marker)}))
    zipped = tmp_path / "ckpt_2.safetensors"
    torch.save({"w": _Payload(marker)}, zipped)
    legacy = tmp_path / "ckpt_3.pt"
    torch.save({"w": _Payload(marker)}, legacy, _use_new_zipfile_serialization=False)
    for path in (raw, zipped, legacy):
        assert "pickle" in _assert_user_error(path)
    assert not marker.exists()


def _good_file(tmp_path: Path) -> tuple[Path, bytes]:
    path = tmp_path / "good.safetensors"
    save_checkpoint(path, {"w": torch.arange(6.0), "n": torch.tensor([1, 2])}, {"update": 3, "lr": 0.001})
    return path, path.read_bytes()


def test_truncated_random_empty_missing_and_directory(tmp_path: Path) -> None:
    path, data = _good_file(tmp_path)
    bad = tmp_path / "bad.safetensors"
    for content in (data[: len(data) // 2], data[:-1], data[:5], b"", os.urandom(4096), b"\x00" * 64):
        bad.write_bytes(content)
        _assert_user_error(bad)
    assert "does not exist" in _assert_user_error(tmp_path / "missing.safetensors")
    _assert_user_error(tmp_path)
    load_checkpoint(path)  # the intact file still loads


def test_every_flipped_byte_is_detected(tmp_path: Path) -> None:
    """Flip each byte of the header (and a few data bytes): every variant must be refused."""
    _, data = _good_file(tmp_path)
    header_end = 8 + int.from_bytes(data[:8], "little")
    bad = tmp_path / "flipped.safetensors"
    for i in [*range(header_end), header_end, len(data) - 1]:
        flipped = bytearray(data)
        flipped[i] ^= 0x01
        bad.write_bytes(bytes(flipped))
        _assert_user_error(bad)


@pytest.mark.parametrize("magic", [b"\x80\x02", b"PK"])
def test_valid_file_whose_length_prefix_looks_like_pickle_or_zip_loads(tmp_path: Path, magic: bytes) -> None:
    """The u64 header length can start like a pickle (0x80 0x02) or a zip (b"PK"): still our file."""
    target = int.from_bytes(magic, "little")  # 0x0280 or 0x4B50: multiples of 8, as safetensors pads to 8
    path = tmp_path / "c.safetensors"
    save_checkpoint(path, {"w": torch.ones(1)}, {"pad": ""})
    base = int.from_bytes(path.read_bytes()[:8], "little")
    for pad in range(target - base - 8, target - base + 9):
        save_checkpoint(path, {"w": torch.ones(1)}, {"pad": "x" * pad})
        data = path.read_bytes()
        if int.from_bytes(data[:8], "little") == target:
            break
    assert data.startswith(magic)
    assert load_checkpoint(path)[1] == {"pad": "x" * pad}


def test_foreign_safetensors_and_newer_format_version(tmp_path: Path) -> None:
    foreign = tmp_path / "model.safetensors"
    safetensors.torch.save_file({"w": torch.ones(2)}, foreign, metadata={"format": "pt"})
    assert "not a mjreinforce checkpoint" in _assert_user_error(foreign)

    newer = tmp_path / "newer.safetensors"
    envelope = {"format_version": FORMAT_VERSION + 1, "checksum": "0" * 64, "meta": {}}
    safetensors.torch.save_file({"w": torch.ones(2)}, newer, metadata={"mjreinforce": json.dumps(envelope)})
    assert f"format version {FORMAT_VERSION + 1}" in _assert_user_error(newer)


# --------------------------------------------------------------------------------------------- atomicity
def test_save_leaves_no_temp_files_and_replaces_existing(tmp_path: Path) -> None:
    path = tmp_path / "ckpt.safetensors"
    save_checkpoint(path, {"w": torch.zeros(3)}, {"version": "old"})
    save_checkpoint(path, {"w": torch.ones(3)}, {"version": "new"})
    assert os.listdir(tmp_path) == ["ckpt.safetensors"]
    tensors, meta = load_checkpoint(path)
    assert meta == {"version": "new"} and torch.equal(tensors["w"], torch.ones(3))


def test_failed_write_keeps_old_file_and_removes_temp(tmp_path: Path) -> None:
    path = tmp_path / "ckpt.safetensors"
    save_checkpoint(path, {"w": torch.zeros(3)}, {"version": "old"})
    with pytest.raises(TypeError):
        atomic_write(path, 5)  # type: ignore[arg-type]  # fails inside the temp-file write
    assert os.listdir(tmp_path) == ["ckpt.safetensors"]
    assert load_checkpoint(path)[1] == {"version": "old"}


_WRITER = """
import sys, torch
from pathlib import Path
from mjreinforce.runs.checkpoint_format import save_checkpoint
path, i = Path(sys.argv[1]), 0
while True:
    save_checkpoint(path, {"w": torch.full((200_000,), float(i))}, {"i": i})
    print(i, flush=True)
    i += 1
"""


def test_killed_writer_never_leaves_a_partial_file(tmp_path: Path) -> None:
    """SIGKILL a process that saves in a loop: the final name always holds one complete checkpoint."""
    path = tmp_path / "ckpt.safetensors"
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parents[2] / "src")}
    cmd = [sys.executable, "-c", _WRITER, str(path)]
    with subprocess.Popen(cmd, stdout=subprocess.PIPE, env=env) as proc:
        assert proc.stdout is not None
        for _ in range(3):  # wait until several saves have completed
            assert proc.stdout.readline()
        time.sleep(0.01)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    tensors, meta = load_checkpoint(path)
    assert meta["i"] >= 2 and torch.all(tensors["w"] == meta["i"])


# ------------------------------------------------------------------------------ latest pointer, rotation
def _seed_with_checkpoint(run_dir: Path, seed: int, label: int) -> Path:
    return save_checkpoint_rotating(
        run_dir / f"seed_{seed}" / "checkpoints", label, {"w": torch.tensor([float(seed)])}, {"seed": seed}
    )


def test_latest_checkpoint_resolution(tmp_path: Path) -> None:
    run = tmp_path / "run"
    ckpt0 = _seed_with_checkpoint(run, 0, 10)
    pointer = json.loads((run / "seed_0" / "checkpoints" / "latest.json").read_text())
    assert pointer == {"file": "ckpt_10.safetensors", "step_label": 10}
    assert latest_checkpoint(ckpt0) == ckpt0
    assert latest_checkpoint(run / "seed_0") == ckpt0
    assert latest_checkpoint(run / "seed_0" / "checkpoints") == ckpt0
    assert latest_checkpoint(run / "seed_0" / "checkpoints" / "latest.json") == ckpt0
    assert latest_checkpoint(run) == ckpt0  # exactly one seed

    ckpt1 = _seed_with_checkpoint(run, 1, 20)
    with pytest.raises(UserError, match=r"2 seeds \(0, 1\)"):
        latest_checkpoint(run)
    assert latest_checkpoint(run, seed=1) == ckpt1
    assert load_checkpoint(latest_checkpoint(run, seed=1))[1] == {"seed": 1}
    with pytest.raises(UserError, match="no seed 5"):
        latest_checkpoint(run, seed=5)
    with pytest.raises(UserError, match="does not exist"):
        latest_checkpoint(tmp_path / "nope")


def test_latest_checkpoint_when_none_or_broken(tmp_path: Path) -> None:
    run = tmp_path / "run"
    (run / "seed_3").mkdir(parents=True)
    (run / "seed_3" / "episodes.csv").write_text("seed,episode\n")
    for where in (run, run / "seed_3"):
        pattern = rf"no checkpoint in {re.escape(str(where))}.*training wrote none"
        with pytest.raises(UserError, match=pattern):
            latest_checkpoint(where)
    with pytest.raises(UserError, match="no checkpoint in"):
        latest_checkpoint(tmp_path)  # no seed dirs at all

    checkpoints = run / "seed_3" / "checkpoints"
    for label in (9, 10):  # a crash before the first latest.json: fall back to the highest label
        save_checkpoint(checkpoints / f"ckpt_{label}.safetensors", {"w": torch.zeros(1)}, {})
    assert latest_checkpoint(run) == checkpoints / "ckpt_10.safetensors"

    write_latest(checkpoints, "ckpt_99.safetensors", {})
    with pytest.raises(UserError, match=r"ckpt_99\.safetensors, which does not exist"):
        latest_checkpoint(run)
    (checkpoints / "latest.json").write_text("{not json")
    with pytest.raises(UserError, match="malformed"):
        latest_checkpoint(run)
    with pytest.raises(ValueError):
        write_latest(checkpoints, "../escape.safetensors", {})


def test_rotation_keeps_newest_and_never_the_latest_target(tmp_path: Path) -> None:
    checkpoints = tmp_path / "seed_0" / "checkpoints"
    (checkpoints).mkdir(parents=True)
    (checkpoints / ".ckpt_1.safetensors.0123456789abcdef.tmp").write_bytes(b"half")  # left by a killed save
    for label in (1, 8, 9, 10, 11):  # 9 < 10 numerically though not as text
        save_checkpoint_rotating(checkpoints, label, {"w": torch.tensor([float(label)])}, {"label": label}, keep=2)
    assert sorted(os.listdir(checkpoints)) == ["ckpt_10.safetensors", "ckpt_11.safetensors", "latest.json"]
    assert load_checkpoint(latest_checkpoint(tmp_path / "seed_0"))[1] == {"label": 11}

    # resuming from an older state writes a lower label: it is latest, so it survives rotation
    save_checkpoint_rotating(checkpoints, 5, {"w": torch.zeros(1)}, {"label": 5}, keep=2)
    assert sorted(os.listdir(checkpoints)) == [
        "ckpt_10.safetensors",
        "ckpt_11.safetensors",
        "ckpt_5.safetensors",
        "latest.json",
    ]
    assert latest_checkpoint(checkpoints) == checkpoints / "ckpt_5.safetensors"
    with pytest.raises(ValueError):
        save_checkpoint_rotating(checkpoints, 12, {}, {}, keep=0)
