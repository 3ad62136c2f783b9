"""Progress display: a tqdm bar on a terminal, plain periodic lines otherwise (or with --quiet), or nothing."""

from __future__ import annotations

import sys
from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True)
class ProgressEvent:
    """A seed's progress after some episodes: what the display shows."""

    seed: int
    episodes: int
    env_steps: int
    window_mean_return: float
    steps_per_second: float
    done: int
    """Progress along the budget, in the budget's unit (episodes or env steps)."""
    total: int
    final: bool = False


class Progress(Protocol):
    def update(self, event: ProgressEvent) -> None: ...

    def close(self) -> None: ...


def format_line(e: ProgressEvent) -> str:
    return (
        f"seed {e.seed} | episode {e.episodes} | env steps {e.env_steps} | "
        f"mean return (window) {e.window_mean_return:.1f} | {e.steps_per_second:,.0f} steps/s"
    )


class SilentProgress:
    """Shows nothing: for callers that report in their own way (a benchmark cell, a measurement)."""

    def update(self, event: ProgressEvent) -> None:
        pass

    def close(self) -> None:
        pass


class LineProgress:
    """Prints a line every ``every`` episodes (the tutorial's log), at the first episode and a
    final line at the last, per seed."""

    def __init__(self, every: int, stream=None) -> None:  # type: ignore[no-untyped-def]
        self.every = every
        self.stream = stream or sys.stdout
        self._last: dict[int, int] = {}

    def update(self, event: ProgressEvent) -> None:
        last = self._last.get(event.seed, 0)
        if event.final and last == event.episodes and last > 0:
            return  # the periodic line already showed this episode
        crossed = event.episodes // self.every > last // self.every
        if event.final or crossed or (last == 0 and event.episodes >= 1):
            print(format_line(event), file=self.stream, flush=True)
            self._last[event.seed] = event.episodes

    def close(self) -> None:
        pass


class TqdmProgress:
    """One bar per seed (``position`` = seed index), showing the window mean and steps/s."""

    def __init__(self, unit: str) -> None:
        self.unit = unit
        self._bars: dict[int, object] = {}

    def update(self, event: ProgressEvent) -> None:
        from tqdm import tqdm

        bar = self._bars.get(event.seed)
        if bar is None:
            bar = tqdm(
                total=event.total,
                unit=self.unit,
                desc=f"seed {event.seed}",
                position=len(self._bars),
                dynamic_ncols=True,
                leave=True,
            )
            self._bars[event.seed] = bar
        bar.n = min(event.done, event.total)  # type: ignore[attr-defined]
        postfix = f"return {event.window_mean_return:.1f}"
        if self.unit != "steps":  # tqdm's own rate is in the bar's unit; show env steps/s too
            postfix += f", {event.steps_per_second:,.0f} steps/s"
        bar.set_postfix_str(postfix, refresh=False)  # type: ignore[attr-defined]
        bar.refresh()  # type: ignore[attr-defined]
        if event.final:
            bar.close()  # type: ignore[attr-defined]

    def close(self) -> None:
        for bar in self._bars.values():
            bar.close()  # type: ignore[attr-defined]


def make_progress(quiet: bool, unit: str, every: int) -> Progress:
    """tqdm when stdout is a terminal and not ``quiet``; plain lines otherwise."""
    if not quiet and sys.stdout.isatty():
        return TqdmProgress(unit)
    return LineProgress(every)
