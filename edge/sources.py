"""Frame sources through OpenCV: video files, RTSP/HTTP streams, USB cameras and frame folders.

Every source yields ``Frame`` objects whose ``t`` is seconds since the source started: media time
for files and folders (frame index / fps), monotonic wall time for live sources. Every source is
read by a background thread, so that decoding the next frame overlaps the analysis of this one.
Live sources (and any source opened with ``realtime=True``) keep only the newest frame, so a slow
consumer drops frames (counted in ``dropped``) instead of falling behind; streams reconnect with
exponential back-off when they fail. Recordings are read a few frames ahead and lose none.
"""

from __future__ import annotations

import configparser
import logging
import queue
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

log = logging.getLogger(__name__)

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp")
STREAM_PREFIXES = ("rtsp://", "rtsps://", "http://", "https://", "rtmp://", "udp://", "tcp://")


class SourceError(RuntimeError):
    """A source that cannot be opened or read."""


@dataclass(frozen=True, slots=True)
class Frame:
    index: int  # frame number since the start (dropped frames included)
    t: float  # seconds since the start of the source
    image: np.ndarray | None  # None: a live source's "still waiting" tick (see STALL_TICK_S)
    captured_at: float  # time.monotonic() when the frame was read, for latency


# A live source that delivers nothing for this long yields an image-less tick, so that the
# pipeline keeps its clock moving (heartbeats report the outage, vanished tracks are closed).
STALL_TICK_S = 1.0


class FrameSource:
    """Common interface: iterate for frames; ``fps``, ``size`` (w, h), ``live``, ``dropped``."""

    fps: float
    size: tuple[int, int]
    live: bool = False
    dropped: int = 0

    def __iter__(self) -> Iterator[Frame]:
        raise NotImplementedError

    def close(self) -> None:
        pass

    def __enter__(self) -> FrameSource:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def open_source(source: str, *, fps: float | None = None, realtime: bool = False) -> FrameSource:
    """Open a file path, a stream URL, a USB camera index (``"0"``) or a frame folder."""
    # A live service (realtime) waits for a camera that is down at start; a one-off command fails fast.
    if source.isdigit():
        return StreamSource(int(source), fps=fps, wait_for_first_connection=realtime)
    if source.lower().startswith(STREAM_PREFIXES):
        return StreamSource(source, fps=fps, wait_for_first_connection=realtime)
    path = Path(source)
    if path.is_dir():
        inner: FrameSource = FolderSource(path, fps=fps)
    elif path.is_file():
        inner = VideoFileSource(path, fps=fps)
    else:
        raise SourceError(f"{source}: no such file, folder, URL or camera index")
    return PacedSource(inner) if realtime else inner


def _capture(target: str | int) -> Any:
    import cv2

    cap = cv2.VideoCapture(target)
    if not cap.isOpened():
        cap.release()
        raise SourceError(f"{target}: OpenCV cannot open it")
    return cap


def sampling_step(native_fps: float, wanted_fps: float | None) -> int:
    """Keep every n-th frame so that about ``wanted_fps`` remain (1 = every frame).

    A CPU box samples a 25-30 fps camera at 5-15 fps; recordings are audited the same way.
    """
    if not wanted_fps or wanted_fps >= native_fps:
        return 1
    return max(1, round(native_fps / wanted_fps))


