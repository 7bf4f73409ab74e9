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


@pytest.mark.slow
def test_the_edge_extra_installs_under_500_mib_without_torch(tmp_path: Path) -> None:
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
