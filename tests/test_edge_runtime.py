"""The torch-free runtime (edge/inference.py): letterbox, head decoding and NMS in numpy, on
OpenVINO and ONNX Runtime, against Ultralytics' own predictor on real frames; models it cannot run
are refused by name; a whole `footfall count` never imports torch or Ultralytics."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from footfall.contracts.config import ConfigError
from footfall.edge.geometry import iou_matrix
from footfall.edge.inference import Letterbox, ModelInfo, decode, nms, read_info

COCO_PERSON = {0: "person", 1: "bicycle"}


@pytest.mark.parametrize(
    ("shape", "imgsz", "gain", "pad"),
    [
        ((1080, 1920), (384, 640), 1 / 3, (0, 12)),  # 16:9 into a stride-rounded 16:9 input
        ((480, 640), (640, 640), 1.0, (0, 80)),  # 4:3 into a square: bars above and below
        ((360, 480), (512, 640), 4 / 3, (0, 16)),  # a small camera is scaled up
    ],
)
def test_letterbox_fits_pads_and_maps_back(
    shape: tuple[int, int], imgsz: tuple[int, int], gain: float, pad: tuple[int, int]
) -> None:
    box = Letterbox.fit(shape, imgsz)
    assert box.gain == pytest.approx(gain)
    assert (box.pad_x, box.pad_y) == pad
    image = np.full((*shape, 3), 7, np.uint8)
    fitted = box.apply(image, imgsz)
    assert fitted.shape == (*imgsz, 3)
    assert fitted[0, 0, 0] == (114 if pad[1] else 7)  # the padding is Ultralytics' grey
    corners = np.array([[box.pad_x, box.pad_y, imgsz[1] - box.pad_x, imgsz[0] - box.pad_y]], np.float32)
    np.testing.assert_allclose(box.to_picture(corners, shape), [[0, 0, shape[1], shape[0]]], atol=1.5)


def test_nms_keeps_the_best_of_overlapping_boxes_and_every_separate_one() -> None:
    boxes = np.array([[0, 0, 10, 20], [1, 0, 11, 20], [30, 0, 40, 20], [0, 0, 10, 20]], np.float32)
    scores = np.array([0.5, 0.9, 0.4, 0.3], np.float32)
    assert nms(boxes, scores, 0.7).tolist() == [1, 2]
    assert nms(boxes, scores, 0.99).tolist() == [1, 0, 2]  # 0 and 3 are identical: IoU 1 > 0.99


def _head(rows: list[list[float]]) -> np.ndarray:
    """A head output (channels, anchors) from rows of cx, cy, w, h, class scores..."""
    return np.asarray(rows, np.float32).T


def test_decode_keeps_people_whose_best_class_is_person() -> None:
    info = ModelInfo(Path("m.onnx"), "detect", COCO_PERSON, 32, None)
    output = _head(
        [
            [50, 50, 20, 40, 0.9, 0.1],  # a person
            [51, 50, 20, 40, 0.8, 0.1],  # the same person again: suppressed
            [150, 50, 20, 40, 0.6, 0.7],  # a cyclist: bicycle is its best class
            [250, 50, 20, 40, 0.05, 0.0],  # below the confidence threshold
        ]
    )
    xyxy, score, keypoints = decode(output, info, conf=0.1, iou=0.7)
    np.testing.assert_allclose(xyxy, [[40, 30, 60, 70]])
    np.testing.assert_allclose(score, [0.9])
    assert keypoints is None


def test_decode_reads_pose_keypoints() -> None:
    info = ModelInfo(Path("m.onnx"), "pose", {0: "person"}, 32, (2, 3))
    output = _head([[50, 50, 20, 40, 0.9, 45, 68, 0.8, 55, 69, 0.7]])
    _, _, keypoints = decode(output, info, conf=0.1, iou=0.7)
    assert keypoints is not None
    np.testing.assert_allclose(keypoints, [[[45, 68, 0.8], [55, 69, 0.7]]])


@pytest.mark.parametrize(
    ("metadata", "output", "found"),
    [
        ({"task": "detect", "names": "{0: 'person'}"}, [1, 300, 6], "output (1, 300, 6)"),  # end-to-end
        ({"task": "segment", "names": "{0: 'person'}"}, [1, 37, None], "task 'segment'"),
        ({"task": "detect", "names": "{0: 'person'}"}, [1, 84, None], "output (1, 84, ?)"),
        ({"task": "pose", "names": "{0: 'person'}"}, [1, 56, None], "task 'pose'"),  # no kpt_shape
    ],
)
def test_unsupported_layouts_are_refused_naming_file_and_layout(
    metadata: dict[str, str], output: list[int | None], found: str
) -> None:
    with pytest.raises(ConfigError) as info:
        read_info(Path("/models/odd.onnx"), metadata, output)
    assert str(info.value).startswith("/models/odd.onnx: unsupported model")
    assert found in str(info.value)


@pytest.mark.model
def test_an_unsupported_model_file_fails_at_load(tmp_path: Path) -> None:
    """A real ONNX file whose single output is an end-to-end (batch, 300, 6) layout."""
    onnx = pytest.importorskip("onnx", reason="the export extra builds the test model")
    from onnx import TensorProto, helper

    from footfall.edge.inference import YoloModel

    graph = helper.make_graph(
        [helper.make_node("ConstantOfShape", ["shape"], ["output0"])],
        "end2end",
        [helper.make_tensor_value_info("images", TensorProto.FLOAT, [1, 3, 64, 64])],
        [helper.make_tensor_value_info("output0", TensorProto.FLOAT, [1, 300, 6])],
        [helper.make_tensor("shape", TensorProto.INT64, [3], [1, 300, 6])],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    helper.set_model_props(model, {"task": "detect", "names": "{0: 'person'}", "stride": "32"})
    path = tmp_path / "end2end.onnx"
    onnx.save(model, str(path))
    for backend in ("onnx", "openvino"):
        with pytest.raises(ConfigError, match=r"end2end\.onnx: unsupported model .*output \(1, 300, 6\)"):
            YoloModel(path, backend)


def _frames(video: Path, every: int, count: int) -> list[np.ndarray]:
    import cv2

    capture = cv2.VideoCapture(str(video))
    frames = []
    for k in range(every * count):
        ok, image = capture.read()
        if not ok:
            break
        if k % every == 0:
            frames.append(image)
    return frames


def _ultralytics_people(
    weights: Path, image: np.ndarray, imgsz: tuple[int, int]
) -> tuple[np.ndarray, np.ndarray]:
    from footfall.edge.detector import prepare_offline_ultralytics

    prepare_offline_ultralytics()
    from ultralytics import YOLO

    task = "pose" if "pose" in weights.name else "detect"
    result = YOLO(str(weights), task=task).predict(
        image, imgsz=list(imgsz), conf=0.1, iou=0.7, classes=[0], verbose=False
    )[0]
    return result.boxes.xyxy.numpy().astype(np.float64), result.boxes.conf.numpy().astype(np.float64)


@pytest.mark.model
@pytest.mark.parametrize(("backend", "share"), [("onnx", 1.0), ("openvino", 0.95)])
def test_same_people_as_ultralytics_on_venice2(
    backend: str, share: float, detect_model_path: Path, video_dir: Path
) -> None:
    """The runtime against Ultralytics' predictor on the same ONNX file and input size: the same
    people, boxes within a fraction of a pixel (ONNX Runtime: the same input tensor, bit for bit;
    OpenVINO: its own kernels, so a few boxes near the thresholds may differ)."""
    from footfall.edge.inference import YoloModel

    model = YoloModel(detect_model_path, backend)
    matched = total = 0
    for image in _frames(video_dir / "venice2" / "Venice-2.mp4", every=60, count=5):
        theirs, their_conf = _ultralytics_people(detect_model_path, image, (608, 1088))
        ours = model([image], (608, 1088), 0.1, 0.7)[0]
        total += max(len(theirs), len(ours.xyxy))
        iou = iou_matrix(theirs, ours.xyxy)
        same = iou.max(axis=1) > 0.95 if iou.size else np.zeros(0, bool)
        matched += int(same.sum())
        close = np.abs(their_conf[same] - ours.conf[iou.argmax(axis=1)[same]])
        assert np.all(close < 0.01)
    assert total >= 50
    assert matched >= share * total, (matched, total)


@pytest.mark.model
def test_a_count_with_an_onnx_model_never_imports_torch_or_ultralytics(
    detect_model_path: Path, video_dir: Path, tmp_path: Path
) -> None:
    script = (
        "import sys\n"
        "from footfall.cli import main\n"
        "sys.argv = ['footfall', 'count', sys.argv[1], '--config', sys.argv[2], '--model', sys.argv[3],"
        " '--out', sys.argv[4]]\n"
        "try:\n    main()\nexcept SystemExit as exit:\n    assert not exit.code, exit.code\n"
        "heavy = ('torch', 'torchvision', 'ultralytics')\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in heavy))\n"
    )
    config = Path(__file__).resolve().parent.parent / "edge" / "configs" / "tud_campus.yaml"
    clip = video_dir / "tud_campus" / "TUD-Campus.mp4"
    out = tmp_path / "events.jsonl"
    run = subprocess.run(
        [sys.executable, "-c", script, str(clip), str(config), str(detect_model_path), str(out)],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip().splitlines()[-1] == "[]"
    assert '"type":"crossing"' in out.read_text().replace(" ", "")


@pytest.mark.model
def test_openvino_computes_in_f32_on_every_cpu(detect_model_path: Path) -> None:
    """On CPUs with AVX512_BF16 or AMX, OpenVINO's default is bfloat16, whose confidences near the
    thresholds differ from ONNX Runtime's; footfall asks for the f32 the model was validated in."""
    from footfall.edge.inference import YoloModel

    model = YoloModel(detect_model_path, "openvino")
    assert model.precision is None  # nothing compiled yet
    model([np.zeros((64, 96, 3), np.uint8)], (64, 96), 0.25, 0.7)
    assert model.precision == "f32"


