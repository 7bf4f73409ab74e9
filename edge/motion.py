"""A cheap motion gate: frame differencing on a small grey thumbnail (well under a millisecond)."""

from __future__ import annotations

import numpy as np


class MotionGate:
    """``should_detect(image, tracking)`` is False only while nothing moves and nobody is tracked.

    Inference still runs at least every ``max_skip_s`` so a person who walked in between two
    compared frames, or a changed scene (lights), is never missed for long.
    """

    def __init__(
        self,
        *,
        enabled: bool = True,
        width: int = 160,
        pixel_threshold: int = 25,
        changed_fraction: float = 0.002,
        max_skip_s: float = 2.0,
    ) -> None:
        self.enabled = enabled
        self.width = width
        self.pixel_threshold = pixel_threshold
        self.changed_fraction = changed_fraction
        self.max_skip_s = max_skip_s
        self._reference: np.ndarray | None = None
        self._last_detect_t = -np.inf
        self.skipped = 0

    def _thumbnail(self, image: np.ndarray) -> np.ndarray:
        import cv2

        height = max(1, round(image.shape[0] * self.width / image.shape[1]))
        grey = cv2.cvtColor(
            cv2.resize(image, (self.width, height), interpolation=cv2.INTER_AREA), cv2.COLOR_BGR2GRAY
        )
        return cv2.GaussianBlur(grey, (5, 5), 0)

    def should_detect(self, image: np.ndarray, t: float, tracking: bool) -> bool:
        if not self.enabled:
            return True
        thumb = self._thumbnail(image)
        # Compare with the last frame that was analysed, so slow movement accumulates until seen.
        due = tracking or self._reference is None or t - self._last_detect_t >= self.max_skip_s
        if not due:
            assert self._reference is not None
            changed = np.count_nonzero(
                np.abs(thumb.astype(np.int16) - self._reference) > self.pixel_threshold
            )
            due = bool(changed > self.changed_fraction * thumb.size)
        if due:
            self._reference, self._last_detect_t = thumb, t
            return True
        self.skipped += 1
        return False
