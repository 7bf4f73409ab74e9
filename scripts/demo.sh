#!/usr/bin/env bash
# The first-run command: installs footfall, then runs the whole pipeline on the bundled sample clip
# with the embedded store (no broker, no database) and writes an HTML report.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install.sh
export YOLO_OFFLINE=1 YOLO_VERBOSE=False
export YOLO_CONFIG_DIR=${YOLO_CONFIG_DIR:-$PWD/.venv/yolo-config}
.venv/bin/footfall demo "$@"
