"""Typed, strict configuration shared by the components.

Every model forbids unknown keys. ``load_config`` turns any problem into a ``ConfigError`` that
names the file and the key path, e.g. ``camera.yaml: lines.0.kind: Input should be 'entrance'...``.
Relative file paths in a YAML file (``model.weights``, ``model.cache_dir``) are relative to the
folder of that file, so a config works whatever the working directory.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal, TypeVar
from urllib.parse import unquote, urlsplit

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from footfall.contracts.events import LineKind, Name
from footfall.contracts.tls import TlsFiles

if TYPE_CHECKING:
    import paho.mqtt.client as mqtt

M = TypeVar("M", bound=BaseModel)
# People near a camera's lines and zones shorter than this share of ``model.person_px`` at the
# detector's input are too small for it: the start-up log warns (a little under the aim costs little:
# on Venice-2, 52 px instead of 64 cost a crossing or two; far less loses people), and so does the ops
# dashboard's alert when a camera's heartbeats report them so for an hour.
PERSON_PX_WARN_SHARE = 0.8
# ... judged over this long (the median of the heartbeats' people size), and only when at least this
# many of its heartbeats saw someone near the layout: one or two beats of a quiet hour would decide.
# The ops alert fires on it; the edge then plans its input again (``model.replan_after_s``).
PEOPLE_SIZE_WINDOW_S = 3600
PEOPLE_SIZE_MIN_BEATS = 12


class ConfigError(ValueError):
    """A configuration file or value that cannot be used; the message names file and key."""


class StrictModel(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _read_yaml(path: Path) -> Any:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror or exc}") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from None
    return data if data is not None else {}


def load_config(path: str | Path, model: type[M]) -> M:
    path = Path(path)
    return validate_config(_read_yaml(path), model, source=str(path), base_dir=path.parent)


def load_edge_config(path: str | Path) -> CameraConfig | StoreConfig:
    """A camera file (one camera, its source given on the command line) or a store file (a
    ``cameras:`` list, each with its source)."""
    path = Path(path)
    data = _read_yaml(path)
    kind: type[CameraConfig] | type[StoreConfig] = (
        StoreConfig if isinstance(data, dict) and "cameras" in data else CameraConfig
    )
    return validate_config(data, kind, source=str(path), base_dir=path.parent)


def validate_config(data: Any, model: type[M], *, source: str, base_dir: str | Path | None = None) -> M:
    """Validate ``data`` from ``source``; relative paths resolve against ``base_dir`` when given."""
    context = {"source": source, "base_dir": Path(base_dir).absolute() if base_dir is not None else None}
    try:
        return model.model_validate(data, context=context)
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            key = ".".join(str(p) for p in err["loc"]) or "(top level)"
            msg = "unknown key" if err["type"] == "extra_forbidden" else err["msg"]
            problems.append(f"{source}: {key}: {msg}")
        raise ConfigError("\n".join(problems)) from None


Pixel = Annotated[tuple[float, float], Field(description="x, y in pixels of the source's native resolution")]


class LineConfig(StrictModel):
    name: Name
    kind: LineKind = "entrance"
    start: Pixel
    end: Pixel
    # Any pixel on the "in" side; moving toward it is direction "in".
    inside: Pixel

    @model_validator(mode="after")
    def _check_geometry(self) -> LineConfig:
        (x1, y1), (x2, y2), (px, py) = self.start, self.end, self.inside
        if (x1, y1) == (x2, y2):
            raise ValueError("start and end are the same point")
        if abs((x2 - x1) * (py - y1) - (y2 - y1) * (px - x1)) < 1e-9:
            raise ValueError("inside lies on the line itself; pick a pixel clearly on the 'in' side")
        return self


class ZoneConfig(StrictModel):
    name: Name
    polygon: list[Pixel] = Field(min_length=3)


class ModelConfig(StrictModel):
    # Path to Ultralytics weights (.pt detection or pose; or an exported .onnx / _openvino_model).
    weights: str | None = None
    # Model input size: long side (int) or (height, width). Unset: chosen from the people the
    # camera shows (see person_px), which is what a 720p, 1080p or 4K camera needs.
    imgsz: int | tuple[int, int] | None = None
    # With imgsz: detect on this part of the picture only, (x1, y1, x2, y2) pixels. The planned
    # input depends on who is in view when the camera starts (README, "Counting on the dev
    # clips"); copying the crop and input the start-up log prints into these two keys makes a
    # restarted camera detect exactly as before.
    crop: tuple[int, int, int, int] | None = None
    # Automatic input size: people near the lines and zones should be about this tall (pixels)
    # at the model input; nano models lose people much below it.
    person_px: int = Field(default=64, ge=16, le=640)
    # ... but the input's long side never exceeds this (the CPU's budget) nor the camera's own.
    max_imgsz: int = Field(default=1280, ge=64, le=8192)
    # When the people near the lines and zones stayed too small at the planned input for this long
    # (as the ops dashboard's alert judges it: PERSON_PX_WARN_SHARE of person_px), the detector
    # plans its input again from the people it saw lately (a plan made from a start's first few
    # people, or before the camera was turned). Seconds; 0: never. A pinned imgsz is never planned.
    # It must hold PEOPLE_SIZE_MIN_BEATS heartbeats (2 minutes at the default 10 s beat).
    replan_after_s: float = Field(default=PEOPLE_SIZE_WINDOW_S, ge=0)
    # Recordings are analysed at most this many frames a second (every n-th frame of a faster
    # file; --fps overrides, 0 = every frame). Walkers move a few centimetres between frames at
    # 15 fps and every rule is in seconds, so counts hold while the CPU cost halves for 30 fps
    # cameras (README, "Accuracy"). Live cameras are read newest-frame-first and drop what the
    # CPU cannot take anyway.
    analysis_fps: float = Field(default=15.0, ge=0, le=1000)
    # Detect on a crop around the lines and zones (people near them, with a margin of their
    # height) instead of the whole picture: fewer pixels, so a larger scale for the same cost.
    crop_to_layout: bool = True
    conf: float = Field(default=0.25, gt=0, lt=1)
    iou: float = Field(default=0.7, gt=0, lt=1)
    # A new track starts only from a detection at least this confident (never below conf); tracks
    # go on with weaker ones (ByteTrack's second stage). Fleeting low-confidence boxes otherwise
    # start short spurious tracks that the linker then has to tell from real people.
    track_new_conf: float = Field(default=0.4, gt=0, lt=1)
    backend: Literal["auto", "onnx", "openvino"] = "auto"
    tracker: Literal["bytetrack"] = "bytetrack"
    device: str = "cpu"
    threads: int | None = Field(default=None, ge=1)
    # Where exported ONNX/OpenVINO models are cached (default: $FOOTFALL_CACHE_DIR or ~/.cache/footfall).
    cache_dir: str | None = None
    # Pose models: ankles at least this confident give the ground point, else the box's bottom-centre.
    keypoint_conf: float = Field(default=0.5, gt=0, lt=1)
    # Skip inference on frames without motion while nobody is tracked (an empty shop at night).
    motion_gating: bool = True
    # Count people riding a bicycle or a motorbike too. Off: footfall counts pedestrians, and a
    # person whose box sits on a detected bicycle or motorbike is left out (detection models with
    # those classes only; edge/detector.py ``riders``).
    count_riders: bool = False
    _source: str | None = PrivateAttr(default=None)

    @field_validator("weights", "cache_dir")
    @classmethod
    def _relative_to_config_file(cls, value: str | None, info: ValidationInfo) -> str | None:
        base = (info.context or {}).get("base_dir")
        if value is None or base is None or Path(value).expanduser().is_absolute():
            return value
        return str(base / value)

    @model_validator(mode="after")
    def _crop_is_a_box_with_an_input(self) -> ModelConfig:
        if self.crop is None:
            return self
        x1, y1, x2, y2 = self.crop
        if min(self.crop) < 0 or x2 <= x1 or y2 <= y1:
            raise ValueError(
                f"crop: expected [x1, y1, x2, y2] with 0 <= x1 < x2 and 0 <= y1 < y2, got {self.crop}"
            )
        if self.imgsz is None:
            raise ValueError("crop: set imgsz as well (the start-up log prints both)")
        return self

    @model_validator(mode="after")
    def _remember_source(self, info: ValidationInfo) -> ModelConfig:
        source = (info.context or {}).get("source")
        if source is not None:  # a model built in code around loaded settings keeps their file
            self._source = source
        return self

    @property
    def source(self) -> str | None:
        """The file these settings came from (for error messages), if any."""
        return self._source


class CountingConfig(StrictModel):
    """The line-crossing and zone state machine (defaults are resolution- and frame-rate-independent)."""

    # The ground point must be this far past a line, as a fraction of the person's box height
    # (at least min_hysteresis_px), before a crossing can be confirmed: jitter on the line never counts.
    hysteresis: float = Field(default=0.1, ge=0, le=2)
    min_hysteresis_px: float = Field(default=2.0, ge=0)
    # ... widened for a track whose ground point moves unpredictably (box bottoms jumping with legs,
    # bags and people in front; tracks picked up again after a gap) to this many times its own
    # noise, up to max_hysteresis of the height (edge/counting.py, _Jitter).
    jitter_sigmas: float = Field(default=3.0, ge=0, le=10)
    max_hysteresis: float = Field(default=0.2, ge=0, le=2)
    # Observations beyond the hysteresis band on the new side that confirm a crossing, spanning at
    # least confirm_s: at 25-30 fps a detector's box bottom jumps past the band for a frame or two
    # (a bag, a leg, a box cut short), and two observations are only 0.03-0.04 s apart. At 10 fps
    # and below two observations already span it.
    confirm_frames: int = Field(default=2, ge=1, le=100)
    confirm_s: float = Field(default=0.1, ge=0, le=10)
    # One person boxed twice (whole and upper body: their overlap is under NMS's IoU) makes two
    # tracks that cross a line together; the second crossing within this long, by a track whose box
    # top is where the first's is and whose box is clearly shorter, does not count (0: off; the
    # audit's truth, one annotated box per person, is counted with 0). edge/counting.py, TWIN_*.
    twin_s: float = Field(default=1.0, ge=0, le=10)
    # A track must have been observed this many times before it may count (unconfirmed tracks never do).
    min_track_hits: int = Field(default=3, ge=1, le=1000)
    # State of a track not seen for this long is forgotten (its open zone visits are closed).
    forget_after_s: float = Field(default=10.0, gt=0, le=3600)
    # Consecutive observations inside/outside a zone that confirm entering/leaving it, spanning at
    # least confirm_s (as for crossings: at 25-30 fps two frames are a ground point wobbling over
    # the zone's edge).
    zone_confirm_frames: int = Field(default=2, ge=1, le=100)
    # Back inside the same zone within this long after leaving it: the same visit goes on (a
    # step out and back, or a ground point wobbling over the zone's edge, does not split it).
    zone_rejoin_s: float = Field(default=2.0, ge=0, le=600)
    # A track missed by the detector for up to this long still counts towards occupancy.
    occupancy_grace_s: float = Field(default=1.0, ge=0, le=60)


class LinkingConfig(StrictModel):
    """Joining broken tracklets into one person (edge/linking.py). Relative to height and time."""

    enabled: bool = True
    # Every frame waits this long before it is counted, so that a tracklet born after an
    # occlusion is seen long enough to be joined to the person it continues.
    delay_s: float = Field(default=1.5, ge=0, le=30)
    # A tracklet can continue one that ended at most this long before it started.
    max_gap_s: float = Field(default=2.5, ge=0, le=60)
    # Someone who stood still before they were hidden (a shopper at a shelf behind passers-by) is
    # continued after a longer gap, up to this, by a tracklet that starts where they stood. Keep it
    # within counting.forget_after_s, or their zone visit closes while they are hidden.
    max_standing_gap_s: float = Field(default=10.0, ge=0, le=60)
    # Where the two ends may miss each other: this many person heights, plus this many per
    # second of gap (people change pace and direction while hidden).
    reach_heights: float = Field(default=0.5, gt=0, le=10)
    reach_heights_per_s: float = Field(default=0.5, ge=0, le=10)
    max_height_ratio: float = Field(default=1.5, ge=1, le=10)
    # Clothing colours further apart than this (Hellinger distance, 0..1) are two people.
    max_appearance_distance: float = Field(default=0.5, gt=0, le=1)
    # A tracked person whose unoccluded clothing colour drifts further than this from their
    # settled look has been swapped with someone else: the track is cut there and re-linked.
    split_appearance_distance: float = Field(default=0.6, gt=0, le=1)

    @property
    def longest_gap_s(self) -> float:
        """The longest gap any join may span: the linker keeps what it saw for this long."""
        return max(self.max_gap_s, self.max_standing_gap_s)

    def reach_after(self, gap_s: float) -> float:
        """How far apart (person heights) two ends ``gap_s`` apart may be and still be joined."""
        return self.reach_heights + self.reach_heights_per_s * gap_s


class SceneConfig(StrictModel):
    """The scene-health monitor (edge/scene.py): camera issues in events and in every heartbeat."""

    enabled: bool = True
    # A fault, or its end, must last this long before it is reported (issues are then reported
    # about hold_s + 2 s after they begin or end: the view is a median over the last seconds).
    hold_s: float = Field(default=3.0, ge=0.5, le=60)
    # The camera's own background is learned over its first seconds (then refreshed slowly while
    # the picture is healthy); a camera covered or moved before that is not compared correctly.
    learn_s: float = Field(default=5.0, ge=1, le=600)


class CameraConfig(StrictModel):
    store: Name
    camera: Name
    lines: list[LineConfig] = Field(default_factory=list)
    zones: list[ZoneConfig] = Field(default_factory=list)
    model: ModelConfig = Field(default_factory=ModelConfig)
    counting: CountingConfig = Field(default_factory=CountingConfig)
    linking: LinkingConfig = Field(default_factory=LinkingConfig)
    scene: SceneConfig = Field(default_factory=SceneConfig)

    @model_validator(mode="after")
    def _unique_names(self) -> CameraConfig:
        for what, names in (("lines", [x.name for x in self.lines]), ("zones", [z.name for z in self.zones])):
            dupes = sorted({n for n in names if names.count(n) > 1})
            if dupes:
                raise ValueError(f"{what}: duplicate names {dupes}")
        return self


def _is_file_source(source: str) -> bool:
    """A path (file or frame folder), not a camera index or a stream URL."""
    return not source.isdigit() and "://" not in source


# What a camera of a store file and a camera file both say about the camera's own scene.
CAMERA_SCENE_FIELDS = ("lines", "zones", "counting", "linking", "scene")


class StoreCameraConfig(StrictModel):
    """One camera of a store file: its source and scene; the store and the model are shared."""

    camera: Name
    # File, RTSP/HTTP URL, USB index or frame folder, as for --source; a relative path is relative
    # to the store file's folder.
    source: str = Field(min_length=1)
    lines: list[LineConfig] = Field(default_factory=list)
    zones: list[ZoneConfig] = Field(default_factory=list)
    counting: CountingConfig = Field(default_factory=CountingConfig)
    linking: LinkingConfig = Field(default_factory=LinkingConfig)
    scene: SceneConfig = Field(default_factory=SceneConfig)

    @field_validator("source")
    @classmethod
    def _relative_to_store_file(cls, value: str, info: ValidationInfo) -> str:
        base = (info.context or {}).get("base_dir")
        if base is None or not _is_file_source(value) or Path(value).expanduser().is_absolute():
            return value
        return str(base / value)

    @classmethod
    def of(cls, camera: CameraConfig, source: str) -> StoreCameraConfig:
        """A camera file's camera with the source it is run on."""
        return cls(
            camera=camera.camera, source=source, **{k: getattr(camera, k) for k in CAMERA_SCENE_FIELDS}
        )