class VideoFileSource(FrameSource):
    """A recording. ``fps`` below the file's own rate samples it (every n-th frame is decoded);
    ``t`` stays media time and ``index`` the file's frame number, so ground truth lines up."""

    def __init__(self, path: Path, fps: float | None = None) -> None:
        import cv2

        self.path = path
        self._cap = _capture(str(path))
        native_fps = float(self._cap.get(cv2.CAP_PROP_FPS) or 0.0)
        if native_fps <= 0 and not fps:
            raise SourceError(f"{path}: the file has no frame rate; pass --fps")
        self.native_fps = native_fps if native_fps > 0 else float(fps or 0)
        self.step = sampling_step(self.native_fps, fps)
        self.fps = self.native_fps / self.step
        self.size = (
            int(self._cap.get(cv2.CAP_PROP_FRAME_WIDTH)),
            int(self._cap.get(cv2.CAP_PROP_FRAME_HEIGHT)),
        )
        total = int(self._cap.get(cv2.CAP_PROP_FRAME_COUNT))
        self.frame_count = -(-total // self.step) if total else None  # frames this source yields
        self._reader: _ReadAhead | None = None

    def __iter__(self) -> Iterator[Frame]:
        self._reader = _ReadAhead(self._decode())
        return self._reader.frames()

    def _decode(self) -> Iterator[Frame]:
        index = 0
        while True:
            # grab() skips a frame without converting it: sampling costs only the decode.
            if index % self.step and self._cap.grab():
                index += 1
                continue
            ok, image = self._cap.read()
            if not ok:
                return
            yield Frame(index, index / self.native_fps, image, time.monotonic())
            index += 1

    def close(self) -> None:
        if self._reader is not None:
            self._reader.stop()  # before the release: the reader thread may be decoding
        self._cap.release()


def sequence_info(folder: Path) -> dict[str, str]:
    """``[Sequence]`` of a MOTChallenge ``seqinfo.ini`` in ``folder`` or its parent (empty if none)."""
    for candidate in (folder / "seqinfo.ini", folder.parent / "seqinfo.ini"):
        if candidate.is_file():
            parser = configparser.ConfigParser()
            parser.read(candidate)
            if parser.has_section("Sequence"):
                return dict(parser["Sequence"])
    return {}


class FolderSource(FrameSource):
    """Numbered images (MOTChallenge ``img1/``); a sequence folder holding ``img1/`` works too."""

    def __init__(self, folder: Path, fps: float | None = None) -> None:
        import cv2

        if (folder / "img1").is_dir():
            folder = folder / "img1"
        self.files = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        if not self.files:
            raise SourceError(f"{folder}: no images ({', '.join(IMAGE_SUFFIXES)})")
        native = float(sequence_info(folder).get("framerate", 0) or 0) or float(fps or 0)
        if native <= 0:
            raise SourceError(f"{folder}: frame folders need --fps (or a seqinfo.ini with frameRate)")
        self.native_fps = native
        self.step = sampling_step(native, fps)
        self.fps = native / self.step
        first = cv2.imread(str(self.files[0]))
        if first is None:
            raise SourceError(f"{self.files[0]}: not a readable image")
        self.size = (first.shape[1], first.shape[0])
        self.frame_count = -(-len(self.files) // self.step)
        self._reader: _ReadAhead | None = None

    def __iter__(self) -> Iterator[Frame]:
        self._reader = _ReadAhead(self._decode())
        return self._reader.frames()

    def close(self) -> None:
        if self._reader is not None:
            self._reader.stop()

    def _decode(self) -> Iterator[Frame]:
        import cv2

        for index in range(0, len(self.files), self.step):
            path = self.files[index]
            image = cv2.imread(str(path))
            if image is None:
                raise SourceError(f"{path}: not a readable image")
            yield Frame(index, index / self.native_fps, image, time.monotonic())


class _ReadAhead:
    """A thread that reads a recording up to ``depth`` frames ahead of its consumer and drops none
    (a recording is analysed whole): the next frame is decoded while this one is analysed. One
    instance serves one pass over the recording."""

    _END = object()  # after the last frame

    def __init__(self, produce: Iterator[Frame], depth: int = 2) -> None:
        self._queue: queue.Queue[object] = queue.Queue(maxsize=depth)
        self._stop = threading.Event()
        self._thread = threading.Thread(
            target=self._run, args=(produce,), name="footfall-read-ahead", daemon=True
        )

    def frames(self) -> Iterator[Frame]:
        self._thread.start()
        try:
            while (item := self._next()) is not self._END:
                if isinstance(item, BaseException):
                    raise item
                assert isinstance(item, Frame)
                yield item
        finally:  # also when the consumer stops early: the thread must not outlive the pass
            self.stop()

    def _next(self) -> object:
        while True:  # polled, so that a stop from another thread (close()) ends the pass
            try:
                return self._queue.get(timeout=0.1)
            except queue.Empty:
                if self._stop.is_set():
                    return self._END

    def _run(self, produce: Iterator[Frame]) -> None:
        last: object = self._END
        try:
            for frame in produce:
                if not self._put(frame):
                    return
        except BaseException as exc:  # surfaced to the consumer
            last = exc
        self._put(last)

    def _put(self, item: object) -> bool:
        """Wait for room in the queue; False when told to stop meanwhile."""
        while not self._stop.is_set():
            try:
                self._queue.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=5)


class _LatestFrameReader:
    """A thread that reads frames as they come and keeps only the newest one."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._latest: Frame | None = None
        self._done = False
        self._error: BaseException | None = None
        self.dropped = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.t0 = time.monotonic()  # the source's time origin, shared with its producer
        self._last_index = 0

    def start(self, produce: Iterator[Frame]) -> None:
        self.t0 = time.monotonic()

        def run() -> None:
            try:
                for frame in produce:
                    if self._stop.is_set():
                        break
                    with self._cond:
                        if self._latest is not None:
                            self.dropped += 1  # the consumer did not take the previous frame in time
                        self._latest = frame
                        self._cond.notify()
            except BaseException as exc:  # surfaced to the consumer
                self._error = exc
            finally:
                with self._cond:
                    self._done = True
                    self._cond.notify()

        self._thread = threading.Thread(target=run, name="footfall-frames", daemon=True)
        self._thread.start()

    def frames(self, tick_s: float = STALL_TICK_S) -> Iterator[Frame]:
        while True:
            with self._cond:
                self._cond.wait_for(lambda: self._latest is not None or self._done, timeout=tick_s)
                frame, self._latest = self._latest, None
                if frame is None and self._done:
                    if self._error is not None:
                        raise self._error
                    return
            if frame is None:
                now = time.monotonic()
                yield Frame(self._last_index, now - self.t0, None, now)
                continue
            self._last_index = frame.index
            yield frame

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)


class PacedSource(FrameSource):
    """A file or folder played at its frame rate as if it were a camera (drops frames when behind)."""

    live = True

    def __init__(self, inner: FrameSource) -> None:
        self.inner = inner
        self.fps, self.size = inner.fps, inner.size
        self._reader = _LatestFrameReader()

    @property
    def dropped(self) -> int:  # type: ignore[override]
        return self._reader.dropped

    def _paced(self) -> Iterator[Frame]:
        t0 = self._reader.t0
        for frame in self.inner:
            delay = t0 + frame.t - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            yield Frame(frame.index, frame.t, frame.image, time.monotonic())

    def __iter__(self) -> Iterator[Frame]:
        self._reader.start(self._paced())
        yield from self._reader.frames()

    def close(self) -> None:
        self._reader.stop()
        self.inner.close()


class StreamSource(FrameSource):
    """RTSP/HTTP URL or USB camera; reconnects with exponential back-off (1 s doubling to 30 s)."""

    live = True

    def __init__(
        self,
        target: str | int,
        *,
        fps: float | None = None,
        max_backoff_s: float = 30.0,
        give_up_after_s: float | None = None,
        wait_for_first_connection: bool = False,
    ) -> None:
        import cv2

        self.target = target
        self.max_backoff_s = max_backoff_s
        self.give_up_after_s = give_up_after_s
        try:
            self._cap: Any = _capture(target)
        except SourceError:
            if not wait_for_first_connection:
                raise
            log.warning("%s: not reachable yet; retrying with back-off", self._safe_name())
            self._cap = None
        self.fps = float(fps or (self._cap.get(cv2.CAP_PROP_FPS) if self._cap else 0) or 25.0)
        # (0, 0) until connected: the pipeline sizes its model from the first frame instead.
        self.size = (
            (int(self._cap.get(cv2.CAP_PROP_FRAME_WIDTH)), int(self._cap.get(cv2.CAP_PROP_FRAME_HEIGHT)))
            if self._cap
            else (0, 0)
        )
        self.reconnects = 0
        self._reader = _LatestFrameReader()

    @property
    def dropped(self) -> int:  # type: ignore[override]
        return self._reader.dropped

    def _read_forever(self) -> Iterator[Frame]:
        t0 = self._reader.t0
        index = 0
        backoff = 1.0
        failing_since: float | None = None
        while not self._reader._stop.is_set():
            ok, image = self._cap.read() if self._cap is not None else (False, None)
            if ok:
                backoff, failing_since = 1.0, None
                now = time.monotonic()
                yield Frame(index, now - t0, image, now)
                index += 1
                continue
            failing_since = failing_since or time.monotonic()
            if self.give_up_after_s is not None and time.monotonic() - failing_since > self.give_up_after_s:
                raise SourceError(f"{self._safe_name()}: no frames for {self.give_up_after_s:.0f} s")
            log.warning("%s: stream read failed; reconnecting in %.0f s", self._safe_name(), backoff)
            if self._cap is not None:
                self._cap.release()
                self._cap = None
            self._reader._stop.wait(backoff)
            backoff = min(backoff * 2, self.max_backoff_s)
            try:
                self._cap = _capture(self.target)
                self.reconnects += 1
            except SourceError:
                self._cap = None

    def _safe_name(self) -> str:
        # Never log credentials embedded in a stream URL.
        if isinstance(self.target, int):
            return f"camera {self.target}"
        from urllib.parse import urlsplit

        parts = urlsplit(self.target)
        return f"{parts.scheme}://{parts.hostname or ''}{f':{parts.port}' if parts.port else ''}{parts.path}"

    def __iter__(self) -> Iterator[Frame]:
        self._reader.start(self._read_forever())
        yield from self._reader.frames()

    def close(self) -> None:
        self._reader.stop()
        if self._cap is not None:
            self._cap.release()
