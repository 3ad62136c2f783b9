"""mjreinforce: policy-gradient training for Gymnasium MuJoCo continuous control.

Python API::

    from mjreinforce import Config, load_policy, load_preset, train
    result = train(load_preset("vpg"), "runs/vpg")
    policy = load_policy("runs/vpg", seed=1)   # its latest checkpoint
    action = policy.act(obs)                    # deterministic (mean) action for one observation
"""

from __future__ import annotations

from typing import Any

from mjreinforce.config import Config, load_preset, load_toml, save_toml
from mjreinforce.errors import UserError

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


def __getattr__(name: str) -> Any:
    # Heavy modules (torch, gymnasium) load on first use, so `import mjreinforce` stays cheap.
    if name == "train":
        from mjreinforce.training.run import train

        return train
    if name == "load_policy":
        from mjreinforce.trained.loading import load_policy

        return load_policy
    raise AttributeError(name)
