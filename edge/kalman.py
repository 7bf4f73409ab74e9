"""A constant-velocity Kalman filter on boxes as (centre x, centre y, aspect w/h, height), the
state SORT and ByteTrack use, vectorised over tracks.

Noise scales with the box height, so a near (large) person may move more pixels than a far one:
no parameter is in pixels.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

Array = NDArray[np.float64]

# Process and measurement noise per unit of box height (ByteTrack's published values).
POSITION_NOISE = 1.0 / 20
VELOCITY_NOISE = 1.0 / 160
ASPECT_NOISE, ASPECT_VELOCITY_NOISE, ASPECT_MEASUREMENT_NOISE = 1e-2, 1e-5, 1e-1

_MOTION = np.eye(8)
_MOTION[:4, 4:] = np.eye(4)  # one step: position += velocity
_OBSERVE = np.eye(4, 8)


def _height_scaled(heights: Array, per_height: tuple[float, float, float, float]) -> Array:
    """(N, 4) standard deviations: ``per_height`` times the height, except the aspect entry (2),
    which is absolute."""
    std = np.outer(heights, per_height)
    std[:, 2] = per_height[2]
    return std


def initiate(measurements: Array) -> tuple[Array, Array]:
    """State means ``(N, 8)`` and covariances ``(N, 8, 8)`` for new tracks at ``(N, 4)`` boxes."""
    n = len(measurements)
    mean = np.concatenate([measurements, np.zeros((n, 4))], axis=1)
    h = measurements[:, 3]
    pos = _height_scaled(h, (2 * POSITION_NOISE, 2 * POSITION_NOISE, ASPECT_NOISE, 2 * POSITION_NOISE))
    vel = _height_scaled(
        h, (10 * VELOCITY_NOISE, 10 * VELOCITY_NOISE, ASPECT_VELOCITY_NOISE, 10 * VELOCITY_NOISE)
    )
    std = np.concatenate([pos, vel], axis=1)
    return mean, _diagonal(std**2)


def predict(mean: Array, covariance: Array) -> tuple[Array, Array]:
    """One frame ahead for every track."""
    h = mean[:, 3]
    pos = _height_scaled(h, (POSITION_NOISE, POSITION_NOISE, ASPECT_NOISE, POSITION_NOISE))
    vel = _height_scaled(h, (VELOCITY_NOISE, VELOCITY_NOISE, ASPECT_VELOCITY_NOISE, VELOCITY_NOISE))
    noise = _diagonal(np.concatenate([pos, vel], axis=1) ** 2)
    mean = mean @ _MOTION.T
    covariance = _MOTION @ covariance @ _MOTION.T + noise
    return mean, covariance


def update(mean: Array, covariance: Array, measurements: Array) -> tuple[Array, Array]:
    """Correct every track with its measured box ``(N, 4)``."""
    h = mean[:, 3]
    noise = _diagonal(
        _height_scaled(h, (POSITION_NOISE, POSITION_NOISE, ASPECT_MEASUREMENT_NOISE, POSITION_NOISE)) ** 2
    )
    projected_mean = mean[:, :4]
    projected_cov = covariance[:, :4, :4] + noise
    cross = covariance[:, :, :4]  # covariance @ H.T
    # gain = cross @ inv(projected_cov), solved rather than inverted (symmetric positive definite)
    gain = np.linalg.solve(projected_cov, np.swapaxes(cross, 1, 2)).swapaxes(1, 2)
    innovation = measurements - projected_mean
    mean = mean + np.einsum("nij,nj->ni", gain, innovation)
    covariance = covariance - gain @ projected_cov @ np.swapaxes(gain, 1, 2)
    return mean, covariance


def _diagonal(values: Array) -> Array:
    out = np.zeros((*values.shape, values.shape[-1]))
    idx = np.arange(values.shape[-1])
    out[:, idx, idx] = values
    return out


def xyxy_to_xyah(xyxy: Array) -> Array:
    w = xyxy[:, 2] - xyxy[:, 0]
    h = xyxy[:, 3] - xyxy[:, 1]
    return np.stack([xyxy[:, 0] + w / 2, xyxy[:, 1] + h / 2, w / np.maximum(h, 1e-9), h], axis=1)


def xyah_to_xyxy(xyah: Array) -> Array:
    h = xyah[:, 3]
    w = xyah[:, 2] * h
    return np.stack([xyah[:, 0] - w / 2, xyah[:, 1] - h / 2, xyah[:, 0] + w / 2, xyah[:, 1] + h / 2], axis=1)
