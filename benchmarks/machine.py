"""Where and with what the benchmark ran: date, command, CPU, pinned core, load, versions, commit.

Imports only the standard library, so :func:`pin_to_one_core` can run before numpy, torch or envpool load.
"""

from __future__ import annotations

import os
import platform
import shlex
import subprocess
import sys
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

PACKAGES = ("torch", "gymnasium", "mujoco", "envpool", "numpy", "mjreinforce")


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _physical_cores() -> int | None:
    """Distinct (physical id, core id) pairs in /proc/cpuinfo; None when it cannot be read."""
    cores, phys = set(), "0"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            key, _, value = line.partition(":")
            if key.strip() == "physical id":
                phys = value.strip()
            elif key.strip() == "core id":
                cores.add((phys, value.strip()))
    except OSError:
        return None
    return len(cores) or None


def _git(*args: str) -> str:
    try:
        repo = Path(__file__).resolve().parent.parent
        return subprocess.run(["git", "-C", str(repo), *args], capture_output=True, text=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        return ""


def pin_to_one_core(core: int | None) -> int:
    """Pin this process (and so every thread and child it creates later) to one core, and make
    the numeric libraries use one thread. Must run before numpy/torch/envpool are imported."""
    allowed = sorted(os.sched_getaffinity(0))
    core = allowed[-1] if core is None else core
    if core not in allowed:
        sys.exit(f"{Path(sys.argv[0]).name}: core {core} is not available to this process (allowed: {allowed})")
    os.sched_setaffinity(0, {core})
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        os.environ[var] = "1"
    return core


def thread_affinities() -> set[str]:
    """``Cpus_allowed_list`` of every thread of this process (torch, envpool and TB threads included)."""
    lists = set()
    for status in Path("/proc/self/task").glob("*/status"):
        for line in status.read_text().splitlines():
            if line.startswith("Cpus_allowed_list:"):
                lists.add(line.split(":", 1)[1].strip())
    return lists


def machine_and_versions(core: int) -> dict[str, Any]:
    """Date, command, CPU, pinned core, load, versions and the git commit, taken at the start."""
    exe = Path(sys.executable)
    exe_shown = os.path.relpath(exe) if exe.is_relative_to(Path.cwd()) else str(exe)
    versions = {"python": platform.python_version()}
    for pkg in PACKAGES:
        try:
            versions[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            versions[pkg] = "not installed"
    dirty = _git("status", "--porcelain", "--untracked-files=no").strip()
    return {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "command": shlex.join([exe_shown, *sys.argv]),
        "cwd": str(Path.cwd()),
        "cpu": _cpu_model(),
        "logical_cpus": os.cpu_count(),
        "physical_cores": _physical_cores(),
        "core": core,
        "load_start": os.getloadavg(),
        "versions": versions,
        "commit": (_git("rev-parse", "--short", "HEAD").strip() or "unknown")
        + (" + uncommitted changes" if dirty else ""),
    }


def at_end(meta: dict[str, Any]) -> None:
    """Add what can only be known at the end: load, the affinity of every thread, the end time."""
    meta["load_end"] = os.getloadavg()
    meta["threads_allowed"] = sorted(thread_affinities())
    meta["date_end"] = datetime.now(UTC).isoformat(timespec="seconds")
