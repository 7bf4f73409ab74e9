"""The slim edge install: ``pip install "<checkout>[edge]"`` into a fresh venv, for real (from PyPI,
through pip's cache), must stay <= 500 MiB and bring neither torch nor Ultralytics."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
LIMIT_MIB = 500
# Never in the edge's dependency tree: the model stack the export extra brings.
FORBIDDEN = {"torch", "torchvision", "ultralytics", "onnx", "onnxslim"}


def installed_mib(root: Path) -> float:
    """What ``du`` counts: allocated blocks, each hard-linked file once, links not followed."""
    seen: set[tuple[int, int]] = set()
    total = 0
    for folder, _, files in os.walk(root):
        for name in files:
            info = os.lstat(Path(folder) / name)
            if (info.st_dev, info.st_ino) not in seen:
                seen.add((info.st_dev, info.st_ino))
                total += info.st_blocks * 512
    return total / 2**20


def _copy_checkout(target: Path) -> Path:
    # pip builds a local project in its folder (build/, *.egg-info): build from a copy instead.
    skip = shutil.ignore_patterns(
        ".git", ".venv", "build", "*.egg-info", "__pycache__", ".*_cache", "footfall-demo"
    )
    shutil.copytree(REPO, target, ignore=skip)
    return target


def _run(*command: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(c) for c in command], capture_output=True, text=True, timeout=900, check=False)


def _venice_folder(video_dir: Path, folder: Path, frames: int) -> Path:
    """The first pictures of the 1080p Venice-2 clip as a frame folder (fps in seqinfo.ini)."""
    import cv2

    folder.mkdir()
    capture = cv2.VideoCapture(str(video_dir / "venice2" / "Venice-2.mp4"))
    for k in range(frames):
        ok, image = capture.read()
        assert ok
        cv2.imwrite(str(folder / f"{k + 1:06d}.jpg"), image)
    (folder / "seqinfo.ini").write_text("[Sequence]\nframeRate=30\n")
    return folder


@pytest.mark.slow
def test_the_edge_extra_installs_under_500_mib_without_torch(
    tmp_path: Path, detect_model_path: Path, video_dir: Path
) -> None:
    source = _copy_checkout(tmp_path / "footfall")
    venv = tmp_path / "venv"
    made = _run(sys.executable, "-m", "venv", venv)
    assert made.returncode == 0, made.stderr
    python = venv / "bin" / "python"
    install = _run(python, "-m", "pip", "install", "--disable-pip-version-check", "-q", f"{source}[edge]")
    assert install.returncode == 0, install.stderr[-3000:]

    size = installed_mib(venv)
    assert size <= LIMIT_MIB, f"the edge install takes {size:.0f} MiB"
    listed = _run(python, "-m", "pip", "list", "--format=json", "--disable-pip-version-check")
    names = {entry["name"].lower() for entry in json.loads(listed.stdout)}
    assert {"footfall", "onnxruntime", "opencv-python-headless"} <= names
    assert not names & FORBIDDEN
    probe = "import importlib.util as u; print([m for m in ('torch', 'ultralytics') if u.find_spec(m)])"
    assert _run(python, "-c", probe).stdout.strip() == "[]"
    # The CLI starts, and the model commands are there, without the model stack.
    assert _run(venv / "bin" / "footfall", "model", "--help").returncode == 0
    # ... and counts 1080p pictures with the ONNX model, in that venv, torch-free.
    folder = _venice_folder(video_dir, tmp_path / "venice", 45)
    config = REPO / "edge" / "configs" / "venice2.yaml"
    out = tmp_path / "events.jsonl"
    count = _run(
        venv / "bin" / "footfall",
        "count",
        folder,
        "--config",
        config,
        "--model",
        detect_model_path,
        "--out",
        out,
    )
    assert count.returncode == 0, count.stderr[-3000:]
    assert "detector input" in count.stderr  # the planned input size was logged
    assert '"type":"occupancy"' in out.read_text().replace(" ", "")
