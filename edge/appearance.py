"""Appearance cues that need no extra weights: colour histograms of a person's clothing.

A tracker that loses a person behind others has only position and motion to go on; the colour of a
coat tells two people walking side by side apart. The histogram covers the torso and thighs (the
box's middle, away from the background at its edges and from the floor), in hue and saturation
only, so a person walking from shade into light keeps the same signature.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

HUE_BINS, SAT_BINS = 12, 4
FEATURE_SIZE = HUE_BINS * SAT_BINS + 1  # +1: the share of near-grey pixels, whose hue means nothing
_MIN_SATURATION = 40  # of 255: below this a pixel counts as grey (black, white and grey clothes)
_PATCH = (12, 24)  # (w, h) the region is resized to: enough pixels for a histogram, cheap
# Below this box height the clothing region (about 16x40 source pixels at 80) is mostly blur and
# compression noise: such a look is "unknown", never evidence. With counting.min_hysteresis_px (a
# 2 px floor under jitter) it is one of the two pixel constants of tracking and counting, on
# purpose: both count the camera's pixels, not the scene's. Replayed on PETS's detections (people
# 48-55 px), histograms down to 40 px split zone visits: 28-30 against 23 true visits, 24-25
# without them (every frame, every 2nd and every 3rd).
MIN_BOX_HEIGHT_PX = 80


def clothing_region(xyxy: NDArray[np.float64]) -> NDArray[np.float64]:
    """The middle of each box: 25-75 % of its width, 15-65 % of its height."""
    x1, y1, x2, y2 = xyxy[:, 0], xyxy[:, 1], xyxy[:, 2], xyxy[:, 3]
    w, h = x2 - x1, y2 - y1
    return np.stack([x1 + 0.25 * w, y1 + 0.15 * h, x2 - 0.25 * w, y1 + 0.65 * h], axis=1)


def colour_histograms(image: NDArray[np.uint8], xyxy: NDArray[np.float64]) -> NDArray[np.float32]:
    """``(N, FEATURE_SIZE)`` L1-normalised hue/saturation histograms; all-zero rows (unknown) for
    boxes too small to tell (MIN_BOX_HEIGHT_PX) or with no pixels inside the image."""
    import cv2

    out = np.zeros((len(xyxy), FEATURE_SIZE), np.float32)
    if len(xyxy) == 0:
        return out
    height, width = image.shape[:2]
    regions = np.round(clothing_region(xyxy)).astype(int)
    regions[:, [0, 2]] = np.clip(regions[:, [0, 2]], 0, width)
    regions[:, [1, 3]] = np.clip(regions[:, [1, 3]], 0, height)
    tall_enough = (xyxy[:, 3] - xyxy[:, 1]) >= MIN_BOX_HEIGHT_PX
    for row, (x1, y1, x2, y2) in enumerate(regions):
        if not tall_enough[row] or x2 - x1 < 2 or y2 - y1 < 2:
            continue
        patch = cv2.resize(image[y1:y2, x1:x2], _PATCH, interpolation=cv2.INTER_AREA)
        hsv = cv2.cvtColor(patch, cv2.COLOR_BGR2HSV).reshape(-1, 3)
        grey = hsv[:, 1] < _MIN_SATURATION
        hue = hsv[~grey, 0].astype(np.int32) * HUE_BINS // 180
        sat = (hsv[~grey, 1].astype(np.int32) - _MIN_SATURATION) * SAT_BINS // (256 - _MIN_SATURATION)
        counts = np.bincount(hue * SAT_BINS + sat, minlength=HUE_BINS * SAT_BINS)
        out[row, :-1] = counts
        out[row, -1] = np.count_nonzero(grey)
        out[row] /= len(hsv)
    return out


def appearance_distance(a: NDArray[np.float32], b: NDArray[np.float32]) -> float:
    """Hellinger distance between two histograms, 0 (same) .. 1 (disjoint); 0 when either is
    unknown (all zeros), so a missing cue never vetoes a match."""
    if not a.any() or not b.any():
        return 0.0
    overlap = float(np.sum(np.sqrt(a * b)))
    return float(np.sqrt(max(0.0, 1.0 - overlap)))


def unoccluded(xyxy: NDArray[np.float64], max_overlap: float = 0.1) -> NDArray[np.bool_]:
    """Boxes that overlap no other box by more than ``max_overlap`` of their own area: only these
    update a track's appearance (an occluded box shows somebody else's coat)."""
    n = len(xyxy)
    if n < 2:
        return np.ones(n, bool)
    x1 = np.maximum(xyxy[:, None, 0], xyxy[None, :, 0])
    y1 = np.maximum(xyxy[:, None, 1], xyxy[None, :, 1])
    x2 = np.minimum(xyxy[:, None, 2], xyxy[None, :, 2])
    y2 = np.minimum(xyxy[:, None, 3], xyxy[None, :, 3])
    inter = np.clip(x2 - x1, 0, None) * np.clip(y2 - y1, 0, None)
    np.fill_diagonal(inter, 0)
    area = np.maximum((xyxy[:, 2] - xyxy[:, 0]) * (xyxy[:, 3] - xyxy[:, 1]), 1e-9)
    return np.asarray(inter.max(axis=1) / area <= max_overlap)
