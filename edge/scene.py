"""Scene health: does the camera still see its own scene? Frames in, issue transitions out; no I/O.

Each camera gets a ``SceneMonitor``. It compares what the camera sees with a *reference* of its own
background, learned in the first seconds and refreshed slowly while the picture is healthy, never
with the people in front of it:

- "what it sees" is the per-pixel median of the last few seconds' thumbnails, so people walking by
  (a crowd included) vanish from it as they vanish from the reference;
- every measure is taken on a grey thumbnail of fixed width, so each threshold is a fraction of the
  picture, whatever the camera's resolution; texture is divided by the picture's mean brightness, so
  lights switched on and daylight changes do not move it;
- a fault must hold for ``hold_s`` before it is ``started``, and be gone as long before ``cleared``.

Issues: ``dark`` (even the brightest part of the view is dim), ``covered`` (most of the textured
background lost its texture), ``blurred`` (fine detail gone while coarse structure stays), ``moved``
(the background matches the reference only after a shift or rotation), ``frozen`` (identical frames).
A picture too dark to judge (a black one included) is only ``dark``; a covered one is not also
judged blurred or moved.
"""

from __future__ import annotations

import zlib
from collections import deque
from dataclasses import dataclass, field
from typing import Literal, get_args

import numpy as np

from footfall.contracts.events import CameraIssueKind

# Thumbnail width: 320 px keeps a person at the back of a 1080p view a few pixels tall (enough for
# the background's structure) and costs one area-averaged resize per evaluation.
THUMB_WIDTH = 320
# Coarse texture is measured at a quarter of that: structure that survives defocus.
COARSE_WIDTH = 80
# The view is judged in cells: 8 columns and as many rows as keep them roughly square.
GRID_COLUMNS = 8
# Evaluations per second of media time: faults are judged over seconds, not frames.
SAMPLE_EVERY_S = 0.5
# The background is the median of this many samples (3.5 s): whoever stays in one place for less
# than half of that vanishes from it; it follows a real change of the view within ~2 s.
BACKGROUND_SAMPLES = 7
# A score at or above this starts an issue; it clears below CLEAR_SCORE (hysteresis: no flapping).
START_SCORE = 0.5
CLEAR_SCORE = 0.4
# dark: the 95th percentile of the grey levels (0-255) below 40, i.e. even the brightest 5 % of the
# view under 16 % of full scale: too little light to see people (score 0.5 there, 1 when black).
DARK_P95 = 40.0
# covered: texture is the coarse gradient (Sobel on the 80 px image, averaged over 5x5 px) divided by
# the mean brightness; a point "has texture" from 0.15 (Sobel answers 4x a step, so a ~4 % step in
# brightness) and "lost" it below a quarter of the reference's. Covered = at least 40 % of the
# reference's textured area lost it (score = that share / 0.8, so 0.5 at 40 %). A smooth cover of
# 73 % of the view scored 0.6-0.7 of the textured area on the dev clips (its soft edge keeps some),
# the clean clips at most 0.01.
TEXTURED = 0.15
LOST_RATIO = 0.25
COVERED_SHARE = 0.4
# Below this share of textured area (a bare scene) the view cannot be judged covered, blurred or moved.
MIN_TEXTURED_SHARE = 0.2
# blurred: the fine-to-coarse detail ratio of the textured cells lost half of the reference's
# (median over cells; score = the lost fraction, 0.5 at the threshold). A blur of sigma 0.5 % of the
# width lost 0.71-0.84 on the dev clips; the clean clips at most 0.23 (lights switched on).
BLUR_LOST = 0.5
# moved: the background matches the reference after a transform that moves some corner of the
# picture by 2 % of its width or more (score 0.5 there, 1 at 4 %).
MOVED_FRACTION = 0.02
MOVE_EVERY_S = 1.0
# ORB on the thumbnail; a transform is trusted with at least this many RANSAC inliers.
MIN_INLIERS = 12
# frozen: the share of consecutive frames that are bit-identical over the last 2 s: 1 for a frozen
# source, at most 0.27 for the Intel clip's empty room (a live sensor's noise, compressed); 0.5 lets
# a key frame now and then (an intra-coded re-encode of the still picture) pass.
FROZEN_WINDOW_S = 2.0
# Reference refresh while healthy: exponential blend with this time constant, remeasured every minute.
REFRESH_S = 900.0
REMEASURE_EVERY_S = 60.0

