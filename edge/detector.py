"""Person detection: a YOLO model (detection or pose) on the torch-free runtime (edge/inference.py).

Weights always come from a real path (never a download). ONNX files and OpenVINO folders load as
they are; ``.pt`` weights are exported once into the model cache when the ``export`` extra is
installed (edge/models.py ``runtime_model``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Protocol

import numpy as np
from numpy.typing import NDArray

from footfall.contracts.config import ModelConfig
from footfall.edge.geometry import share_inside
from footfall.edge.inference import People, YoloModel, disable_openvino_telemetry

LEFT_ANKLE, RIGHT_ANKLE = 15, 16  # COCO keypoint indices
STRIDE = 32


def prepare_offline_ultralytics() -> None:
    """Ultralytics (the ``export`` extra) and OpenVINO must never reach the network (nor write into
    ~/.config) on an edge device. Call before anything imports ultralytics or openvino."""
    from footfall.edge.models import offline_ultralytics

    offline_ultralytics()
    disable_openvino_telemetry()


def fit_imgsz(frame_size: tuple[int, int], long_side: int = 640) -> tuple[int, int]:
    """(height, width) for the model input: the frame's aspect ratio with the long side
    ``long_side``, both multiples of the stride (so a 16:9 camera gets 384x640, not 640x640)."""
    width, height = frame_size
    scale = long_side / max(width, height)
    return (
        max(STRIDE, math.ceil(height * scale / STRIDE) * STRIDE),
        max(STRIDE, math.ceil(width * scale / STRIDE) * STRIDE),
    )


def resolve_imgsz(config: ModelConfig, frame_size: tuple[int, int]) -> tuple[int, int]:
    if config.imgsz is None:
        return fit_imgsz(frame_size)
    if isinstance(config.imgsz, int):
        return fit_imgsz(frame_size, config.imgsz)
    return config.imgsz


@dataclass(frozen=True, slots=True)
class Detections:
    xyxy: np.ndarray  # (N, 4) in source pixels
    conf: np.ndarray  # (N,)
    ground: np.ndarray  # (N, 2) feet: mean of the confident ankles, else the box's bottom-centre

    def __len__(self) -> int:
        return len(self.conf)

    @property
    def heights(self) -> np.ndarray:
        return np.asarray(self.xyxy[:, 3] - self.xyxy[:, 1])

    def select(self, keep: np.ndarray) -> Detections:
        return Detections(self.xyxy[keep], self.conf[keep], self.ground[keep])


def ground_points(xyxy: np.ndarray, keypoints: np.ndarray | None, min_conf: float) -> np.ndarray:
    """Feet position per person: ankle keypoints when confident, else bottom-centre of the box."""
    bottom = np.stack([(xyxy[:, 0] + xyxy[:, 2]) / 2, xyxy[:, 3]], axis=1)
    if keypoints is None or len(keypoints) == 0 or keypoints.shape[1] <= RIGHT_ANKLE:
        return bottom
    ankles = keypoints[:, [LEFT_ANKLE, RIGHT_ANKLE], :]  # (N, 2, 3): x, y, conf
    good = ankles[..., 2] >= min_conf
    n_good = good.sum(axis=1)
    mean = (ankles[..., :2] * good[..., None]).sum(axis=1) / np.maximum(n_good, 1)[:, None]
    return np.where((n_good > 0)[:, None], mean, bottom)


# Someone riding a bicycle or a motorbike is not a pedestrian (MOTChallenge's annotations class
# them apart as "person on vehicle"), and footfall counts pedestrians. A rider sits on the vehicle:
# most of the lowest third of their box lies inside the vehicle's box, and their feet (the box's
# bottom) are in its lower half: on the pedals, or on the ground beside it when stopping.
RIDER_LOWER_PART = 1 / 3
RIDER_INSIDE = 0.6


def riders(people: NDArray[np.float64], vehicles: NDArray[np.float64]) -> NDArray[np.bool_]:
    """Per person box (xyxy), whether it sits on one of the ``vehicles`` (xyxy)."""
    if len(people) == 0 or len(vehicles) == 0:
        return np.zeros(len(people), dtype=bool)
    lower = people.copy()
    lower[:, 1] = people[:, 3] - RIDER_LOWER_PART * (people[:, 3] - people[:, 1])
    inside = share_inside(lower, vehicles) >= RIDER_INSIDE
    feet = people[:, 3, None]
    on_it = (feet >= (vehicles[None, :, 1] + vehicles[None, :, 3]) / 2) & (feet <= vehicles[None, :, 3])
    return np.asarray((inside & on_it).any(axis=1))


class PeopleModel(Protocol):
    """A loaded model, or a shared batching front of one (several cameras)."""

    def __call__(
        self, images: list[NDArray[np.uint8]], imgsz: tuple[int, int], conf: float, iou: float
    ) -> list[People]: ...

    def input_size(self, wanted: tuple[int, int]) -> tuple[int, int]: ...


def load_model(config: ModelConfig, weights: str | None = None) -> YoloModel:
    """The configured model (``--model`` / ``FOOTFALL_MODEL`` / ``model.weights`` / the default),
    loaded on the runtime."""
    from footfall.edge.models import resolve_weights

    path = resolve_weights(config, weights)
    if path.suffix == ".pt":
        from footfall.edge.models import runtime_model  # exported once, with the export extra

        path = runtime_model(path, config)
    return YoloModel(path, config.backend, config.threads)


class PersonDetector:
    """Callable: BGR picture in, ``Detections`` of people out, at one model input size."""

    def __init__(
        self,
        config: ModelConfig,
        frame_size: tuple[int, int],
        *,
        weights: str | None = None,
        detect_conf: float | None = None,
        imgsz: tuple[int, int] | None = None,
        model: PeopleModel | None = None,
    ) -> None:
        self.config = config
        self.model = model if model is not None else load_model(config, weights)
        self.imgsz = self.model.input_size(imgsz or resolve_imgsz(config, frame_size))
        # The tracker's second association stage uses low-score boxes, so detect below `conf`.
        self.detect_conf = detect_conf if detect_conf is not None else min(config.conf, 0.1)

    def __call__(self, image: NDArray[np.uint8]) -> Detections:
        people = self.model([image], self.imgsz, self.detect_conf, self.config.iou)[0]
        found = Detections(
            people.xyxy, people.conf, ground_points(people.xyxy, people.keypoints, self.config.keypoint_conf)
        )
        if self.config.count_riders:
            return found
        vehicles = people.vehicles[people.vehicle_conf >= self.config.conf]
        return found.select(~riders(people.xyxy, vehicles))
