#!/usr/bin/env bash
# Installs footfall and its Python dependencies into a virtual environment (default .venv).
#   EXTRAS=test bash scripts/install.sh   # also the test tools
set -euo pipefail
cd "$(dirname "$0")/.."
venv=${FOOTFALL_VENV:-.venv}
python=${PYTHON:-python3}
[ -x "$venv/bin/python" ] || "$python" -m venv "$venv"
"$venv/bin/python" -m pip install -q --disable-pip-version-check --upgrade pip
# ultralytics imports torchvision at start-up; this torch/torchvision pair imports together and runs
# on the CPU (on the project's build machines both come from local wheels, elsewhere from PyPI).
if ! "$venv/bin/python" -c "import torch, torchvision" >/dev/null 2>&1; then
  # That pair is a CUDA build: about 6.5 GiB once installed, more while pip unpacks it. Say so
  # plainly instead of failing half-way with pip's "No space left on device".
  need_gib=8
  free_gib=$(df -Pk "$venv" | awk 'NR==2 {print int($4 / 1048576)}')
  if [ "$free_gib" -lt "$need_gib" ] && [ -z "${FOOTFALL_SKIP_DISK_CHECK:-}" ]; then
    echo "install.sh: torch + torchvision need about ${need_gib} GiB free under $venv; only ${free_gib} GiB is." >&2
    echo "  Free some space (or set FOOTFALL_SKIP_DISK_CHECK=1 to try anyway)." >&2
    exit 1
  fi
  "$venv/bin/python" -m pip install -q --disable-pip-version-check torch==2.14.1 torchvision==0.29.1
fi
extras="edge${EXTRAS:+,$EXTRAS}"
"$venv/bin/python" -m pip install -q --disable-pip-version-check -e ".[$extras]"
echo "footfall installed in $venv ($("$venv/bin/footfall" --help >/dev/null && echo ok))"
