"""Faulty recordings made from the dev clips, in memory, for the scene-health tests and the bench.

A clip is decoded once at about ``MAX_FPS`` (every n-th frame, as ``--fps`` samples a recording)
and played back and forth (no cut, no repeated frame) for as long as a recording needs. Faults are
applied to the frames of a time window, each relative to the picture's size and brightness:

- ``dark``: the lights go out (8 % of the light left, plus sensor noise);
- ``covered``: something close to the lens hides 70 % of the view (a smooth, out-of-focus blob);
- ``moved``: the camera is knocked: rotated 3 degrees and shifted 4 % of the width;
- ``frozen``: the same frame over and over;
- ``blurred``: out of focus (Gaussian blur, sigma 0.5 % of the width).

Brightness changes that are not faults: ``lights_on`` (the first part dimmed to 45 %, then full
light) and ``daylight`` (gain drifting 0.5 -> 1.1 -> 0.6 over the recording).
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import numpy as np

MAX_FPS = 10.0
# Clips above this many pixels are decoded at a lower rate, to bound the memory they take.
LARGE_PIXELS = 1_000_000
LARGE_FPS = 6.0
FAULTS = ("dark", "covered", "moved", "frozen", "blurred")

CLIPS = {
    "pets09_s2l1": "pets09_s2l1/PETS09-S2L1_480x360.mp4",
    "tud_campus": "tud_campus/TUD-Campus.mp4",
    "venice2": "venice2/Venice-2.mp4",
    "intel_one_by_one": "intel_one_by_one/one-by-one-person-detection.mp4",
}


@dataclass(frozen=True)
class Clip:
    frames: tuple[np.ndarray, ...]
    fps: float  # of the decoded frames

    @property
    def duration_s(self) -> float:
        return len(self.frames) / self.fps


@cache
def load_clip(video_dir: Path, name: str) -> Clip:
    import cv2

    cap = cv2.VideoCapture(str(video_dir / CLIPS[name]))
    native = cap.get(cv2.CAP_PROP_FPS) or MAX_FPS
    pixels = cap.get(cv2.CAP_PROP_FRAME_WIDTH) * cap.get(cv2.CAP_PROP_FRAME_HEIGHT)
    step = max(1, math.ceil(native / (LARGE_FPS if pixels > LARGE_PIXELS else MAX_FPS)))
    frames, index = [], 0
    while True:
        ok, image = cap.read()
        if not ok:
            break
        if index % step == 0:
            image.flags.writeable = False
            frames.append(image)
        index += 1
    cap.release()
    assert frames, f"{name}: no frames decoded"
    return Clip(tuple(frames), native / step)


def run_whole_clip(video_dir: Path, name: str) -> tuple[list[object], int, float]:
    """A fresh monitor over the unmodified clip, whole, at its own frame rate (as ``footfall count``
    reads it): (issue changes, frames, fps)."""
    import cv2

    from footfall.edge.scene import SceneMonitor

    capture = cv2.VideoCapture(str(video_dir / CLIPS[name]))
    fps = capture.get(cv2.CAP_PROP_FPS)
    monitor, changes, n = SceneMonitor(), [], 0
    while True:
        ok, image = capture.read()
        if not ok:
            break
        changes += monitor.update(image, n / fps)
        n += 1
    capture.release()
    return changes, n, fps


def back_and_forth(clip: Clip, duration_s: float) -> Iterator[tuple[float, np.ndarray]]:
    """(media time, frame) for ``duration_s``: the clip forward, backward, forward ..."""
    n = len(clip.frames)
    period = max(1, 2 * n - 2)
    for k in range(round(duration_s * clip.fps)):
        i = k % period
        yield k / clip.fps, clip.frames[i if i < n else period - i]


def inject(fault: str, image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """``image`` with ``fault`` applied (``frozen`` is a matter of which frame, see ``recording``)."""
    import cv2

    h, w = image.shape[:2]
    if fault == "dark":
        noise = _noise(image.shape)[int(rng.integers(4))]
        return np.clip(image * 0.08 + noise, 0, 255).astype(np.uint8)
    if fault == "blurred":
        return cv2.GaussianBlur(image, (0, 0), 0.005 * w)
    if fault == "moved":
        matrix = cv2.getRotationMatrix2D((w / 2, h / 2), 3.0, 1.0)
        matrix[0, 2] += 0.04 * w
        return cv2.warpAffine(image, matrix, (w, h), borderMode=cv2.BORDER_REFLECT)
    if fault == "covered":
        return _covered(image)
    raise ValueError(fault)


@cache
def _noise(shape: tuple[int, ...]) -> np.ndarray:
    """Four frames of sensor noise (sigma 1.5 grey levels), cycled: drawing it per frame costs more
    than the monitor it feeds."""
    return np.random.default_rng(1).normal(0, 1.5, (4, *shape)).astype(np.float32)


@cache
def _blob(h: int, w: int) -> np.ndarray:
    """Weight 0..1 of a smooth blob over ~70 % of an h x w view (a hand or a sheet near the lens)."""
    import cv2

    mask = np.zeros((h, w), np.float32)
    cv2.ellipse(mask, (int(w * 0.4), int(h * 0.62)), (int(w * 0.5), int(h * 0.55)), 0, 0, 360, 1.0, -1)
    return cv2.GaussianBlur(mask, (0, 0), 0.03 * w)[..., None]


def _covered(image: np.ndarray) -> np.ndarray:
    h, w = image.shape[:2]
    weight = _blob(h, w)
    # skin-like, lit from one side: a smooth gradient, no texture
    shade = np.linspace(0.7, 1.0, w, dtype=np.float32)[None, :, None]
    colour = np.array([120, 150, 190], np.float32)[None, None, :] * shade
    return (image * (1 - weight) + colour * weight).astype(np.uint8)


def gain(kind: str, t: float, duration_s: float) -> float:
    """Brightness factor of a lighting change that is not a fault."""
    if kind == "lights_on":
        return 0.45 if t < duration_s / 2 else 1.0
    if kind == "daylight":
        x = t / duration_s
        return 0.5 + 0.6 * x / 0.6 if x < 0.6 else 1.1 - 0.5 * (x - 0.6) / 0.4
    raise ValueError(kind)


def recording(
    clip: Clip,
    duration_s: float,
    fault: str | None = None,
    window: tuple[float, float] = (0, 0),
    *,
    light: str | None = None,
    seed: int = 0,
) -> Iterator[tuple[float, np.ndarray]]:
    """The clip played for ``duration_s`` with ``fault`` during ``window`` (media seconds) and/or a
    lighting change over the whole recording."""
    rng = np.random.default_rng(seed)
    still: np.ndarray | None = None
    for t, image in back_and_forth(clip, duration_s):
        if light is not None:
            image = np.clip(image * gain(light, t, duration_s), 0, 255).astype(np.uint8)
        if fault is not None and window[0] <= t < window[1]:
            if fault == "frozen":
                still = image if still is None else still
                image = still
            else:
                image = inject(fault, image, rng)
        yield t, image
