"""YOLO inference without torch: OpenVINO or ONNX Runtime, with our own letterbox, head decoding
and non-maximum suppression in numpy/OpenCV.

Supported models are Ultralytics YOLOv8 / YOLO11 exports (ONNX files, OpenVINO IR folders) of the
``detect`` and ``pose`` tasks: one output ``(batch, 4 + classes [+ keypoints], anchors)`` with
centre-x, centre-y, width, height in input pixels, class scores after the sigmoid, then per
keypoint x, y, visibility. The task, class names, stride and keypoint shape come from the model's
metadata. Anything else fails at start, naming the file and the layout found.
"""

from __future__ import annotations

import ast
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import cv2
import numpy as np
from numpy.typing import NDArray

from footfall.contracts.config import ConfigError
from footfall.edge.geometry import iou_matrix

Array = NDArray[np.float32]

PAD_VALUE = 114  # the grey Ultralytics trains with around letterboxed pictures
MAX_DETECTIONS = 300
MAX_CANDIDATES = 30000
# What a person may ride: someone on one is not a pedestrian (edge/detector.py ``riders``).
VEHICLE_NAMES = ("bicycle", "motorcycle")


@dataclass(frozen=True, slots=True)
class ModelInfo:
    path: Path
    task: str  # "detect" or "pose"
    names: dict[int, str]
    stride: int
    keypoints: tuple[int, int] | None  # (count, values per keypoint) for pose models

    @property
    def channels(self) -> int:
        extra = self.keypoints[0] * self.keypoints[1] if self.keypoints else 0
        return 4 + len(self.names) + extra

    @property
    def person_class(self) -> int:
        found = [k for k, name in self.names.items() if name == "person"]
        if not found:
            raise ConfigError(f"{self.path}: the model has no 'person' class (classes: {self.names})")
        return found[0]

    @property
    def vehicle_classes(self) -> list[int]:
        """The classes people ride (COCO's bicycle and motorcycle); none for a pose model."""
        return [k for k, name in self.names.items() if name in VEHICLE_NAMES]


def disable_openvino_telemetry() -> None:
    """Decline OpenVINO's usage telemetry in this process.

    ``import openvino`` and every model conversion send events to Google Analytics unless the
    consent file ``~/intel/openvino_telemetry`` holds ``0`` or ``CI=true`` is set (the only switches
    openvino-telemetry has). Setting ``CI`` would change other code's behaviour, and the documented
    ``opt_in_out --opt_out`` writes into $HOME and itself sends an opt-out event; so the consent
    check answers "declined" here, for this process only, before openvino is imported.
    """
    import importlib.util

    if importlib.util.find_spec("openvino_telemetry") is None:
        return  # openvino then uses its built-in stub, which sends nothing
    from openvino_telemetry.utils import opt_in_checker

    def declined(*_: object, **__: object) -> opt_in_checker.ConsentCheckResult:
        return opt_in_checker.ConsentCheckResult.DECLINED

    opt_in_checker.OptInChecker.check = declined


class Backend(Protocol):
    def infer(self, batch: Array) -> Array: ...


def _literal(value: str) -> Any:
    try:
        return ast.literal_eval(value)
    except (ValueError, SyntaxError):
        return value


def read_info(path: Path, metadata: dict[str, str], output_shape: list[int | None]) -> ModelInfo:
    """The model's task, classes and keypoints from its metadata, checked against its output."""
    task = str(metadata.get("task", "detect"))
    names = {int(k): str(v) for k, v in dict(_literal(metadata.get("names", "{}")) or {}).items()}
    kpt = _literal(metadata["kpt_shape"]) if "kpt_shape" in metadata else None
    info = ModelInfo(
        path,
        task,
        names,
        int(_literal(metadata.get("stride", "32"))),
        (int(kpt[0]), int(kpt[1])) if task == "pose" and kpt else None,
    )
    layout = "(" + ", ".join("?" if d is None else str(d) for d in output_shape) + ")"
    supported = task in ("detect", "pose") and names and (task == "detect" or info.keypoints)
    if not supported or len(output_shape) != 3 or output_shape[1] != info.channels:
        raise ConfigError(
            f"{path}: unsupported model (task {task!r}, {len(names)} classes, output {layout}); footfall "
            "runs Ultralytics YOLOv8/YOLO11 detect or pose exports with one output "
            "(batch, 4 + classes [+ keypoints], anchors) and their metadata"
        )
    return info


# A compiled input shape not run for this long is released. Each holds its own buffers (~90-110
# MiB for YOLO11n at 1088x512 or 1280x736), and a camera's probe shape is never run again once its
# input is planned; a store's batch sizes, run every few frames, stay. Compiling one again costs
# 0.2-0.4 s (docs/accuracy.md).
IDLE_RELEASE_S = 120.0