IssueState = Literal["started", "cleared"]


@dataclass(frozen=True, slots=True)
class IssueChange:
    """One transition of one camera issue, decided on the frame at media time ``t``."""

    issue: CameraIssueKind
    state: IssueState
    score: float  # 0..1; START_SCORE and above is a fault
    t: float


@dataclass(slots=True)
class _Issue:
    """The hysteresis of one issue: its score must stay on the other side for ``hold_s`` to flip it."""

    name: CameraIssueKind
    active: bool = False
    since: float | None = None

    def judge(self, score: float | None, t: float, hold_s: float) -> IssueChange | None:
        if score is None:  # not judged (e.g. too dark to see focus): no evidence, a pending flip starts over
            self.since = None
            return None
        faulty = score >= (CLEAR_SCORE if self.active else START_SCORE)
        if faulty == self.active:
            self.since = None
            return None
        if self.since is None:
            self.since = t
        if t - self.since < hold_s:
            return None
        self.active, self.since = faulty, None
        return IssueChange(self.name, "started" if faulty else "cleared", round(float(score), 3), t)


@dataclass(frozen=True, slots=True)
class View:
    """The measures of one background thumbnail that the issues compare with the reference."""

    grey: np.ndarray  # uint8, THUMB_WIDTH wide
    texture: np.ndarray  # per point of the coarse image: gradient / mean brightness
    cell_texture: np.ndarray  # the same, averaged per cell
    detail: np.ndarray  # per cell: fine detail / coarse gradient (falls when out of focus)
    p95: float  # 95th percentile of the grey levels


def thumbnail(image: np.ndarray) -> np.ndarray:
    """A grey, area-averaged thumbnail THUMB_WIDTH wide (sensor noise averages out). A large picture
    is first halved to twice that width by interpolation: a third of the cost at 1080p."""
    import cv2

    h, w = image.shape[:2]
    height = max(2, round(h * THUMB_WIDTH / w))
    if w > 2 * THUMB_WIDTH:
        image = cv2.resize(image, (2 * THUMB_WIDTH, 2 * height), interpolation=cv2.INTER_LINEAR)
    small = cv2.resize(image, (THUMB_WIDTH, height), interpolation=cv2.INTER_AREA)
    return small if small.ndim == 2 else cv2.cvtColor(small, cv2.COLOR_BGR2GRAY)


