"""``benchmarks/RESULTS.md`` and the marked block another script keeps inside it.

``run.py`` rewrites the whole file; ``suite_throughput.py``, ``sb3_speed.py`` and ``perturb_cost.py`` each own a
block between two HTML-comment markers, which ``run.py`` keeps when it rewrites the rest. The markers are spelled
only here.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "RESULTS.md"


@dataclass(frozen=True)
class MarkedBlock:
    """A block of a Markdown file between ``<!-- NAME:begin -->`` and ``<!-- NAME:end -->`` lines."""

    name: str

    @property
    def begin(self) -> str:
        return f"<!-- {self.name}:begin -->"

    @property
    def end(self) -> str:
        return f"<!-- {self.name}:end -->"

    def kept(self, text: str) -> str:
        """The block of ``text``, markers included, framed by newlines; ``""`` if ``text`` has none."""
        if self.begin not in text or self.end not in text:
            return ""
        return "\n" + self.begin + text.split(self.begin, 1)[1].split(self.end, 1)[0] + self.end + "\n"

    def replaced(self, text: str, block: str) -> str:
        """``text`` with its block replaced by ``block`` (which carries the markers), or ``block``
        appended after a blank line when ``text`` has no block yet."""
        if self.begin in text and self.end in text:
            head, rest = text.split(self.begin, 1)
            return head + block.rstrip("\n") + rest.split(self.end, 1)[1]
        return text.rstrip("\n") + "\n\n" + block


SUITE_THROUGHPUT = MarkedBlock("suite-throughput")
"""The HalfCheetah training-throughput block that ``suite_throughput.py`` writes."""

SB3_SPEED = MarkedBlock("sb3-speed")
"""The PPO side-by-side block that ``sb3_speed.py`` writes."""

PERTURB_COST = MarkedBlock("perturb-cost")
"""The envpool cost of noise and delays that ``perturb_cost.py`` (``run.py --only perturb``) writes."""

KEPT_BLOCKS = (SUITE_THROUGHPUT, SB3_SPEED, PERTURB_COST)
"""The blocks ``run.py`` keeps when it rewrites the rest of the file."""