@dataclass(slots=True)
class _CompiledShape:
    request: Any  # OpenVINO's InferRequest for one input shape
    last_run: float


class OpenVINOBackend:
    """An ONNX file or OpenVINO IR, compiled once per input shape (static shapes run fastest);
    shapes left unused for ``IDLE_RELEASE_S`` are released."""

    def __init__(self, path: Path, threads: int, clock: Callable[[], float] = time.monotonic) -> None:
        disable_openvino_telemetry()
        import openvino as ov

        self._core = ov.Core()
        xml = path if path.is_file() else next(path.glob("*.xml"), path)
        self._model = self._core.read_model(str(xml))
        self._threads = threads
        self._clock = clock
        self._compiled: dict[tuple[int, ...], _CompiledShape] = {}
        self.compiles = 0  # shapes compiled so far, again after a release included
        self.precision: str | None = None  # what the CPU computes in, once a shape is compiled
        self.metadata = self._metadata(path)
        self.output_shape = [
            d.get_length() if d.is_static else None for d in self._model.output(0).partial_shape
        ]

    def _metadata(self, path: Path) -> dict[str, str]:
        if path.is_dir() and (path / "metadata.yaml").is_file():
            import yaml

            loaded = yaml.safe_load((path / "metadata.yaml").read_text(encoding="utf-8")) or {}
            return {str(k): repr(v) if not isinstance(v, str) else v for k, v in loaded.items()}
        # The ONNX file's metadata_props, which OpenVINO keeps under rt_info "framework".
        if not self._model.has_rt_info(["framework"]):
            return {}
        framework = self._model.get_rt_info()["framework"]
        return {str(k): v.astype(str) for k, v in dict(framework).items()}

    def infer(self, batch: Array) -> Array:
        shape = tuple(batch.shape)
        now = self._clock()
        self._release_idle(now, keep=shape)  # however long a quiet camera's motion gate idled
        compiled = self._compiled.get(shape)
        if compiled is None:
            compiled = self._compiled[shape] = _CompiledShape(self._compile(shape), now)
        compiled.last_run = now
        return np.asarray(compiled.request.infer({0: batch})[0], dtype=np.float32)

    @property
    def compiled_shapes(self) -> list[tuple[int, ...]]:
        return list(self._compiled)

    def _release_idle(self, now: float, keep: tuple[int, ...]) -> None:
        idle = [s for s, c in self._compiled.items() if s != keep and now - c.last_run > IDLE_RELEASE_S]
        for shape in idle:
            del self._compiled[shape]

    def _compile(self, shape: tuple[int, ...]) -> Any:
        model = self._model.clone()
        model.reshape(list(shape))
        # f32 as the model was trained and validated: on CPUs with AVX512_BF16 or AMX,
        # OpenVINO otherwise computes in bfloat16 (8 bits of mantissa), and confidences near
        # the thresholds then differ from ONNX Runtime's (0.013 on an AMD EPYC, 2026-11-30).
        settings = {
            "PERFORMANCE_HINT": "LATENCY",
            "INFERENCE_NUM_THREADS": self._threads,
            "INFERENCE_PRECISION_HINT": "f32",
        }
        compiled = self._core.compile_model(model, "CPU", settings)
        self.precision = compiled.get_property("INFERENCE_PRECISION_HINT").to_string()
        self.compiles += 1
        return compiled.create_infer_request()


class OnnxRuntimeBackend:
    def __init__(self, path: Path, threads: int) -> None:
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.log_severity_level = 3
        # ORT's workers spin on the cores after each operator and each run, waiting for more work;
        # on a small edge box that steals the cores from the frame's own work between inferences
        # (decoding, NMS, tracking). Off, `footfall count` on Venice-2 ran 5 % faster (docs/accuracy.md).
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        # The memory pattern plans one block per input shape and keeps it; the model's input is
        # dynamic and a camera probes at one size before it plans another, so each shape held its
        # own block. Without it the arena reuses one pool: `footfall count` on Venice-2 peaked
        # 28 MiB lower at the same speed, with the same events (docs/accuracy.md).
        options.enable_mem_pattern = False
        self._session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        # The arena keeps what the largest input needed, and the probe's input is larger than the
        # plan's. So the first run at a shape not seen before hands the arena's free memory back
        # (a few times in a process's life: the plan, a batch size): 35 MiB in one process after
        # a 1280x736 probe and 1088x512 plan (docs/accuracy.md).
        self._shrink = ort.RunOptions()
        self._shrink.add_run_config_entry("memory.enable_memory_arena_shrinkage", "cpu:0")
        self._shapes_seen: set[tuple[int, ...]] = set()
        self._input = self._session.get_inputs()[0]
        self.metadata = dict(self._session.get_modelmeta().custom_metadata_map)
        shape = self._session.get_outputs()[0].shape
        self.output_shape = [d if isinstance(d, int) else None for d in shape]
        fixed = self._input.shape[2:]
        self.fixed_hw = tuple(fixed) if all(isinstance(d, int) for d in fixed) else None

    def infer(self, batch: Array) -> Array:
        options = None
        if batch.shape not in self._shapes_seen:
            self._shapes_seen.add(batch.shape)
            options = self._shrink
        outputs = self._session.run(None, {self._input.name: batch}, options)
        return np.asarray(outputs[0], dtype=np.float32)


