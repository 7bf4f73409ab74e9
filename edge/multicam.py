"""Several cameras of one store in one process, sharing one detector (``edge run`` with a store file).

Each camera runs its own pipeline (source, tracker, linker, counter, heartbeats) in a thread; all
of them call one loaded model through ``SharedModel``, which runs the pictures that wait at the
same time as one batch, and all events go into the one store-and-forward queue. A camera whose
source fails is reported and stops alone: the others go on (a live stream reconnects by itself,
edge/sources.py). With file sources the run ends when every camera has ended.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from footfall.contracts.config import CameraConfig, StoreConfig
from footfall.contracts.events import Event
from footfall.edge.detector import PeopleModel
from footfall.edge.inference import People
from footfall.edge.plan_file import PlanFile

log = logging.getLogger(__name__)


# Events a camera keeps in memory while the queue cannot take them (its disk full or locked), so
# that memory stays bounded; beyond it the oldest go, logged and counted.
MAX_PENDING_EVENTS = 50_000
# Back-off between tries to queue them, doubling up to this.
MAX_QUEUE_RETRY_S = 30.0


# A batch's activations grow with its input pixels: at most two probing 1280x736 pictures' worth
# (four 1080p cameras batched whole peaked near 800 MB; bench/edge_runtime.py).
MAX_BATCH_PIXELS = 2 * 1280 * 736


@dataclass(slots=True, eq=False)  # compared by identity: two requests may hold equal pictures
class _Request:
    images: list[NDArray[np.uint8]]
    key: tuple[tuple[int, int], float, float]  # input size, confidence, IoU: what one batch shares
    result: list[People] | None = None
    error: BaseException | None = None  # the batch it went with failed


class SharedModel:
    """One model for several camera threads. A thread that finds the model busy queues its picture;
    the next thread to run takes every queued picture of the same input size along, as one batch
    (fewer, larger inferences; on a CPU the gain is small, the order stays fair)."""

    def __init__(self, model: PeopleModel, max_batch: int = 8, max_pixels: int = MAX_BATCH_PIXELS) -> None:
        self._model = model
        self._max_batch = max_batch
        self._max_pixels = max_pixels
        self._pending: list[_Request] = []
        self._queue_lock = threading.Lock()
        self._run_lock = threading.Lock()
        self.batches: list[int] = []  # batch sizes run, for the benchmark and the tests

    def input_size(self, wanted: tuple[int, int]) -> tuple[int, int]:
        return self._model.input_size(wanted)

    def __call__(
        self, images: list[NDArray[np.uint8]], imgsz: tuple[int, int], conf: float, iou: float
    ) -> list[People]:
        request = _Request(images, (self.input_size(imgsz), conf, iou))
        with self._queue_lock:
            self._pending.append(request)
        with self._run_lock:
            if request.result is None and request.error is None:
                self._run(self._take(request.key))  # nobody took it along: run it and its kind
        if request.error is not None:
            raise request.error
        assert request.result is not None
        return request.result

    def _take(self, key: tuple[tuple[int, int], float, float]) -> list[_Request]:
        with self._queue_lock:
            same = [r for r in self._pending if r.key == key]
            per_picture = key[0][0] * key[0][1]
            fits = max(1, min(self._max_batch, self._max_pixels // per_picture))
            batch: list[_Request] = []
            count = 0
            for r in same:
                if batch and count + len(r.images) > fits:
                    break
                batch.append(r)
                count += len(r.images)
            self._pending = [r for r in self._pending if r not in batch]
        return batch

    def _run(self, batch: list[_Request]) -> None:
        imgsz, conf, iou = batch[0].key
        images = [image for r in batch for image in r.images]
        try:
            found = self._model(images, imgsz, conf, iou)
        except BaseException as exc:
            for r in batch:
                r.error = exc
            return
        self.batches.append(len(images))
        for r in batch:
            r.result, found = found[: len(r.images)], found[len(r.images) :]


@dataclass(slots=True)
class CameraRun:
    """One camera's thread and how it ended."""

    camera: str
    source: str
    events: int = 0
    error: str | None = None
    thread: threading.Thread | None = field(default=None, repr=False)


@dataclass(frozen=True, slots=True)
class RunOptions:
    """What every camera of the run shares."""

    start: datetime | None
    fps_for: Callable[[str, CameraConfig], float | None]  # the analysed rate for a source
    live_for: Callable[[str], bool]  # paced in real time (streams, cameras)
    heartbeat_every_s: float
    stop: Callable[[], bool]
    plans_in: Path | None = None  # the folder each camera's planned input is kept in between starts
    replan: bool = False  # plan afresh, replacing what is kept


