"""Scene health on the dev clips: how soon each injected fault is reported and cleared, and what the
unmodified clips and lighting changes raise (the figures quoted in docs/edge.md).

The faulty recordings are the tests' (tests/scene_support.py): each clip played back and forth for
70 s, the fault from 20 s to 45 s. The unmodified clips run once, whole, at their own frame rate.

    .venv/bin/python bench/scene_faults.py [--shared ../shared] [--clips pets09_s2l1,venice2]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from footfall.edge.scene import SceneMonitor  # noqa: E402
from tests.scene_support import CLIPS, FAULTS, load_clip, recording, run_whole_clip  # noqa: E402

WINDOW = (20.0, 45.0)


def fault_row(video: Path, clip: str) -> list[str]:
    cells = []
    for fault in FAULTS:
        monitor, changes = SceneMonitor(), []
        for t, image in recording(load_clip(video, clip), 70.0, fault, WINDOW):
            changes += monitor.update(image, t)
        found = {(c.issue, c.state): c.t for c in changes}
        other = sorted({c.issue for c in changes} - {fault})
        start, end = found.get((fault, "started")), found.get((fault, "cleared"))
        cell = f"{start - WINDOW[0]:.1f} / {end - WINDOW[1]:.1f}" if start and end else "missed"
        cells.append(cell + (f" (+{','.join(other)})" if other else ""))
    return cells


def clean_row(video: Path, clip: str) -> list[str]:
    changes, n, fps = run_whole_clip(video, clip)
    cells = [f"{len(changes)} in {n / fps:.0f} s"]
    for light in ("lights_on", "daylight"):
        lit = SceneMonitor()
        raised = [
            c
            for t, image in recording(load_clip(video, clip), 70.0, light=light)
            for c in lit.update(image, t)
        ]
        cells.append(str(len(raised)))
    return cells


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--shared", type=Path, default=REPO.parent / "shared")
    parser.add_argument("--clips", default=",".join(CLIPS))
    args = parser.parse_args()
    video = args.shared / "data" / "video"
    print("| clip | " + " | ".join(FAULTS) + " | unmodified clip | lights on | daylight |")
    print("|---" * (len(FAULTS) + 4) + "|")
    for clip in args.clips.split(","):
        print(f"| {clip} | " + " | ".join(fault_row(video, clip) + clean_row(video, clip)) + " |", flush=True)
    print("fault cells: seconds from the fault's start to `started` / from its end to `cleared`")


if __name__ == "__main__":
    main()