@dataclass(frozen=True, slots=True)
class Letterbox:
    """How a picture was fitted into the model input: scale, then padding left/top."""

    gain: float
    pad_x: int
    pad_y: int

    @classmethod
    def fit(cls, shape: tuple[int, int], imgsz: tuple[int, int]) -> Letterbox:
        gain = min(imgsz[0] / shape[0], imgsz[1] / shape[1])
        new_w, new_h = max(round(shape[1] * gain), 1), max(round(shape[0] * gain), 1)
        return cls(gain, round((imgsz[1] - new_w) / 2 - 0.1), round((imgsz[0] - new_h) / 2 - 0.1))

    def apply(self, image: NDArray[np.uint8], imgsz: tuple[int, int]) -> NDArray[np.uint8]:
        h, w = image.shape[:2]
        new_w, new_h = max(round(w * self.gain), 1), max(round(h * self.gain), 1)
        if (new_w, new_h) != (w, h):
            image = np.asarray(cv2.resize(image, (new_w, new_h), interpolation=cv2.INTER_LINEAR), np.uint8)
        right, bottom = imgsz[1] - new_w - self.pad_x, imgsz[0] - new_h - self.pad_y
        padded = cv2.copyMakeBorder(
            image, self.pad_y, bottom, self.pad_x, right, cv2.BORDER_CONSTANT, value=(PAD_VALUE,) * 3
        )
        return np.asarray(padded, np.uint8)

    def to_picture(self, xy: Array, shape: tuple[int, int]) -> Array:
        """Input-pixel x, y pairs (last axis, even columns x) back to the picture, clipped to it."""
        out = xy.copy()
        out[..., 0::2] = np.clip((out[..., 0::2] - self.pad_x) / self.gain, 0, shape[1])
        out[..., 1::2] = np.clip((out[..., 1::2] - self.pad_y) / self.gain, 0, shape[0])
        return out


def to_blob(images: list[NDArray[np.uint8]]) -> Array:
    """Letterboxed BGR pictures -> the model's (N, 3, H, W) RGB input in [0, 1]."""
    batch = np.stack(images)[..., ::-1].transpose(0, 3, 1, 2)
    return np.ascontiguousarray(batch, dtype=np.float32) / np.float32(255)


def nms(boxes: Array, scores: Array, iou: float) -> NDArray[np.int64]:
    """Greedy non-maximum suppression: indices kept, best first (a box overlapping a better one by
    more than ``iou`` is dropped)."""
    order = np.argsort(-scores, kind="stable")
    keep: list[int] = []
    while len(order):
        best, rest = order[0], order[1:]
        keep.append(int(best))
        order = rest[iou_matrix(boxes[best][None], boxes[rest])[0] <= iou]
    return np.asarray(keep, dtype=np.int64)


@dataclass(frozen=True, slots=True)
class People:
    """One picture's people in picture pixels: boxes, scores and (pose models) keypoints."""

    xyxy: NDArray[np.float64]
    conf: NDArray[np.float64]
    keypoints: NDArray[np.float64] | None  # (N, K, 3): x, y, visibility
    vehicles: NDArray[np.float64] = field(default_factory=lambda: np.zeros((0, 4)))  # bicycles, motorbikes
    vehicle_conf: NDArray[np.float64] = field(default_factory=lambda: np.zeros(0))


def decode(output: Array, info: ModelInfo, conf: float, iou: float) -> tuple[Array, Array, Array | None]:
    """One picture's head output ``(channels, anchors)`` -> person boxes (input pixels, xyxy),
    scores and keypoints, after NMS. A box counts as a person when person is its best class."""
    pred = output.T
    xyxy, score, kept = _best_of(pred, info, [info.person_class], conf, iou)
    keypoints = None
    if info.keypoints is not None:
        keypoints = pred[kept, 4 + len(info.names) :].reshape(len(kept), *info.keypoints)
    return xyxy, score, keypoints