def median(samples: list[np.ndarray]) -> np.ndarray:
    """Per-pixel median (the lower one of an even count) of a few uint8 images: an odd-even
    transposition sort by minimum / maximum, ten times faster than ``np.median`` for seven."""
    a = list(samples)
    for step in range(len(a)):
        for i in range(step % 2, len(a) - 1, 2):
            a[i], a[i + 1] = np.minimum(a[i], a[i + 1]), np.maximum(a[i], a[i + 1])
    return a[(len(a) - 1) // 2]


def fingerprint(image: np.ndarray) -> int:
    """CRC-32 of 32 rows spread over the picture: equal for identical frames, and ~0.1 ms at 1080p."""
    rows = np.linspace(0, image.shape[0] - 1, 32).astype(np.intp)
    return zlib.crc32(np.ascontiguousarray(image[rows]).tobytes())


def measure(grey: np.ndarray) -> View:
    import cv2

    h, w = grey.shape
    rows = max(1, round(GRID_COLUMNS * h / w))
    f = grey.astype(np.float32)
    coarse = cv2.resize(f, (COARSE_WIDTH, max(2, round(h * COARSE_WIDTH / w))), interpolation=cv2.INTER_AREA)
    gx, gy = cv2.Sobel(coarse, cv2.CV_32F, 1, 0), cv2.Sobel(coarse, cv2.CV_32F, 0, 1)
    gradient = np.sqrt(gx * gx + gy * gy)
    coarse_cells = _cells(gradient, rows)
    fine_cells = _cells(np.abs(cv2.Laplacian(f, cv2.CV_32F)), rows)
    brightness = float(f.mean()) + 8.0  # + 8: a black picture has no texture, whatever its noise
    texture = cv2.blur(gradient, (5, 5)) / brightness
    return View(
        grey=grey,
        texture=texture,
        cell_texture=coarse_cells / brightness,
        detail=fine_cells / (coarse_cells + 1e-3),
        p95=float(np.searchsorted(np.cumsum(np.bincount(grey.ravel(), minlength=256)), 0.95 * grey.size)),
    )


def _cells(values: np.ndarray, rows: int) -> np.ndarray:
    """Mean of ``values`` over a GRID_COLUMNS x ``rows`` grid (area averaging does exactly that)."""
    import cv2

    return cv2.resize(values, (GRID_COLUMNS, rows), interpolation=cv2.INTER_AREA).ravel()


def dark_score(view: View) -> float:
    return float(np.clip(1 - view.p95 * START_SCORE / DARK_P95, 0, 1))


def covered_score(view: View, ref: View) -> float:
    """The share of the reference's textured area that lost its texture, 0.5 at COVERED_SHARE."""
    textured = ref.texture >= TEXTURED
    lost = float(np.mean(view.texture[textured] < LOST_RATIO * ref.texture[textured]))
    return min(1.0, lost * START_SCORE / COVERED_SHARE)


def blurred_score(view: View, ref: View) -> float:
    """The fraction of its fine detail (relative to coarse structure) the view lost, 0.5 at BLUR_LOST."""
    both = (ref.cell_texture >= TEXTURED) & (view.cell_texture >= TEXTURED)
    kept = float(np.median(view.detail[both] / ref.detail[both])) if both.any() else 1.0
    return float(np.clip(1 - kept, 0, 1) * START_SCORE / BLUR_LOST)


Features = tuple[np.ndarray, np.ndarray]  # ORB key point positions (n, 2), descriptors (n, 32)


def features(grey: np.ndarray) -> Features | None:
    """ORB features of a thumbnail (3 pyramid levels: the view moves, it does not zoom)."""
    import cv2

    orb = cv2.ORB.create(nfeatures=300, nlevels=3, edgeThreshold=15, patchSize=15, fastThreshold=10)
    points, descriptors = orb.detectAndCompute(grey, None)
    if descriptors is None or len(points) < MIN_INLIERS:
        return None
    return np.array([p.pt for p in points], dtype=np.float32), descriptors


def corner_shift(reference: Features, current: Features, size: tuple[int, int]) -> float | None:
    """How far the view moved: the largest displacement of a picture corner (fraction of the width)
    under the rotation + shift + scale that maps the reference's features onto the current ones;
    ``None`` when too few features agree to say (a bare view, or one full of people)."""
    import cv2

    matches = cv2.BFMatcher(cv2.NORM_HAMMING, crossCheck=True).match(reference[1], current[1])
    if len(matches) < MIN_INLIERS:
        return None
    src = reference[0][[m.queryIdx for m in matches]]
    dst = current[0][[m.trainIdx for m in matches]]
    # RANSAC tolerance 2 px of a 320 px thumbnail: features of the static background agree to that.
    matrix, inliers = cv2.estimateAffinePartial2D(src, dst, method=cv2.RANSAC, ransacReprojThreshold=2.0)
    if matrix is None or int(inliers.sum()) < MIN_INLIERS:
        return None
    w, h = size
    corners = np.array([[0, 0], [w, 0], [0, h], [w, h]], dtype=np.float32)
    moved = corners @ matrix[:, :2].T + matrix[:, 2] - corners
    return float(np.max(np.hypot(moved[:, 0], moved[:, 1])) / w)


@dataclass
class SceneMonitor:
    """Per camera: ``update(image, t)`` on every pictured frame returns the issues that started or
    cleared on it; ``issues`` are those in force. ``hold_s``: how long a fault (or its absence) must
    last before it is reported; ``learn_s``: the reference is learned over the first seconds."""

    hold_s: float = 3.0
    learn_s: float = 5.0
    _issues: dict[CameraIssueKind, _Issue] = field(
        default_factory=lambda: {n: _Issue(n) for n in get_args(CameraIssueKind)}
    )
    _samples: deque[np.ndarray] = field(default_factory=lambda: deque(maxlen=BACKGROUND_SAMPLES))
    _same: deque[tuple[float, bool]] = field(default_factory=deque)  # (t, identical to the previous frame)
    _print: int | None = None
    _first_t: float | None = None
    _last_sample_t: float = -np.inf
    _last_move_t: float = -np.inf
    _moved_score: float | None = None
    _moved_t: float = -np.inf  # when the moved score was last estimated
    _reference: View | None = None
    _reference_f: np.ndarray | None = None  # the blended background the reference is measured from
    _ref_features: Features | None = None
    _measured_t: float = -np.inf

    @property
    def issues(self) -> tuple[str, ...]:
        """The issues in force, in the contract's order."""
        return tuple(name for name, issue in self._issues.items() if issue.active)

    def update(self, image: np.ndarray, t: float) -> list[IssueChange]:
        self._note_identity(image, t)
        if self._first_t is None:
            self._first_t = t
        if t - self._last_sample_t < SAMPLE_EVERY_S:
            return []
        self._last_sample_t = t
        self._samples.append(thumbnail(image))
        view = measure(median(list(self._samples)))
        if self._reference is None and t - self._first_t >= self.learn_s:
            self._set_reference(view.grey.astype(np.float32), t)
        scores = self.scores(view, t)
        changes = [self._issues[n].judge(s, t, self.hold_s) for n, s in scores.items()]
        if not self.issues and all(s is None or s < START_SCORE / 2 for s in scores.values()):
            self._refresh(view, t)
        return [c for c in changes if c is not None]

    def _note_identity(self, image: np.ndarray, t: float) -> None:
        current = fingerprint(image)
        if self._print is not None:
            self._same.append((t, current == self._print))
        self._print = current
        while self._same and self._same[0][0] < t - FROZEN_WINDOW_S:
            self._same.popleft()

    def scores(self, view: View, t: float) -> dict[CameraIssueKind, float | None]:
        """Each issue's score on this view (``None``: cannot be judged now)."""
        frozen = float(np.mean([same for _, same in self._same])) if self._same else None
        out: dict[CameraIssueKind, float | None] = dict.fromkeys(get_args(CameraIssueKind))
        out["dark"] = dark = dark_score(view)
        if dark >= START_SCORE:
            return out  # too dark to see texture; black frames are identical but say nothing more
        out["frozen"] = frozen
        ref = self._reference
        if ref is None or np.mean(ref.texture >= TEXTURED) < MIN_TEXTURED_SHARE:
            return out  # nothing to compare with yet, or no texture to see cover, focus or position on
        out["covered"] = covered = covered_score(view, ref)
        if covered >= START_SCORE:
            return out
        out["blurred"] = blurred = blurred_score(view, ref)
        if blurred < START_SCORE:
            out["moved"] = self._moved(view, t)
        return out

    def _moved(self, view: View, t: float) -> float | None:
        """The moved score, estimated once a second; a failed estimate (too few features agree, e.g.
        people hide the background) keeps the last one for up to ``hold_s``."""
        if t - self._last_move_t >= MOVE_EVERY_S:
            self._last_move_t = t
            current = features(view.grey)
            if self._ref_features is not None and current is not None:
                size = (view.grey.shape[1], view.grey.shape[0])
                shift = corner_shift(self._ref_features, current, size)
                if shift is not None:
                    self._moved_score, self._moved_t = min(1.0, shift * START_SCORE / MOVED_FRACTION), t
        return self._moved_score if t - self._moved_t <= self.hold_s else None

    def _set_reference(self, background: np.ndarray, t: float) -> None:
        self._reference_f = background
        self._reference = measure(background.astype(np.uint8))
        self._ref_features = features(self._reference.grey)
        self._measured_t = t

    def _refresh(self, view: View, t: float) -> None:
        """Follow slow changes of the scene itself (a new display, the season) while it is healthy."""
        if self._reference_f is None:
            return
        alpha = SAMPLE_EVERY_S / REFRESH_S
        self._reference_f = (1 - alpha) * self._reference_f + alpha * view.grey
        if t - self._measured_t >= REMEASURE_EVERY_S:
            self._set_reference(self._reference_f, t)
