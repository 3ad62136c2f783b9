"""mjreinforce: policy-gradient training for Gymnasium MuJoCo continuous control.

Python API::

    from mjreinforce import Config, load_policy, load_preset, train
    result = train(load_preset("vpg"), "runs/vpg")
    policy = load_policy("runs/vpg", seed=1)   # its latest checkpoint
    action = policy.act(obs)                    # deterministic (mean) action for one observation
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from mjreinforce.errors import UserError

if TYPE_CHECKING:
    from mjreinforce.config import Config, load_preset, load_toml, save_toml
    from mjreinforce.trained.loading import load_policy
    from mjreinforce.training.run import train

__version__ = "0.1.0"

__all__ = [
    "Config",
    "UserError",
    "load_policy",
    "load_preset",
    "load_toml",
    "save_toml",
    "train",
    "__version__",
]

_HOMES = {
    "Config": "mjreinforce.config",
    "load_preset": "mjreinforce.config",
    "load_toml": "mjreinforce.config",
    "save_toml": "mjreinforce.config",
    "train": "mjreinforce.training.run",
    "load_policy": "mjreinforce.trained.loading",
}


def __getattr__(name: str) -> Any:
    # Everything but UserError loads on first use, so `import mjreinforce` (and the console script's start, which
    # installs its stop-signal handlers first) stays cheap: no numpy, torch or gymnasium until they are needed.
    if name not in _HOMES:
        raise AttributeError(name)
    return getattr(importlib.import_module(_HOMES[name]), name)
