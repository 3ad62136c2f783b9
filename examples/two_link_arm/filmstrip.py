"""Evenly spaced frames of an MP4 side by side in one PNG (the still of the arm's video in docs/own-robot.md).

    python examples/two_link_arm/filmstrip.py VIDEO.mp4 OUT.png [COUNT [LAST]]

COUNT frames (default 6) from the first to frame LAST (default: the last one).
"""

from __future__ import annotations

import sys

import imageio.v2 as imageio
import numpy as np


def filmstrip(video: str, out: str, count: int = 6, last: int | None = None) -> None:
    frames = [frame for frame in imageio.get_reader(video, format="FFMPEG")]  # its len() is inf: no list()
    end = len(frames) - 1 if last is None else min(last, len(frames) - 1)
    picks = np.linspace(0, end, count).round().astype(int)
    imageio.imwrite(out, np.concatenate([frames[i] for i in picks], axis=1))


if __name__ == "__main__":
    filmstrip(sys.argv[1], sys.argv[2], *(int(a) for a in sys.argv[3:5]))
