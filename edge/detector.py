"""Person detection with Ultralytics YOLO (detection or pose weights), on torch, ONNX or OpenVINO.

Weights always come from a real path (never a download). ``onnx``/``openvino`` backends export the
``.pt`` once for the source's image size into a cache directory keyed by the weights' hash; the
export needs torch, later runs only load the cached file.
"""

from __future__ import annotations

import importlib.util
import math
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from footfall.contracts.config import ModelConfig
from footfall.edge.models import cache_dir, export_model, onnx_to_openvino, resolve_weights

LEFT_ANKLE, RIGHT_ANKLE = 15, 16  # COCO keypoint indices
STRIDE = 32


def prepare_offline_ultralytics() -> None:
    """Ultralytics and OpenVINO must never reach the network (nor write into ~/.config) on an edge
    device. Call before anything imports ultralytics or openvino."""
    os.environ.setdefault("YOLO_OFFLINE", "1")
    os.environ.setdefault("YOLO_AUTOINSTALL", "False")  # never pip-install a missing export backend
    os.environ.setdefault("YOLO_VERBOSE", "False")
    if "YOLO_CONFIG_DIR" not in os.environ:
        path = Path(tempfile.gettempdir()) / "footfall-yolo-config"
        path.mkdir(parents=True, exist_ok=True)
        os.environ["YOLO_CONFIG_DIR"] = str(path)
    disable_openvino_telemetry()


def disable_openvino_telemetry() -> None:
    """Decline OpenVINO's usage telemetry in this process.

    ``import openvino`` and every model conversion send events to Google Analytics unless the
    consent file ``~/intel/openvino_telemetry`` holds ``0`` or ``CI=true`` is set (the only switches
    openvino-telemetry has). Setting ``CI`` would change other code's behaviour, and the documented
    ``opt_in_out --opt_out`` writes into $HOME and itself sends an opt-out event; so the consent
    check answers "declined" here, for this process only, before openvino is imported.
    """
    if importlib.util.find_spec("openvino_telemetry") is None:
        return  # openvino then uses its built-in stub, which sends nothing
    from openvino_telemetry.utils import opt_in_checker

    def declined(*_: object, **__: object) -> opt_in_checker.ConsentCheckResult:
        return opt_in_checker.ConsentCheckResult.DECLINED

    opt_in_checker.OptInChecker.check = declined  # type: ignore[method-assign]


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
        return self.xyxy[:, 3] - self.xyxy[:, 1]


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


def _installed(module: str) -> bool:
    return importlib.util.find_spec(module) is not None


class PersonDetector:
    """Callable: BGR frame in, ``Detections`` of class 0 (person) out."""

    def __init__(
        self,
        config: ModelConfig,
        frame_size: tuple[int, int],
        *,
        weights: str | None = None,
        detect_conf: float | None = None,
        imgsz: tuple[int, int] | None = None,
    ) -> None:
        prepare_offline_ultralytics()
        from ultralytics import YOLO

        self.config = config
        self.weights = resolve_weights(config, weights)
        self.imgsz = imgsz or resolve_imgsz(config, frame_size)
        # The tracker's second association stage uses low-score boxes, so detect below `conf`.
        self.detect_conf = detect_conf if detect_conf is not None else min(config.conf, 0.1)
        self.backend = self._pick_backend()
        self._set_threads()
        path = self.weights
        if self.backend in ("onnx", "openvino") and self.weights.suffix == ".pt":
            path = export_model(self.weights, self.backend, self.imgsz, cache_dir(config))
        elif self.backend == "openvino" and self.weights.suffix == ".onnx":
            path = onnx_to_openvino(self.weights, self.imgsz, cache_dir(config))
        self.model_path = path
        self.model: Any = YOLO(str(path), task=None if path.suffix == ".pt" else self._task_hint())
        self.is_pose = self.model.task == "pose"

    def _pick_backend(self) -> str:
        backend = self.config.backend
        suffix = self.weights.suffix
        if suffix == ".onnx":
            # OpenVINO reads ONNX itself (no torch): on these CPUs it runs YOLO ~1.3-4x faster
            # than ONNX Runtime at the same input size, so `auto` takes it when installed.
            wants_openvino = backend == "openvino" or (backend == "auto" and _installed("openvino"))
            return "openvino" if wants_openvino else "onnx"
        if self.weights.is_dir() and self.weights.name.endswith("_openvino_model"):
            return "openvino"
        if backend != "auto":
            return backend
        # Measured on a 2-core CPU: OpenVINO ~3x PyTorch at 1280x960; ONNX Runtime is in between at
        # small input sizes. Take the fastest runtime that is installed.
        for runtime, module in (("openvino", "openvino"), ("onnx", "onnxruntime")):
            if _installed(module):
                return runtime
        return "torch"

    def _task_hint(self) -> str | None:
        # Exported files carry their task in metadata; the name is a fallback for bare ONNX files.
        return "pose" if "pose" in self.weights.name else None

    def _set_threads(self) -> None:
        import torch

        threads = self.config.threads or os.cpu_count() or 1
        # ONNX Runtime / OpenVINO spin their own threads: torch must not compete with them.
        torch.set_num_threads(threads if self.backend == "torch" else 1)

    def __call__(self, image: np.ndarray) -> Detections:
        result = self.model.predict(
            image,
            imgsz=list(self.imgsz),
            conf=self.detect_conf,
            iou=self.config.iou,
            classes=[0],
            device=self.config.device,
            verbose=False,
        )[0]
        boxes = result.boxes
        xyxy = boxes.xyxy.cpu().numpy().astype(np.float64) if len(boxes) else np.zeros((0, 4))
        conf = boxes.conf.cpu().numpy().astype(np.float64) if len(boxes) else np.zeros(0)
        keypoints = None
        if self.is_pose and result.keypoints is not None and len(boxes):
            keypoints = result.keypoints.data.cpu().numpy().astype(np.float64)
        return Detections(xyxy, conf, ground_points(xyxy, keypoints, self.config.keypoint_conf))