@pytest.mark.model
def test_openvino_releases_an_input_shape_left_unused(detect_model_path: Path) -> None:
    """A camera's probe shape is never run again once its input is planned: its compiled model
    (~100 MiB) is released after IDLE_RELEASE_S unused, and a shape run again is compiled again.
    The shape being run is kept however long it idled (a quiet camera's motion gate)."""
    from footfall.edge.inference import IDLE_RELEASE_S, OpenVINOBackend

    now = [0.0]
    backend = OpenVINOBackend(detect_model_path, 1, clock=lambda: now[0])
    probe, plan = np.zeros((1, 3, 64, 96), np.float32), np.zeros((1, 3, 32, 64), np.float32)
    first = backend.infer(probe)
    backend.infer(plan)
    now[0] = IDLE_RELEASE_S * 0.9
    backend.infer(plan)
    assert backend.compiled_shapes == [probe.shape, plan.shape]  # not idle long enough yet
    now[0] = IDLE_RELEASE_S * 1.1
    backend.infer(plan)
    assert (backend.compiled_shapes, backend.compiles) == ([plan.shape], 2)
    now[0] = IDLE_RELEASE_S * 3
    backend.infer(plan)
    assert (backend.compiled_shapes, backend.compiles) == ([plan.shape], 2)
    np.testing.assert_array_equal(backend.infer(probe), first)
    assert (backend.compiled_shapes, backend.compiles) == ([plan.shape, probe.shape], 3)
