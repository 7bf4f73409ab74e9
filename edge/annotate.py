"""Drawing with OpenCV only (PIL-based Ultralytics annotators would try to download a font)."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from footfall.contracts.config import CameraConfig, LineConfig
from footfall.edge.tracking import Tracks

LINE_COLOUR = (0, 215, 255)  # BGR
ZONE_COLOUR = (255, 160, 0)
TRACK_COLOUR = (80, 220, 80)
TEXT_COLOUR = (255, 255, 255)


def _pt(p: tuple[float, float] | np.ndarray) -> tuple[int, int]:
    return round(float(p[0])), round(float(p[1]))


def inward_arrow(line: LineConfig, length: float = 30.0) -> tuple[tuple[int, int], tuple[int, int]]:
    """From the line's midpoint, perpendicular to it, toward its ``inside`` point."""
    a, b, inside = (np.asarray(v, dtype=float) for v in (line.start, line.end, line.inside))
    mid = (a + b) / 2
    normal = np.array([-(b - a)[1], (b - a)[0]])
    normal /= np.linalg.norm(normal)
    if np.dot(inside - mid, normal) < 0:
        normal = -normal
    return _pt(mid), _pt(mid + normal * length)


def draw_layout(
    image: np.ndarray,
    config: CameraConfig,
    counts: Mapping[tuple[str, str], int] | None = None,
    occupancy: Mapping[str | None, int] | None = None,
) -> None:
    """Lines with an arrow toward "in", zones; with ``counts``/``occupancy``, the live counters."""
    import cv2

    font = cv2.FONT_HERSHEY_SIMPLEX
    for zone in config.zones:
        poly = np.asarray(zone.polygon, dtype=np.int32)
        cv2.polylines(image, [poly], True, ZONE_COLOUR, 2)
        label = zone.name if occupancy is None else f"{zone.name}: {occupancy.get(zone.name, 0)} now"
        cv2.putText(image, label, _pt(poly[0]), font, 0.5, ZONE_COLOUR, 1, cv2.LINE_AA)
    if occupancy is not None:
        text = f"in view: {occupancy.get(None, 0)}"
        cv2.putText(image, text, (8, image.shape[0] - 10), font, 0.6, TEXT_COLOUR, 2, cv2.LINE_AA)
    for line in config.lines:
        cv2.line(image, _pt(line.start), _pt(line.end), LINE_COLOUR, 2, cv2.LINE_AA)
        tail, head = inward_arrow(line)
        cv2.arrowedLine(image, tail, head, LINE_COLOUR, 2, cv2.LINE_AA, tipLength=0.35)
        label = line.name
        if counts is not None:
            label += f" in {counts.get((line.name, 'in'), 0)} out {counts.get((line.name, 'out'), 0)}"
        x, y = _pt(line.start)
        cv2.putText(
            image, label, (x + 4, max(12, y - 6)), cv2.FONT_HERSHEY_SIMPLEX, 0.45, LINE_COLOUR, 1, cv2.LINE_AA
        )


def draw_tracks(image: np.ndarray, tracks: Tracks) -> None:
    import cv2

    for tid, box, ground in zip(tracks.ids.tolist(), tracks.xyxy, tracks.ground, strict=True):
        x1, y1, x2, y2 = (round(float(v)) for v in box)
        cv2.rectangle(image, (x1, y1), (x2, y2), TRACK_COLOUR, 1)
        cv2.circle(image, _pt(ground), 3, TRACK_COLOUR, -1)
        cv2.putText(image, str(tid), (x1, max(10, y1 - 3)), cv2.FONT_HERSHEY_SIMPLEX, 0.4, TRACK_COLOUR, 1)


def draw_rulers(image: np.ndarray, step: int = 50) -> None:
    """Pixel rulers along the top and left edges, for reading coordinates off a preview."""
    import cv2

    height, width = image.shape[:2]
    for x in range(0, width, step):
        cv2.line(image, (x, 0), (x, 8 if x % (2 * step) else 14), TEXT_COLOUR, 1)
        if x % (2 * step) == 0:
            cv2.putText(image, str(x), (x + 2, 24), cv2.FONT_HERSHEY_SIMPLEX, 0.35, TEXT_COLOUR, 1)
    for y in range(0, height, step):
        cv2.line(image, (0, y), (8 if y % (2 * step) else 14, y), TEXT_COLOUR, 1)
        if y % (2 * step) == 0 and y:
            cv2.putText(image, str(y), (16, y + 4), cv2.FONT_HERSHEY_SIMPLEX, 0.35, TEXT_COLOUR, 1)
