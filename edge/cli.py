"""Subcommands of the edge component: ``count``, ``preview`` and ``eval``."""

from __future__ import annotations

import dataclasses
import json
import statistics
import time
from collections import Counter as Tally
from collections import defaultdict
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from footfall.contracts.config import PERSON_PX_WARN_SHARE, CameraConfig, ConfigError, load_config
from footfall.contracts.events import Event, HeartbeatEvent

if TYPE_CHECKING:
    from footfall.edge.evaluation import Report

ConfigOpt = Annotated[Path, typer.Option("--config", "-c", help="Camera YAML (lines, zones, model).")]
ModelOpt = Annotated[
    str | None,
    typer.Option(
        "--model", help="Weights path; overrides FOOTFALL_MODEL and model.weights.", show_default=False
    ),
]
FpsOpt = Annotated[
    float | None,
    typer.Option(
        "--fps",
        help="Process about this many frames a second (every n-th frame of a faster recording, as a "
        "CPU box samples a camera); default model.analysis_fps (15), 0 = every frame. The frame rate "
        "of a folder without seqinfo.ini.",
        show_default=False,
    ),
]


def _parse_start(value: str | None) -> datetime | None:
    if value is None:
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise ConfigError(f"--start: not an ISO 8601 / RFC 3339 time: {value!r}") from None
    if parsed.tzinfo is None:
        raise ConfigError(f"--start: give a UTC offset, e.g. {value}Z")
    return parsed


