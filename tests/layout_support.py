"""A camera's layout at another resolution: the same scene seen by a camera with more or fewer pixels."""

from __future__ import annotations

from footfall.contracts.config import CameraConfig


def scaled_layout(camera: CameraConfig, factor: float) -> CameraConfig:
    """``camera`` with its lines and zones in pixels ``factor`` times larger."""

    def times(point: tuple[float, float]) -> tuple[float, float]:
        return (point[0] * factor, point[1] * factor)

    lines = [
        line.model_copy(
            update={"start": times(line.start), "end": times(line.end), "inside": times(line.inside)}
        )
        for line in camera.lines
    ]
    zones = [zone.model_copy(update={"polygon": [times(p) for p in zone.polygon]}) for zone in camera.zones]
    return camera.model_copy(update={"lines": lines, "zones": zones})
