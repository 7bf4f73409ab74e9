"""Pure, vectorised plane geometry for counting lines and zones (numpy only, no video libraries).

Conventions: points are ``(N, 2)`` float arrays of pixel coordinates; a set of lines is given by
``starts`` and ``ends`` of shape ``(L, 2)``. Signed distances are oriented so that the configured
``inside`` point of each line has a positive distance.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from numpy.typing import ArrayLike, NDArray

FloatArray = NDArray[np.float64]


def as_points(points: ArrayLike) -> FloatArray:
    """Any ``(x, y)`` or sequence of them as a float ``(N, 2)`` array."""
    array = np.asarray(points, dtype=np.float64)
    return array.reshape(-1, 2)


def line_orientation(starts: ArrayLike, ends: ArrayLike, insides: ArrayLike) -> FloatArray:
    """``+1`` or ``-1`` per line: the factor that makes the ``inside`` point's distance positive."""
    a, b, inside = as_points(starts), as_points(ends), as_points(insides)
    cross = _cross(b - a, inside - a)
    if np.any(cross == 0):
        raise ValueError("an inside point lies on its line")
    return np.sign(cross)


def signed_distances(
    points: ArrayLike, starts: ArrayLike, ends: ArrayLike, orientation: ArrayLike
) -> FloatArray:
    """``(N, L)`` distances of each point to each (infinite) line, positive on the inside."""
    p, a, b = as_points(points), as_points(starts), as_points(ends)
    direction = b - a  # (L, 2)
    length = np.hypot(direction[:, 0], direction[:, 1])  # (L,)
    rel = p[:, None, :] - a[None, :, :]  # (N, L, 2)
    cross = direction[None, :, 0] * rel[..., 1] - direction[None, :, 1] * rel[..., 0]
    return cross / length[None, :] * np.asarray(orientation, dtype=np.float64)[None, :]


def crossing_parameter(p0: ArrayLike, p1: ArrayLike, starts: ArrayLike, ends: ArrayLike) -> FloatArray:
    """Where the path ``p0 -> p1`` meets each line, as a fraction along the segment ``start -> end``.

    Returns ``(N, L)``; a value in ``[0, 1]`` means the path passes through the segment itself,
    anything else beside it. ``nan`` where the path is parallel to the line.
    """
    q0, q1, a, b = as_points(p0), as_points(p1), as_points(starts), as_points(ends)
    path = (q1 - q0)[:, None, :]  # (N, 1, 2)
    seg = (b - a)[None, :, :]  # (1, L, 2)
    offset = q0[:, None, :] - a[None, :, :]  # (N, L, 2)
    denom = _cross(seg, path)
    with np.errstate(divide="ignore", invalid="ignore"):
        u = _cross(offset, path) / denom
    return np.where(denom == 0, np.nan, u)


def points_in_polygon(points: ArrayLike, polygon: Sequence[Sequence[float]] | ArrayLike) -> NDArray[np.bool_]:
    """Even-odd rule, vectorised over points: ``(N,)`` booleans (points on an edge may go either way)."""
    p = as_points(points)
    poly = as_points(polygon)
    x, y = p[:, 0:1], p[:, 1:2]  # (N, 1)
    x0, y0 = poly[:, 0], poly[:, 1]  # (M,)
    x1, y1 = np.roll(x0, -1), np.roll(y0, -1)
    straddles = (y0 > y) != (y1 > y)  # (N, M)
    with np.errstate(divide="ignore", invalid="ignore"):
        x_at_y = x0 + (y - y0) * (x1 - x0) / (y1 - y0)
    hits = straddles & (x < x_at_y)
    return np.asarray((np.count_nonzero(hits, axis=1) % 2) == 1)


def _cross(u: FloatArray, v: FloatArray) -> FloatArray:
    return u[..., 0] * v[..., 1] - u[..., 1] * v[..., 0]


def _intersections(a: NDArray[np.floating], b: NDArray[np.floating]) -> FloatArray:
    lt = np.maximum(a[:, None, :2], b[None, :, :2])
    rb = np.minimum(a[:, None, 2:], b[None, :, 2:])
    return np.asarray(np.prod(np.clip(rb - lt, 0, None), axis=2))


def _areas(boxes: NDArray[np.floating]) -> FloatArray:
    return np.asarray(np.prod(boxes[:, 2:] - boxes[:, :2], axis=1))


def iou_matrix(a: NDArray[np.floating], b: NDArray[np.floating]) -> FloatArray:
    """Pairwise IoU of ``(N, 4)`` and ``(M, 4)`` xyxy boxes."""
    if len(a) == 0 or len(b) == 0:
        return np.zeros((len(a), len(b)))
    inter = _intersections(a, b)
    return np.asarray(inter / (_areas(a)[:, None] + _areas(b)[None, :] - inter + 1e-7))


def share_inside(a: NDArray[np.floating], b: NDArray[np.floating]) -> FloatArray:
    """Pairwise share of each ``(N, 4)`` xyxy box of ``a`` that lies inside each box of ``b``."""
    if len(a) == 0 or len(b) == 0:
        return np.zeros((len(a), len(b)))
    return np.asarray(_intersections(a, b) / (_areas(a)[:, None] + 1e-7))
