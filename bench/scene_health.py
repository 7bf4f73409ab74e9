"""Scene health's cost per frame (edge/scene.py) against the frame budget.

The monitor runs on every pictured frame: a fingerprint of 32 rows (frozen), and every 0.5 s of media
time a thumbnail, the background median and the measures (once a second also ORB features for
"moved"). Frames are decoded first and held in memory (decoding is not timed), then fed at their
media times ``--loops`` times as one stream, so the reference is learned and refreshed as in a run.
The budget is one frame interval at the clip's own rate, the rate ``footfall count`` and ``edge run``
analyse when ``--fps`` is not given.

    .venv/bin/python bench/scene_health.py ../shared/data/video/venice2/Venice-2.mp4 --loops 3
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from footfall.edge.scene import SceneMonitor


def decode(path: str, limit: int) -> tuple[list[np.ndarray], float]:
    import cv2

    capture = cv2.VideoCapture(path)
    fps = capture.get(cv2.CAP_PROP_FPS) or 25.0
    frames: list[np.ndarray] = []
    while len(frames) < limit:
        ok, image = capture.read()
        if not ok:
            break
        frames.append(image)
    capture.release()
    if not frames:
        raise SystemExit(f"{path}: no frames decoded")
    return frames, fps


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("video")
    parser.add_argument("--loops", type=int, default=3, help="play the clip this many times as one stream")
    parser.add_argument("--frames", type=int, default=600, help="decode at most this many frames")
    parser.add_argument("--fps", type=float, default=None, help="analysis rate (default: the clip's own)")
    args = parser.parse_args()
    import cv2

    cv2.setNumThreads(1)  # the edge's other work (inference) owns the other cores
    frames, native = decode(args.video, args.frames)
    fps = args.fps or native
    monitor, costs, issues = SceneMonitor(), [], 0
    for k in range(args.loops * len(frames)):
        image = frames[k % len(frames)]
        t0 = time.perf_counter()
        issues += len(monitor.update(image, k / fps))
        costs.append(time.perf_counter() - t0)
    ms = np.array(costs) * 1000
    budget = 1000 / fps
    h, w = frames[0].shape[:2]
    print(f"{args.video}: {w}x{h}, {len(ms)} frames at {fps:g} fps (budget {budget:.1f} ms a frame)")
    print(
        f"scene health per frame: mean {ms.mean():.2f} ms ({100 * ms.mean() / budget:.1f} % of the budget), "
        f"median {np.median(ms):.2f} ms, p99 {np.percentile(ms, 99):.2f} ms, max {ms.max():.2f} ms"
    )
    sampled = ms[ms > 3 * np.median(ms)]
    if len(sampled):
        print(f"frames with an evaluation: {len(sampled)}, mean {sampled.mean():.2f} ms")
    print(f"issues reported on the unmodified clip: {issues}")


if __name__ == "__main__":
    main()
