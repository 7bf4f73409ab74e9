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
        return Detections(
            people.xyxy, people.conf, ground_points(people.xyxy, people.keypoints, self.config.keypoint_conf)
        )
