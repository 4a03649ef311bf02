"""Where text labels go on a 2-D plot so that they cover neither each other nor the points:
a greedy placement over a few leader-line offsets (computation only; :mod:`studies.scatter` draws).

Coordinates are pixels of the plot area, y downwards, as plotly's annotation offsets ``ax``/``ay``.
The plot's size is an estimate (the page decides it), so the clearance is generous.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

PLOT_AREA = (380.0, 290.0)
"""Width and height in pixels of the plotting area of a study-page figure (about; it is responsive)."""
CHAR_WIDTH = 6.6
LINE_HEIGHT = 16.0
POINT_RADIUS = 7.0
RADII = (34.0, 58.0, 86.0, 118.0)
ANGLES = tuple(math.radians(a) for a in (-135, -45, -90, 180, 0, 135, 45, 90, -160, -20, 160, 20))

Box = tuple[float, float, float, float]  # left, top, right, bottom


def to_pixels(x: float, y: float, x_range: Sequence[float], y_range: Sequence[float],
              area: tuple[float, float] = PLOT_AREA) -> tuple[float, float]:
    """Data coordinates to plot-area pixels for linear axes spanning ``x_range`` and ``y_range``."""
    (x0, x1), (y0, y1) = x_range, y_range
    return (x - x0) / ((x1 - x0) or 1.0) * area[0], (1.0 - (y - y0) / ((y1 - y0) or 1.0)) * area[1]


def label_box(centre: tuple[float, float], text: str) -> Box:
    half_width, half_height = (CHAR_WIDTH * len(text) + 8) / 2, LINE_HEIGHT / 2
    return centre[0] - half_width, centre[1] - half_height, centre[0] + half_width, centre[1] + half_height


def overlap(a: Box, b: Box) -> float:
    """The area two boxes share."""
    return max(0.0, min(a[2], b[2]) - max(a[0], b[0])) * max(0.0, min(a[3], b[3]) - max(a[1], b[1]))


def place(anchors: Sequence[tuple[float, float]], texts: Sequence[str], points: Sequence[tuple[float, float]] = (),
          blocked: Sequence[Box] = (), area: tuple[float, float] = PLOT_AREA) -> list[tuple[float, float]]:
    """An offset ``(ax, ay)`` from each anchor for its label: each label in turn takes the candidate
    offset that overlaps the labels placed before it, the points, the ``blocked`` boxes and the
    area's edges least, the shortest on a tie."""
    obstacles = [(x - POINT_RADIUS, y - POINT_RADIUS, x + POINT_RADIUS, y + POINT_RADIUS) for x, y in points]
    obstacles += list(blocked)
    placed: list[Box] = []
    offsets = []
    for (x, y), text in zip(anchors, texts):
        best = min(_candidates(), key=lambda offset: (_cost(label_box((x + offset[0], y + offset[1]), text),
                                                             placed, obstacles, area), math.hypot(*offset)))
        offsets.append(best)
        placed.append(label_box((x + best[0], y + best[1]), text))
    return offsets


def _candidates() -> list[tuple[float, float]]:
    return [(round(r * math.cos(a), 1), round(r * math.sin(a), 1)) for r in RADII for a in ANGLES]


def _cost(box: Box, placed: list[Box], obstacles: list[Box], area: tuple[float, float]) -> float:
    outside = (box[2] - box[0]) * (box[3] - box[1]) - overlap(box, (0.0, 0.0, area[0], area[1]))
    return 10 * sum(overlap(box, other) for other in placed) + sum(overlap(box, o) for o in obstacles) + 5 * outside
