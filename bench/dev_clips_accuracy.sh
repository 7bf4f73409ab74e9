#!/usr/bin/env bash
# Accuracy on the three dev clips with footfall's defaults, for the README table: every clip at
# its native rate and at half of it, with the default detection model and with the pose model,
# plus the oracle (annotated boxes). Needs ../shared (models and footage) beside the checkout.
#   bash bench/dev_clips_accuracy.sh [OUT_DIR]
set -uo pipefail
cd "$(dirname "$0")/.."
out=${1:-/tmp/footfall-dev-accuracy}
mkdir -p "$out"
shared=../shared
declare -A native=([pets09_s2l1]=10 [tud_campus]=25 [venice2]=30)
for clip in pets09_s2l1 tud_campus venice2; do
  for model in yolo11n.onnx yolo11n-pose.pt oracle; do
    for rate in 1 2; do
      fps=$(python3 -c "print(${native[$clip]} / $rate)")
      args=(--config "edge/configs/$clip.yaml" --max-error 1)
      [ "$rate" = 2 ] && args+=(--fps "$fps")
      if [ "$model" = oracle ]; then args+=(--oracle); else args+=(--model "$shared/models/$model"); fi
      log="$out/$clip-$model-every$rate.txt"
      echo "footfall eval $shared/data/video/$clip ${args[*]}" >"$log"
      /usr/bin/time -f "wall %e s, peak rss %M KiB" .venv/bin/footfall eval "$shared/data/video/$clip" "${args[@]}" >>"$log" 2>&1
      printf '%-12s %-16s every %s: %s\n' "$clip" "$model" "$rate" "$(grep -E '^(OK|FAIL)' "$log" | head -1)"
    done
  done
done
