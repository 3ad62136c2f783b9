"""Published results the suite is compared with, read from ``references.toml`` in this package.

Each entry names its source, where it was read, the env-step budget and exactly what the number is
(``metric``); ``approximate`` marks values read off a plot. Keys are our env ids (``-v5``); the metric
names the env versions the source used.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from importlib import resources


@dataclass(frozen=True)
class Reference:
    source: str
    where: str
    budget_steps: int
    metric: str
    approximate: bool
    returns: dict[str, float]

    @property
    def label(self) -> str:
        """``Tianshou REINFORCE (10M)``; approximate values get a ``~``."""
        budget = f"{self.budget_steps / 1e6:g}M"
        return f"{self.source} ({'~' if self.approximate else ''}{budget})"


def load_references() -> list[Reference]:
    """Every entry of the package's ``references.toml``, in file order."""
    text = resources.files("mjreinforce.suite").joinpath("references.toml").read_text()
    return [
        Reference(
            source=e["source"],
            where=e["where"],
            budget_steps=int(e["budget_steps"]),
            metric=e["metric"],
            approximate=bool(e["approximate"]),
            returns={k: float(v) for k, v in e["returns"].items()},
        )
        for e in tomllib.loads(text)["reference"]
    ]
