#!/usr/bin/env bash
# Accuracy on the three dev clips, for the README table: footfall's defaults (the detection model
# at the default analysis rate and at every 3rd frame), and the detection model, the pose model and
# the oracle (annotated boxes) at every frame and at every 2nd frame. Needs ../shared (models and footage) beside the
# checkout.     bash bench/dev_clips_accuracy.sh [OUT_DIR]
set -uo pipefail
cd "$(dirname "$0")/.."
out=${1:-/tmp/footfall-dev-accuracy}
mkdir -p "$out"
shared=../shared
declare -A native=([pets09_s2l1]=10 [tud_campus]=25 [venice2]=30)
run() {  # clip model rate-label [eval options...]
  local clip=$1 model=$2 label=$3
  shift 3
  local args=(--config "edge/configs/$clip.yaml" --max-error 1 "$@")
  if [ "$model" = oracle ]; then args+=(--oracle); else args+=(--model "$shared/models/$model"); fi
  local log="$out/$clip-$model-$label.txt"
  echo "footfall eval $shared/data/video/$clip ${args[*]}" >"$log"
  /usr/bin/time -f "wall %e s, peak rss %M KiB" .venv/bin/footfall eval "$shared/data/video/$clip" "${args[@]}" >>"$log" 2>&1
  printf '%-12s %-16s %-8s %s\n' "$clip" "$model" "$label" "$(grep -E '^(OK|FAIL)' "$log" | head -1)"
}
for clip in pets09_s2l1 tud_campus venice2; do
  half=$(python3 -c "print(${native[$clip]} / 2)")
  third=$(python3 -c "print(${native[$clip]} / 3)")
  run "$clip" yolo11n.onnx default
  run "$clip" yolo11n.onnx third --fps "$third"
  for model in yolo11n.onnx yolo11n-pose.pt oracle; do
    run "$clip" "$model" every --fps 0
    run "$clip" "$model" half --fps "$half"
  done
done
