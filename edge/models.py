"""Model files: where the default model is found, footfall's model cache, and the conversions
into a runtime model (Ultralytics export for ``.pt``, OpenVINO's own ONNX reader for ``.onnx``)."""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

from footfall.contracts.config import ConfigError, ModelConfig

# The default detector: YOLO11n person detection. On the development clips it finds far more of
# the small and partly hidden people than the pose model (README, "Accuracy"), and as an ONNX file
# with a dynamic input it runs at any input size without an export.
DEFAULT_MODEL = "yolo11n.onnx"


def default_weights_candidates(config: ModelConfig) -> list[Path]:
    """Where a camera file without ``model.weights`` finds the default model: footfall's model
    cache, then the development machines' shared folder beside a source checkout."""
    checkout = Path(__file__).resolve().parent.parent
    return [
        cache_dir(config) / "models" / DEFAULT_MODEL,
        checkout.parent / "shared" / "models" / DEFAULT_MODEL,
    ]


def resolve_weights(config: ModelConfig, override: str | None = None) -> Path:
    """``--model`` beats ``FOOTFALL_MODEL`` beats ``model.weights`` beats the default model; the
    file must exist.

    A relative ``model.weights`` from a YAML file was made relative to that file's folder when it
    was loaded; ``--model`` and ``FOOTFALL_MODEL`` are relative to the working directory.
    """
    env = os.environ.get("FOOTFALL_MODEL")
    if override:
        chosen, origin = override, "--model"
    elif env:
        chosen, origin = env, "FOOTFALL_MODEL"
    else:
        chosen = config.weights
        origin = f"{config.source}: model.weights" if config.source else "model.weights"
    if not chosen:
        tried = default_weights_candidates(config)
        found = next((p for p in tried if p.is_file()), None)
        if found is not None:
            return found
        raise ConfigError(
            f"{origin}: no model given and no default model at {', '.join(map(str, tried))} "
            "(use --model PATH, FOOTFALL_MODEL or model.weights)"
        )
    path = Path(chosen).expanduser()
    if not path.exists():
        raise ConfigError(f"{origin}: {path} does not exist (weights are never downloaded)")
    return path


def _file_digest(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()[:12]


def cache_dir(config: ModelConfig) -> Path:
    base = config.cache_dir or os.environ.get("FOOTFALL_CACHE_DIR") or Path.home() / ".cache" / "footfall"
    path = Path(base).expanduser()
    path.mkdir(parents=True, exist_ok=True)
    return path


def export_model(weights: Path, backend: str, imgsz: tuple[int, int], cache: Path) -> Path:
    """The exported model for ``weights`` at ``imgsz``, exported once into ``cache``."""
    from ultralytics import YOLO

    suffix = {"onnx": ".onnx", "openvino": "_openvino_model"}[backend]
    stem = f"{weights.stem}-{_file_digest(weights)}-{imgsz[0]}x{imgsz[1]}"
    target = cache / f"{stem}{suffix}"
    if target.exists():
        return target
    # Export writes next to the .pt (the weights may lie on a read-only share), so export a copy in
    # a private folder and move the result into place: concurrent first runs cannot clash.
    with tempfile.TemporaryDirectory(dir=cache, prefix=".export-") as work:
        copy = Path(work) / f"{stem}.pt"
        shutil.copyfile(weights, copy)
        exported = Path(
            YOLO(str(copy)).export(format=backend, imgsz=list(imgsz), dynamic=False, simplify=True)
        )
        try:
            exported.rename(target)
        except OSError:
            if not target.exists():
                raise
    return target


def onnx_to_openvino(weights: Path, imgsz: tuple[int, int], cache: Path) -> Path:
    """An Ultralytics ONNX export converted once into an OpenVINO model with a fixed input of
    ``imgsz`` (OpenVINO converts ONNX itself: no torch), in Ultralytics' ``_openvino_model``
    layout so the same loader serves both. The ONNX file's metadata (names, stride, task) goes
    along into ``metadata.yaml``."""
    import ast

    import onnx
    import openvino as ov
    import yaml

    stem = f"{weights.stem}-{_file_digest(weights)}-{imgsz[0]}x{imgsz[1]}"
    target = cache / f"{stem}_openvino_model"
    if (target / f"{stem}.xml").exists():
        return target
    metadata: dict[str, Any] = {}
    for prop in onnx.load(str(weights), load_external_data=False).metadata_props:
        try:
            metadata[prop.key] = ast.literal_eval(prop.value)
        except (ValueError, SyntaxError):
            metadata[prop.key] = prop.value
    metadata.update(imgsz=list(imgsz), batch=1, dynamic=False)
    model = ov.convert_model(str(weights))
    model.reshape([1, 3, *imgsz])
    with tempfile.TemporaryDirectory(dir=cache, prefix=".convert-") as work:
        folder = Path(work) / target.name
        folder.mkdir()
        ov.save_model(model, str(folder / f"{stem}.xml"))
        (folder / "metadata.yaml").write_text(yaml.safe_dump(metadata), encoding="utf-8")
        try:
            folder.rename(target)
        except OSError:
            if not (target / f"{stem}.xml").exists():
                raise
    return target