def decode_vehicles(output: Array, info: ModelInfo, conf: float, iou: float) -> tuple[Array, Array]:
    """The boxes (input pixels, xyxy) and scores of what people ride, after NMS: anchors whose
    best class is a bicycle or a motorbike."""
    classes = info.vehicle_classes
    if not classes:
        return np.zeros((0, 4), np.float32), np.zeros(0, np.float32)
    xyxy, score, _ = _best_of(output.T, info, classes, conf, iou)
    return xyxy, score


def _best_of(
    pred: Array, info: ModelInfo, classes: list[int], conf: float, iou: float
) -> tuple[Array, Array, NDArray[np.int64]]:
    """Boxes whose best class is one of ``classes`` and scores above ``conf``, after NMS, with
    their rows in ``pred`` (anchors by channels)."""
    n_classes = len(info.names)
    # The classes' scores first: only the few anchors above ``conf`` need the argmax over all
    # classes (the whole argmax cost as much as the rest of decoding on a 1088x608 input).
    score = pred[:, [4 + k for k in classes]].max(axis=1)
    keep = np.flatnonzero(score > conf)
    keep = keep[np.isin(pred[keep, 4 : 4 + n_classes].argmax(axis=1), classes)]
    if len(keep) > MAX_CANDIDATES:
        keep = keep[np.argsort(-score[keep])[:MAX_CANDIDATES]]
    xywh = pred[keep, :4]
    xyxy = np.concatenate([xywh[:, :2] - xywh[:, 2:] / 2, xywh[:, :2] + xywh[:, 2:] / 2], axis=1)
    kept = nms(xyxy, score[keep], iou)[:MAX_DETECTIONS]
    return xyxy[kept], score[keep][kept], keep[kept]


class YoloModel:
    """A loaded YOLO model: pictures in, people out. One instance may serve several cameras; calls
    are serialised (one inference at a time uses every core anyway)."""

    def __init__(self, path: Path, backend: str = "auto", threads: int | None = None) -> None:
        threads = threads or os.cpu_count() or 1
        self.backend_name = _pick_backend(path, backend)
        runtime: OpenVINOBackend | OnnxRuntimeBackend = (
            OpenVINOBackend(path, threads)
            if self.backend_name == "openvino"
            else OnnxRuntimeBackend(path, threads)
        )
        self._backend: Backend = runtime
        self.info = read_info(path, runtime.metadata, runtime.output_shape)
        self.fixed_hw = getattr(runtime, "fixed_hw", None)
        self._lock = threading.Lock()

    @property
    def precision(self) -> str | None:
        """What OpenVINO computes in, once it has compiled an input shape (None: ONNX Runtime,
        which computes in the model's own f32)."""
        return getattr(self._backend, "precision", None)

    def input_size(self, wanted: tuple[int, int]) -> tuple[int, int]:
        """The input the model will really get: a model with a fixed input ignores the plan."""
        return (int(self.fixed_hw[0]), int(self.fixed_hw[1])) if self.fixed_hw else wanted

    def __call__(
        self, images: list[NDArray[np.uint8]], imgsz: tuple[int, int], conf: float, iou: float
    ) -> list[People]:
        imgsz = self.input_size(imgsz)
        boxes = [Letterbox.fit(image.shape[:2], imgsz) for image in images]
        blob = to_blob([box.apply(image, imgsz) for box, image in zip(boxes, images, strict=True)])
        with self._lock:
            output = self._backend.infer(blob)
        found = []
        for out, box, image in zip(output, boxes, images, strict=True):
            xyxy, score, keypoints = decode(out, self.info, conf, iou)
            vehicles, vehicle_score = decode_vehicles(out, self.info, conf, iou)
            shape = image.shape[:2]
            if keypoints is not None:
                keypoints = keypoints.copy()
                keypoints[..., :2] = box.to_picture(keypoints[..., :2], shape)
            found.append(
                People(
                    box.to_picture(xyxy, shape).astype(np.float64),
                    score.astype(np.float64),
                    None if keypoints is None else keypoints.astype(np.float64),
                    box.to_picture(vehicles, shape).astype(np.float64),
                    vehicle_score.astype(np.float64),
                )
            )
        return found


def _pick_backend(path: Path, backend: str) -> str:
    """OpenVINO for OpenVINO IR (or when asked for); ONNX Runtime for ONNX files: it is the runtime
    every edge install has, and with this pre- and post-processing it runs YOLO11n as fast as
    OpenVINO on the development CPUs (docs/accuracy.md, "Edge speed and memory")."""
    is_ir = path.suffix == ".xml" or path.is_dir()
    if not (is_ir or backend == "openvino"):
        return "onnx"
    import importlib.util

    if importlib.util.find_spec("openvino") is None:
        raise ConfigError(f'{path}: OpenVINO is not installed (pip install "footfall[openvino]")')
    return "openvino"