class StoreConfig(StrictModel):
    """Several cameras of one store in one edge process, sharing one detector (``edge run``)."""

    store: Name
    # This edge box: its MQTT client id, online/offline status topic and queue file.
    device: Name = "edge"
    model: ModelConfig = Field(default_factory=ModelConfig)
    cameras: list[StoreCameraConfig] = Field(min_length=1)

    @model_validator(mode="after")
    def _unique_cameras(self) -> StoreConfig:
        names = [c.camera for c in self.cameras]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"cameras: duplicate camera names {dupes}")
        return self

    def camera_configs(self) -> list[tuple[str, CameraConfig]]:
        """(source, the camera's full configuration) per camera, as a camera file would give it."""
        return [
            (
                cam.source,
                CameraConfig(
                    store=self.store,
                    camera=cam.camera,
                    model=self.model,
                    **{k: getattr(cam, k) for k in CAMERA_SCENE_FIELDS},
                ),
            )
            for cam in self.cameras
        ]


class MqttSettings(StrictModel):
    host: str
    port: int = 1883
    username: str | None = None
    password: str | None = None
    tls: bool = False
    # Private CA and client certificate (--mqtt-ca/--mqtt-cert/--mqtt-key); only with mqtts://.
    tls_files: TlsFiles = TlsFiles()

    def configure(self, client: mqtt.Client) -> None:
        """Apply these credentials and TLS to a paho client before it connects."""
        if self.username:
            client.username_pw_set(self.username, self.password)
        if self.tls:
            # paho keeps the context's hostname check (``tls_insecure`` stays False).
            client.tls_set_context(self.tls_files.context(self.host, "broker"))

    @classmethod
    def from_url(cls, url: str, tls_files: TlsFiles | None = None) -> MqttSettings:
        """``mqtt://[user:pass@]host:port`` or ``mqtts://…``; credentials may also come from
        ``MQTT_USER`` / ``MQTT_PASSWORD`` (or ``*_FILE``) so they stay out of process lists.
        Certificate files need ``mqtts://`` and are checked here, before anything connects."""
        from footfall.contracts.influx import secret_from_env

        parts = urlsplit(url)
        if parts.scheme not in ("mqtt", "mqtts", "tcp", "ssl") or not parts.hostname:
            raise ConfigError(f"--mqtt-url: expected mqtt://[user:pass@]host:port, got {url!r}")
        tls = parts.scheme in ("mqtts", "ssl")
        files = tls_files or TlsFiles()
        if tls:
            files.context(parts.hostname, "broker")  # unreadable files fail now, naming the option
        else:
            files.refuse_plain(url, "mqtts")
        return cls(
            host=parts.hostname,
            port=parts.port or (8883 if tls else 1883),
            username=unquote(parts.username) if parts.username else secret_from_env("MQTT_USER"),
            password=unquote(parts.password) if parts.password else secret_from_env("MQTT_PASSWORD"),
            tls=tls,
            tls_files=files,
        )
