"""Multi-object tracking with Ultralytics' ByteTrack or BoT-SORT, used directly (no predictor)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from footfall.contracts.config import ModelConfig
from footfall.edge.detector import Detections, prepare_offline_ultralytics


@dataclass(frozen=True, slots=True)
class Tracks:
    ids: np.ndarray  # (N,) int
    xyxy: np.ndarray  # (N, 4)
    ground: np.ndarray  # (N, 2) the matched detection's ground point
    heights: np.ndarray  # (N,)

    def __len__(self) -> int:
        return len(self.ids)

    def select(self, keep: np.ndarray) -> Tracks:
        return Tracks(self.ids[keep], self.xyxy[keep], self.ground[keep], self.heights[keep])

    def feet_in_view(self, picture_height: int) -> Tracks:
        """Only the people whose box ends above the picture's bottom edge: a box cut off there
        shows no feet, so its ground point is a guess that must not decide a crossing or a visit.
        (Such people stay tracked; they count again once their feet are in view.)"""
        return self.select(self.xyxy[:, 3] < picture_height - 1)

    @classmethod
    def empty(cls) -> Tracks:
        return cls(np.zeros(0, np.int64), np.zeros((0, 4)), np.zeros((0, 2)), np.zeros(0))


class _TrackerInput:
    """The minimal Results-like object Ultralytics' trackers read (conf, cls, xywh, masking)."""

    def __init__(self, xyxy: np.ndarray, conf: np.ndarray) -> None:
        self.xyxy = xyxy.astype(np.float32)
        self.conf = conf.astype(np.float32)
        self.cls = np.zeros(len(conf), dtype=np.float32)
        wh = self.xyxy[:, 2:4] - self.xyxy[:, 0:2]
        self.xywh = np.concatenate([self.xyxy[:, 0:2] + wh / 2, wh], axis=1)

    def __len__(self) -> int:
        return len(self.conf)

    def __getitem__(self, mask: Any) -> _TrackerInput:
        return _TrackerInput(self.xyxy[mask], self.conf[mask])


class PersonTracker:
    def __init__(self, config: ModelConfig, fps: float) -> None:
        prepare_offline_ultralytics()
        from ultralytics.trackers.bot_sort import BOTSORT
        from ultralytics.trackers.byte_tracker import BYTETracker
        from ultralytics.utils import IterableSimpleNamespace

        args = {
            "tracker_type": config.tracker,
            "track_high_thresh": config.conf,
            "track_low_thresh": 0.1,
            "new_track_thresh": max(config.conf, config.track_new_conf),
            # Keep a lost track about two seconds, whatever the frame rate (occlusion behind others).
            "track_buffer": max(10, round(2.0 * fps)),
            "match_thresh": 0.8,
            "fuse_score": True,
            "gmc_method": "none",  # fixed cameras: no global motion compensation needed
            "proximity_thresh": 0.5,
            "appearance_thresh": 0.8,
            "with_reid": False,
            "model": "auto",
        }
        cls = BOTSORT if config.tracker == "botsort" else BYTETracker
        self._tracker = cls(IterableSimpleNamespace(**args))

    def update(self, detections: Detections, image: np.ndarray | None = None) -> Tracks:
        out = self._tracker.update(_TrackerInput(detections.xyxy, detections.conf), image)
        if len(out) == 0:
            return Tracks.empty()
        xyxy = out[:, 0:4].astype(np.float64)
        ids = out[:, 4].astype(np.int64)
        det_index = out[:, 7].astype(np.int64)
        # The tracker's box is Kalman-smoothed; the ground point is the matched detection's own
        # (ankles when the model has them), which follows the feet more closely.
        ground = detections.ground[det_index]
        return Tracks(ids, xyxy, ground, xyxy[:, 3] - xyxy[:, 1])