def run_store(
    config: StoreConfig, model: PeopleModel, publish: Callable[[Event], object], options: RunOptions
) -> list[CameraRun]:
    """Run every camera of ``config`` until its source ends (or ``options.stop``); returns how each
    camera ended. ``publish`` is called from the camera threads (the disk queue is thread-safe)."""
    shared = SharedModel(model, max_batch=max(1, len(config.cameras)))
    runs = []
    for source, camera in config.camera_configs():
        run = CameraRun(camera.camera, source)
        run.thread = threading.Thread(
            target=_count_camera,
            args=(run, camera, shared, publish, options),
            name=f"camera-{camera.camera}",
            daemon=True,
        )
        run.thread.start()
        runs.append(run)
    for run in runs:
        assert run.thread is not None
        run.thread.join()
    return runs


def _count_camera(
    run: CameraRun,
    camera: CameraConfig,
    model: PeopleModel,
    publish: Callable[[Event], object],
    options: RunOptions,
) -> None:
    from footfall.edge.pipeline import iter_events
    from footfall.edge.sources import SourceError

    outbox = _Outbox(run.camera, publish)
    try:
        for event in iter_events(
            run.source,
            camera,
            model=model,
            start=options.start,
            fps=options.fps_for(run.source, camera),
            realtime=options.live_for(run.source),
            heartbeat_every_s=options.heartbeat_every_s,
            stop=options.stop,
            plans=_plan_file(camera, options),
        ):
            outbox.send(event)
            run.events += 1
    except SourceError as exc:  # what it counted before stays queued; the other cameras go on
        run.error = str(exc)
        log.error("camera %s stopped: %s", run.camera, exc)
    except Exception as exc:  # a bug must not take the store's other cameras down with it
        run.error = f"internal error: {exc!r}"
        log.exception("camera %s stopped on an internal error", run.camera)
    else:
        ended = "stopped" if options.stop() else "source ended"
        log.info("camera %s: %s after %d events", run.camera, ended, run.events)
    finally:
        outbox.close(options.stop)


class _Outbox:
    """A camera's way into the queue. An event the queue cannot take (its disk full or locked) is
    kept in memory and offered again, in order, with back-off, while the camera goes on counting: a
    passing disk problem neither stops the camera nor loses its events. Whatever is still pending
    when the run ends or past MAX_PENDING_EVENTS is lost, and logged as such."""

    def __init__(self, camera: str, publish: Callable[[Event], object]) -> None:
        self.camera = camera
        self._publish = publish
        self.pending: deque[Event] = deque()
        self.lost = 0
        self._failing: str | None = None
        self._retry_at = 0.0
        self._backoff_s = 0.0

    def send(self, event: Event) -> None:
        self.pending.append(event)
        if len(self.pending) > MAX_PENDING_EVENTS:
            self.pending.popleft()
            self.lost += 1
            if self.lost == 1:
                log.error(
                    "camera %s: more than %d events wait for the queue; dropping the oldest (counted)",
                    self.camera,
                    MAX_PENDING_EVENTS,
                )
        if time.monotonic() >= self._retry_at:
            self._flush()

    def _flush(self) -> bool:
        """Queue what is pending, oldest first; False when the queue fails (tried again later)."""
        while self.pending:
            try:
                self._publish(self.pending[0])
            except (sqlite3.Error, OSError) as exc:
                self._backoff_s = min(max(2 * self._backoff_s, 0.5), MAX_QUEUE_RETRY_S)
                self._retry_at = time.monotonic() + self._backoff_s
                if self._failing is None:
                    log.error(
                        "camera %s: the queue takes no events (%s); keeping them in memory, counting goes on",
                        self.camera,
                        exc,
                    )
                self._failing = str(exc)
                return False
            self.pending.popleft()
        if self._failing is not None:
            log.warning("camera %s: the queue takes events again (%s before)", self.camera, self._failing)
            self._failing, self._backoff_s = None, 0.0
        return True

    def close(self, stop: Callable[[], bool]) -> None:
        """At the end of the camera's run: keep trying what is pending until it is queued or the run
        is stopped; what is left then is lost, and said so."""
        while self.pending and not self._flush() and not stop():
            time.sleep(min(max(self._retry_at - time.monotonic(), 0.0), 0.5))
        if self.pending or self.lost:
            log.error(
                "camera %s: %d events could not be queued and are lost",
                self.camera,
                len(self.pending) + self.lost,
            )


def _plan_file(camera: CameraConfig, options: RunOptions) -> PlanFile | None:
    if options.plans_in is None:
        return None
    return PlanFile.beside(options.plans_in, camera.store, camera.camera, options.replan)
