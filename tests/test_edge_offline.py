"""Edge configuration paths and the edge's offline guarantees (no weights download, no telemetry)."""

from __future__ import annotations

import importlib.util
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from footfall.cli import app
from footfall.contracts.config import CameraConfig, ConfigError, load_config, validate_config
from footfall.edge.models import resolve_weights
from tests.conftest import require

CONFIGS = Path(__file__).resolve().parent.parent / "edge" / "configs"


def _camera_yaml(folder: Path, model: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "cam.yaml"
    path.write_text(f"store: s\ncamera: c\nmodel:\n{model}")
    return path


@pytest.fixture
def no_model_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("FOOTFALL_MODEL", raising=False)


@pytest.mark.usefixtures("no_model_env")
def test_relative_paths_resolve_against_the_yaml_folder_not_the_cwd(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    weights = tmp_path / "models" / "person.pt"
    weights.parent.mkdir()
    weights.write_bytes(b"x")
    path = _camera_yaml(
        tmp_path / "site" / "configs", "  weights: ../../models/person.pt\n  cache_dir: cache\n"
    )
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    config = load_config(path, CameraConfig)
    assert resolve_weights(config.model).resolve() == weights
    assert Path(config.model.cache_dir or "") == path.parent.absolute() / "cache"
    # Also when the YAML itself was named relative to the working directory.
    monkeypatch.chdir(tmp_path)
    relative = load_config(Path("site/configs/cam.yaml"), CameraConfig)
    monkeypatch.chdir(elsewhere)
    assert resolve_weights(relative.model).resolve() == weights


@pytest.mark.usefixtures("no_model_env")
@pytest.mark.parametrize("weights", ["/abs/person.pt", "~/person.pt"])
def test_absolute_and_home_paths_are_kept(tmp_path: Path, weights: str) -> None:
    config = load_config(_camera_yaml(tmp_path, f"  weights: {weights}\n"), CameraConfig)
    assert config.model.weights == weights


def test_config_built_in_code_keeps_paths_as_given() -> None:
    config = validate_config(
        {"store": "s", "camera": "c", "model": {"weights": "m.pt"}}, CameraConfig, source="x"
    )
    assert config.model.weights == "m.pt"  # no file, no folder to resolve against


@pytest.mark.usefixtures("no_model_env")
def test_missing_weights_name_the_file_and_key(tmp_path: Path) -> None:
    path = _camera_yaml(tmp_path, "  weights: models/missing.pt\n")
    with pytest.raises(ConfigError) as info:
        resolve_weights(load_config(path, CameraConfig).model)
    message = str(info.value)
    assert message.startswith(f"{path}: model.weights: ")
    assert str(tmp_path / "models" / "missing.pt") in message


@pytest.mark.parametrize(
    ("flag", "env", "named"),
    [
        (None, None, "cam.yaml: model.weights"),
        (None, "env.pt", "FOOTFALL_MODEL"),
        ("flag.pt", "env.pt", "--model"),
    ],
)
def test_edge_run_model_override_and_errors(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, flag: str | None, env: str | None, named: str
) -> None:
    """`edge run` takes --model and FOOTFALL_MODEL like `count`; a missing file is a ConfigError
    (exit 2 from `footfall`) before any broker or camera is touched, naming where the path came from."""
    path = _camera_yaml(tmp_path, "  weights: missing.pt\n")
    if env:
        monkeypatch.setenv("FOOTFALL_MODEL", str(tmp_path / env))
    else:
        monkeypatch.delenv("FOOTFALL_MODEL", raising=False)
    args = ["edge", "run", "--config", str(path), "--source", "0", "--mqtt-url", "mqtt://127.0.0.1:9"]
    if flag:
        args += ["--model", str(tmp_path / flag)]
    result = CliRunner().invoke(app, args)
    assert isinstance(result.exception, ConfigError), result.output
    assert str(result.exception).startswith(f"{path if named.startswith('cam.yaml') else named}: ")
    assert named in str(result.exception)
    assert "does not exist" in str(result.exception)


@pytest.mark.parametrize(
    ("name", "model"),
    [
        ("tud_campus", "yolo11n.onnx"),  # no model.weights: footfall's default model
        ("pets09_s2l1", "yolo11n.onnx"),
        ("venice2", "yolo11n.onnx"),
        ("intel_one_by_one", "yolo11n-pose.pt"),  # model.weights relative to the YAML
    ],
)
def test_committed_configs_find_their_model_from_any_cwd(
    name: str, model: str, shared_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("FOOTFALL_MODEL", raising=False)
    monkeypatch.setenv("FOOTFALL_CACHE_DIR", str(tmp_path / "empty-cache"))
    monkeypatch.chdir(tmp_path)
    expected = shared_dir / "models" / model
    require(expected.is_file(), f"the model weights {expected}", "they ship in the shared folder")
    config = load_config(CONFIGS / f"{name}.yaml", CameraConfig)
    assert resolve_weights(config.model).resolve() == expected.resolve()


@pytest.mark.usefixtures("no_model_env")
def test_without_any_model_the_error_names_where_it_looked(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from footfall.edge import models

    monkeypatch.setenv("FOOTFALL_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setattr(models, "default_weights_candidates", lambda config: [tmp_path / "cache" / "m.onnx"])
    path = _camera_yaml(tmp_path, "  conf: 0.3\n")
    with pytest.raises(ConfigError) as info:
        resolve_weights(load_config(path, CameraConfig).model)
    assert str(info.value).startswith(f"{path}: model.weights: no model given and no default model at ")
    assert str(tmp_path / "cache" / "m.onnx") in str(info.value)


_TELEMETRY_PROBE = """
import json, sys
from pathlib import Path
from openvino_telemetry.utils.sender import TelemetrySender

sent = []
TelemetrySender.send = lambda self, backend, message, *a, **k: sent.append(message)  # never the network
if sys.argv[1] == "edge":
    from footfall.edge.detector import prepare_offline_ultralytics
    prepare_offline_ultralytics()
import openvino  # sends a "general_import" event when telemetry is on
from openvino.tools.ovc.telemetry_utils import init_ovc_telemetry  # what convert_model (export) does

telemetry = init_ovc_telemetry()
telemetry.send_event("ovc", "probe", "probe")
intel = (Path.home() / "intel").exists()
print(json.dumps({"sent": len(sent), "consent": bool(telemetry.consent), "intel": intel}))
"""


@pytest.mark.parametrize("mode", ["edge", "plain"])
def test_openvino_telemetry_is_off_in_the_edge(mode: str, tmp_path: Path) -> None:
    """OpenVINO sends usage events on import and on conversion unless told not to (`plain` shows it
    does here, with the sender stubbed); the edge's preparation declines it in-process, writes
    nothing into $HOME and needs no CI=true."""
    require(importlib.util.find_spec("openvino_telemetry") is not None, "openvino-telemetry (edge extra)")
    env = {k: v for k, v in os.environ.items() if k not in ("CI", "TF_BUILD", "JENKINS_URL")}
    env["HOME"] = str(tmp_path)
    done = subprocess.run(
        [sys.executable, "-c", _TELEMETRY_PROBE, mode], env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout.strip().splitlines()[-1])
    if mode == "edge":
        assert result == {"sent": 0, "consent": False, "intel": False}
    else:
        assert result["sent"] > 0
        assert result["consent"] is True


def test_edge_run_unreadable_source_is_a_config_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, detect_model_path: Path
) -> None:
    weights = detect_model_path  # the model loads first (a bad model fails before any source)
    monkeypatch.delenv("FOOTFALL_MODEL", raising=False)
    handlers = {sig: signal.getsignal(sig) for sig in (signal.SIGTERM, signal.SIGINT)}
    args = ["edge", "run", "--config", str(_camera_yaml(tmp_path, f"  weights: {weights}\n"))]
    args += ["--source", str(tmp_path / "missing.mp4"), "--mqtt-url", "mqtt://127.0.0.1:9"]
    try:
        result = CliRunner().invoke(app, [*args, "--queue", str(tmp_path / "queue.sqlite")])
    finally:
        for sig, handler in handlers.items():
            signal.signal(sig, handler)
    assert isinstance(result.exception, ConfigError), result.output
    assert str(result.exception).startswith("--source: ")
    assert "missing.mp4" in str(result.exception)


def test_unloadable_pt_weights_are_a_config_error_naming_the_file(tmp_path: Path) -> None:
    """A .pt that is not a checkpoint (here: one byte) fails as a configuration error, not with
    Ultralytics' TypeError, and nothing is left in the cache."""
    pytest.importorskip("ultralytics", reason="exporting a .pt needs the export extra")
    from footfall.contracts.config import ModelConfig
    from footfall.edge.models import runtime_model

    weights = tmp_path / "person.pt"
    weights.write_bytes(b"x")
    cache = tmp_path / "cache"
    with pytest.raises(ConfigError, match=r"person\.pt: not loadable Ultralytics weights"):
        runtime_model(weights, ModelConfig(cache_dir=str(cache)))
    assert not [p for p in cache.rglob("*") if p.is_file()]