def _show_start_up_choices() -> None:
    """The input-size plan (edge/scale.py) is logged once per camera: show it on stderr."""
    import logging

    logging.basicConfig(format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger("footfall.edge.scale").setLevel(logging.INFO)


def _recording_fps(source: str, fps: float | None, camera: CameraConfig) -> float | None:
    """--fps, else the camera's model.analysis_fps for a recording whose own rate is known (a file,
    or a frame folder with seqinfo.ini); 0 means every frame."""
    from footfall.edge.sources import sequence_info

    path = Path(source)
    known_rate = path.is_file() or (path.is_dir() and "framerate" in sequence_info(path))
    if fps is None and known_rate:
        fps = camera.model.analysis_fps
    return fps or None


def _open(source: str, fps: float | None) -> Any:
    from footfall.edge.sources import SourceError, open_source

    try:
        return open_source(source, fps=fps)
    except SourceError as exc:
        raise ConfigError(f"SOURCE: {exc}") from None


def register(app: typer.Typer) -> None:
    """Add this component's commands to the ``footfall`` CLI."""
    app.command()(count)
    app.command()(preview)
    app.command("eval")(eval_)


def count(
    source: Annotated[str, typer.Argument(help="Video file, RTSP/HTTP URL, USB index or frame folder.")],
    config: ConfigOpt,
    out: Annotated[Path, typer.Option("--out", "-o", help="Write events here, one JSON per line.")],
    annotate: Annotated[
        Path | None, typer.Option(help="Also write a video with lines, zones, tracks and counters.")
    ] = None,
    model: ModelOpt = None,
    start: Annotated[
        str | None, typer.Option(help="Media time origin (RFC 3339); default: now.", show_default=False)
    ] = None,
    fps: FpsOpt = None,
) -> None:
    """Count people crossing lines and visiting zones in a recording; write events as JSONL."""
    from rich.console import Console

    from footfall.edge.detector import load_model
    from footfall.edge.pipeline import run_frames

    camera = load_config(config, CameraConfig)
    loaded = load_model(camera.model, model)  # a missing or unusable model fails before --out is cut
    _show_start_up_choices()
    frames = _open(source, _recording_fps(source, fps, camera))
    writer = None
    totals = _Totals()
    total = getattr(frames, "frame_count", None)
    out.parent.mkdir(parents=True, exist_ok=True)
    with (
        out.open("w", encoding="utf-8") as sink,
        _counting_progress() as progress,
    ):
        task = progress.add_task("count", total=total, fps=0.0)
        t0 = time.monotonic()
        n = analysed = 0
        outcomes = run_frames(
            frames, camera, model=loaded, start=_parse_start(start), keep_images=annotate is not None
        )
        for outcome in outcomes:
            for event in outcome.events:
                sink.write(event.to_json() + "\n")
                totals.add(event)
            if annotate is not None and outcome.pictured:
                writer = _write_annotated(writer, annotate, frames, outcome, camera, totals.crossings)
            n += outcome.pictured
            analysed += outcome.analysed
            progress.update(task, advance=1, fps=n / max(time.monotonic() - t0, 1e-9))
    if writer is not None:
        writer.release()
    console = Console()
    console.print(_summary_table(camera, totals.crossings, totals.dwell, n, out))
    console.print(f"inference ran on {analysed} of {n} frames (the motion gate skipped static, empty ones)")
    console.print(totals.people_size())


@dataclasses.dataclass
class _Totals:
    """What ``footfall count`` sums up at the end of a recording."""

    crossings: Tally[tuple[str, str]] = dataclasses.field(default_factory=Tally)
    dwell: dict[str, list[float]] = dataclasses.field(default_factory=lambda: defaultdict(list))
    people_px: list[float] = dataclasses.field(default_factory=list)  # the heartbeats' person_px
    detector_input: str | None = None
    person_px_aim: int | None = None

    def add(self, event: Event) -> None:
        if event.type == "crossing":
            self.crossings[(event.line, event.direction)] += 1
        elif event.type == "zone_visit":
            self.dwell[event.zone].append(event.dwell_s)
        elif isinstance(event, HeartbeatEvent) and event.person_px is not None:
            self.people_px.append(event.person_px)
            self.detector_input, self.person_px_aim = event.detector_input, event.person_px_aim

    def people_size(self) -> str:
        """How tall the people near the layout were at the detector's input, as the ops dashboard's
        alert judges a camera (the median of its heartbeats): an installer's check of a placement."""
        if not self.people_px or self.person_px_aim is None:
            return "people near the lines and zones at the detector's input: no heartbeat saw any"
        median = statistics.median(self.people_px)
        share = median / self.person_px_aim
        said = (
            f"people near the lines and zones: {median:.1f} px at the detector's {self.detector_input} "
            f"input (each heartbeat's smallest tenth, the median of {len(self.people_px)}; aim "
            f"{self.person_px_aim} px, {share:.0%} of it)"
        )
        if share >= PERSON_PX_WARN_SHARE:
            return said
        return said + (
            ": too small, the model will miss people. Draw the lines and zones where people look "
            "larger, or raise model.max_imgsz (CPU time)"
        )


def preview(
    source: Annotated[str, typer.Argument(help="Video file, RTSP/HTTP URL, USB index or frame folder.")],
    config: ConfigOpt,
    out: Annotated[Path, typer.Option("--out", "-o", help="PNG/JPEG to write.")],
    frame: Annotated[int, typer.Option(help="Which frame of a recording to draw on.")] = 0,
    fps: FpsOpt = None,
) -> None:
    """One frame with the configured lines (arrow toward "in"), zones and pixel rulers."""
    import cv2

    from footfall.edge.annotate import draw_layout, draw_rulers

    camera = load_config(config, CameraConfig)
    frames = _open(source, fps)
    image = None
    try:
        for f in frames:
            if f.image is not None and f.index >= frame:
                image = f.image.copy()
                break
    finally:
        frames.close()
    if image is None:
        raise ConfigError(f"--frame: the source has fewer than {frame + 1} frames")
    draw_rulers(image)
    draw_layout(image, camera)
    out.parent.mkdir(parents=True, exist_ok=True)
    if not cv2.imwrite(str(out), image):
        raise ConfigError(f"--out: cannot write an image to {out}")
    typer.echo(f"wrote {out} ({image.shape[1]}x{image.shape[0]})")


def eval_(
    sequence: Annotated[Path, typer.Argument(help="MOTChallenge sequence: gt/gt.txt + img1/ or a video.")],
    config: ConfigOpt,
    model: ModelOpt = None,
    max_error: Annotated[float, typer.Option(help="Fail (exit 1) above this summed |error| / truth.")] = 0.10,
    tolerance: Annotated[float, typer.Option(help="Seconds within which events match.")] = 1.0,
    out: Annotated[Path | None, typer.Option(help="Also write the counted events as JSONL.")] = None,
    fps: FpsOpt = None,
    oracle: Annotated[
        bool,
        typer.Option(help="Annotated boxes as detections: leaves only tracker and counter errors."),
    ] = False,
    min_dwell: Annotated[float, typer.Option(help="Zone visits at least this long (s) count.")] = 1.0,
    json_out: Annotated[
        Path | None, typer.Option("--json", help="Also write the report as JSON (for scripts).")
    ] = None,
) -> None:
    """Accuracy audit against ground-truth crossings and zone visits derived from gt.txt with the
    same rule: per line and direction misses, false counts and wrong directions; per zone the
    visits and the median dwell."""
    from footfall.edge.groundtruth import SequenceError, find_sequence
    from footfall.edge.models import resolve_weights

    camera = load_config(config, CameraConfig)
    _show_start_up_choices()
    if not oracle:
        resolve_weights(camera.model, model)
    try:
        seq = find_sequence(sequence)
    except SequenceError as exc:
        raise ConfigError(str(exc)) from None
    report = run_eval(
        seq,
        camera,
        weights=model,
        fps=fps,
        tolerance_s=tolerance,
        events_out=out,
        oracle=oracle,
        min_dwell_s=min_dwell,
    )
    if json_out is not None:
        settings = {"sequence": str(sequence), "fps": fps, "oracle": oracle, "tolerance_s": tolerance}
        settings |= {"min_dwell_s": min_dwell, "max_error": max_error}
        json_out.write_text(json.dumps(settings | report.as_dict(), indent=2) + "\n")
    mode = " (oracle: annotated boxes)" if oracle else ""
    rate = f" at {report.analysed_fps:g} of {report.native_fps:g} frames/s"
    if not _print_eval(report, f"{sequence.name}{rate}{mode}", min_dwell, max_error, tolerance):
        raise typer.Exit(1)


def _print_eval(report: Report, title: str, min_dwell: float, max_error: float, tolerance: float) -> bool:
    """The audit's tables and summary lines; whether the summed error is within ``max_error``."""
    from rich.console import Console

    console = Console()
    console.print(_eval_table(report, title))
    if report.errors:
        console.print(_errors_table(report))
    if report.zones:
        console.print(_zone_table(report, min_dwell))
    if report.set_aside_crossings or report.set_aside_visits:
        console.print(
            f"set aside: {report.set_aside_crossings} crossings and {report.set_aside_visits} zone visits "
            "by people the annotation marks as static, on a vehicle, a reflection or a distractor "
            "(neither matched nor false, as the benchmark's own evaluation treats them)"
        )
    if report.identity is not None:
        ident = report.identity
        console.print(
            f"identities: IDF1 {ident.idf1:.1%} (IDP {ident.idp:.1%}, IDR {ident.idr:.1%}): "
            f"{ident.idtp} of {ident.annotated} annotated boxes and {ident.tracked} tracked ones on the "
            "frames analysed are one annotated person under the person id paired with them"
        )
        console.print(
            f"  of the annotated boxes, matched one-to-one on their frame: {ident.followed} under "
            f"their person's id, {ident.switched} under another person's (swaps, people joined), "
            f"{ident.fragments} under an id that is nobody else's (pieces not joined), "
            f"{ident.unmatched} with no tracked box (IoU 0.5)"
        )
    passed = report.relative_error <= max_error
    console.print(
        f"{'OK' if passed else 'FAIL'}: error {report.relative_error:.1%} (limit {max_error:.0%}); "
        f"missed {report.total('missed')}, false {report.total('false')}, "
        f"wrong direction {report.total('wrong_direction')} of {report.truth_total}; "
        f"precision {report.precision:.1%}, recall {report.recall:.1%} within {tolerance:g} s"
    )
    return passed


def run_eval(
    seq: Any,
    camera: CameraConfig,
    *,
    weights: str | None = None,
    fps: float | None = None,
    tolerance_s: float = 1.0,
    events_out: Path | None = None,
    oracle: bool = False,
    min_dwell_s: float = 1.0,
    detector: Any = None,
) -> Report:
    """Derive the truth from ``seq``'s gt.txt, run the pipeline on its media (sampled to ``fps``),
    compare. ``oracle`` feeds the annotated boxes instead of the model's detections; ``detector``
    (a ``FrameDetector``) one the caller set up, such as a model with a given input plan."""
    from footfall.edge.evaluation import evaluate, score_zones, set_aside
    from footfall.edge.groundtruth import (
        OracleDetector,
        distractor_sightings,
        gt_events,
        match_tracked,
        score_identity,
    )
    from footfall.edge.pipeline import run_frames

    frames = _open(str(seq.media), _recording_fps(str(seq.media), fps, camera))
    native_fps = getattr(frames, "native_fps", frames.fps)
    rows, distractors = seq.annotated(frames.size[0])
    truth, truth_visits = gt_events(rows, camera, native_fps)
    detector = OracleDetector(rows) if oracle else detector
    counted, visits, tracked = [], [], []
    sink = events_out.open("w", encoding="utf-8") if events_out else None
    try:
        for outcome in run_frames(frames, camera, weights=weights, detector=detector):
            counted += outcome.result.crossings
            visits += outcome.result.visits
            if not outcome.final:
                tracked.append(
                    (outcome.frame.index, outcome.frame.t, outcome.tracks.ids, outcome.tracks.xyxy)
                )
            if sink is not None:
                sink.writelines(e.to_json() + "\n" for e in outcome.events)
    finally:
        if sink is not None:
            sink.close()
    matched = match_tracked(tracked, rows, distractors)  # once for the set-aside and the identities
    sightings = distractor_sightings(matched)
    (counted, visits), (aside_crossings, aside_visits) = set_aside(counted, visits, sightings, tolerance_s)
    zones = score_zones(camera.zones, truth_visits, visits, min_dwell_s)
    report = evaluate(camera.lines, truth, counted, tolerance_s, zones)
    return dataclasses.replace(
        report,
        native_fps=native_fps,
        analysed_fps=frames.fps,
        set_aside_crossings=len(aside_crossings),
        set_aside_visits=sum(v.dwell_s >= min_dwell_s for v in aside_visits),
        identity=score_identity(matched),
    )


def _counting_progress() -> Any:
    """A bar with frames done of the total (when the source knows it), frames/s and time left."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    rate = TextColumn("{task.fields[fps]:.1f} fps")
    columns = (TextColumn("[bold]counting"), BarColumn(), MofNCompleteColumn(), rate, TimeRemainingColumn())
    return Progress(*columns, transient=True)


def _write_annotated(
    writer: Any, path: Path, frames: Any, outcome: Any, camera: CameraConfig, counts: Tally[tuple[str, str]]
) -> Any:
    import cv2

    from footfall.edge.annotate import draw_layout, draw_tracks

    image = outcome.frame.image.copy()
    draw_layout(image, camera, counts, outcome.counter.occupancy)
    draw_tracks(image, outcome.tracks)
    if writer is None:
        path.parent.mkdir(parents=True, exist_ok=True)
        writer = cv2.VideoWriter(str(path), cv2.VideoWriter.fourcc(*"mp4v"), frames.fps, frames.size)
        if not writer.isOpened():
            raise ConfigError(f"--annotate: cannot write a video to {path}")
    writer.write(image)
    return writer


def _summary_table(
    camera: CameraConfig,
    crossings: Tally[tuple[str, str]],
    dwell: dict[str, list[float]],
    frames: int,
    out: Path,
) -> Any:
    from rich.table import Table

    table = Table(title=f"{camera.store}/{camera.camera}: {frames} frames -> {out}")
    table.add_column("line / zone")
    table.add_column("kind")
    table.add_column("in", justify="right")
    table.add_column("out", justify="right")
    table.add_column("visits", justify="right")
    table.add_column("median dwell s", justify="right")
    for line in camera.lines:
        table.add_row(
            line.name, line.kind, str(crossings[(line.name, "in")]), str(crossings[(line.name, "out")])
        )
    for zone in camera.zones:
        times = dwell.get(zone.name, [])
        median = f"{statistics.median(times):.1f}" if times else "-"
        table.add_row(zone.name, "zone", "", "", str(len(times)), median)
    return table


_EVAL_COLUMNS = ("truth", "counted", "matched", "missed", "false", "wrong_direction")


def _eval_table(report: Report, title: str) -> Any:
    from rich.table import Table

    table = Table(title=f"accuracy: {title}")
    for name in ("line", "direction", *(c.replace("_", " ") for c in _EVAL_COLUMNS), "error"):
        table.add_column(name, justify="left" if name in ("line", "direction") else "right")
    for row in report.rows:
        cells = [str(getattr(row, c)) for c in _EVAL_COLUMNS]
        table.add_row(row.line, row.direction, *cells, f"{row.error:+d}")
    totals = [str(report.total(c)) for c in _EVAL_COLUMNS]
    table.add_row("total", "", *totals, f"|{report.abs_error}|")
    return table


# The printed audit lists this many unmatched crossings; --json lists them all.
ERRORS_SHOWN = 20


def _errors_table(report: Report) -> Any:
    """The unmatched crossings one by one: where to look in the recording, and whose they are."""
    from rich.table import Table

    shown = report.errors[:ERRORS_SHOWN]
    more = (
        f" (the first {len(shown)} of {len(report.errors)}: --json lists all)"
        if len(shown) < len(report.errors)
        else ""
    )
    table = Table(title=f"crossings not matched{more}")
    # Frames are counted from 0, as footfall's events count them (gt.txt's frame numbers minus 1).
    for name in ("time s", "frame (from 0)", "line", "direction", "error", "annotated person", "footfall id"):
        table.add_column(name, justify="right" if name in ("time s", "frame (from 0)") else "left")
    for e in shown:
        ids = ["-" if v is None else str(v) for v in (e.person, e.track)]
        table.add_row(f"{e.t:.2f}", str(e.frame), e.line, e.direction, e.kind.replace("_", " "), *ids)
    return table


def _zone_table(report: Report, min_dwell_s: float) -> Any:
    from rich.table import Table

    def seconds(value: float | None) -> str:
        return "-" if value is None else f"{value:.1f}"

    table = Table(title=f"zone visits of at least {min_dwell_s:g} s")
    for name in ("zone", "truth visits", "counted", "error", "median dwell truth", "counted", "error"):
        table.add_column(name, justify="left" if name == "zone" else "right")
    for z in report.zones:
        dwell_error = "-" if z.dwell_error is None else f"{z.dwell_error:.0%}"
        table.add_row(
            z.zone,
            str(z.truth_visits),
            str(z.counted_visits),
            f"{z.visit_error:.0%}",
            seconds(z.truth_median_dwell_s),
            seconds(z.counted_median_dwell_s),
            dwell_error,
        )
    return table
