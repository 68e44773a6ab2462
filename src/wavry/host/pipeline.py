"""Capture and encode off the event loop: two threads and a one-slot queue between them.

    capture thread --(newest frame only)--> encode thread --call_soon_threadsafe--> event loop

The capture thread paces itself at the target fps; the one-slot queue drops the older frame
when the encoder falls behind (latency first: never encode a stale picture). Encoder settings
(bitrate, fps, keyframe) are requested from the loop and applied by the encode thread before its
next frame, because encoders are not thread-safe.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from wavry.media.capture.base import CaptureBackend, CaptureError
from wavry.media.encoder import VideoEncoder
from wavry.media.frames import EncodedFrame, RawFrame

__all__ = ["EncodedOutput", "MediaPipeline", "PipelineStats"]

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class EncodedOutput:
    frame: EncodedFrame
    capture_duration: float


@dataclass(slots=True)
class PipelineStats:
    captured: int = 0
    encoded: int = 0
    dropped_before_encode: int = 0
    skipped_unchanged: int = 0
    capture_errors: int = 0
    skipped_on_request: int = 0


class _Slot:
    """A one-frame mailbox: put() replaces what is there (and says so)."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._item: RawFrame | None = None
        self._closed = False

    def put(self, item: RawFrame) -> bool:
        with self._cond:
            replaced = self._item is not None
            self._item = item
            self._cond.notify()
            return replaced

    def get(self) -> RawFrame | None:
        with self._cond:
            while self._item is None and not self._closed:
                self._cond.wait()
            item, self._item = self._item, None
            return item

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify_all()


class MediaPipeline:
    def __init__(
        self,
        capture: CaptureBackend,
        encoder: VideoEncoder,
        *,
        fps: int,
        on_output: Callable[[EncodedOutput], None],
        keyframe_interval: float | None = None,
        skip_unchanged: bool = True,
    ) -> None:
        self._capture = capture
        self._encoder = encoder
        self._fps = fps
        self._on_output = on_output
        self._keyframe_interval = keyframe_interval
        self._skip_unchanged = skip_unchanged
        self._slot = _Slot()
        self._running = threading.Event()
        self._lock = threading.Lock()
        self._pending_bitrate: int | None = None
        self._pending_fps: int | None = None
        self._keyframe_requested = True  # the first frame is always a keyframe
        self._skip = 0  # frames the client asked us to drop (it is behind)
        self._threads: list[threading.Thread] = []
        self.stats = PipelineStats()
        self.error: BaseException | None = None

    def start(self) -> None:
        self._running.set()
        for name, target in (
            ("wavry-capture", self._capture_loop),
            ("wavry-encode", self._encode_loop),
        ):
            thread = threading.Thread(target=target, name=name, daemon=True)
            thread.start()
            self._threads.append(thread)

    def stop(self) -> None:
        self._running.clear()
        self._slot.close()
        for thread in self._threads:
            thread.join(timeout=2.0)
        self._threads.clear()
        self._capture.close()
        self._encoder.close()

    # Requests from the event loop ------------------------------------------------------
    def request_keyframe(self) -> None:
        with self._lock:
            self._keyframe_requested = True

    def set_bitrate(self, kbps: int) -> None:
        with self._lock:
            self._pending_bitrate = kbps

    def set_fps(self, fps: int) -> None:
        with self._lock:
            self._pending_fps = fps

    def skip_frames(self, count: int) -> None:
        """Drop the next ``count`` captured frames (capped at 4): the client is behind."""
        with self._lock:
            self._skip = min(4, self._skip + max(0, count))

    # Threads ----------------------------------------------------------------------------
    def _capture_loop(self) -> None:
        next_at = time.monotonic()
        failures = 0
        while self._running.is_set():
            delay = next_at - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            try:
                frame = self._capture.grab()
                failures = 0
            except CaptureError as exc:
                self.stats.capture_errors += 1
                failures += 1
                if failures >= 5:
                    log.error("capture failed %d times in a row: %s", failures, exc)
                    self.error = exc
                    self._running.clear()
                    self._slot.close()
                    return
                time.sleep(0.05 * failures)
                continue
            self.stats.captured += 1
            if self._slot.put(frame):
                self.stats.dropped_before_encode += 1
            with self._lock:
                if self._pending_fps is not None:
                    self._fps = self._pending_fps
            interval = 1.0 / self._fps
            next_at += interval
            now = time.monotonic()
            if next_at < now - interval:  # fell behind by more than a frame: do not burst
                next_at = now

    def _encode_loop(self) -> None:
        last_keyframe = 0.0
        while self._running.is_set():
            raw = self._slot.get()
            if raw is None:
                return
            with self._lock:
                if self._skip > 0:
                    self._skip -= 1
                    self.stats.skipped_on_request += 1
                    continue
                force = self._keyframe_requested
                self._keyframe_requested = False
                bitrate, self._pending_bitrate = self._pending_bitrate, None
                fps = self._pending_fps
            if bitrate is not None:
                self._encoder.set_target_bitrate(bitrate)
            if fps is not None and fps != self._encoder_fps():
                self._encoder.set_fps(fps)
            interval = self._keyframe_interval
            if interval and raw.capture_time - last_keyframe >= interval:
                force = True
            if raw.unchanged and self._skip_unchanged and not force:
                self.stats.skipped_unchanged += 1
                continue
            try:
                encoded = self._encoder.encode(raw, force_keyframe=force)
            except Exception as exc:  # noqa: BLE001 - top of a thread: report and stop
                log.exception("encoder failed")
                self.error = exc
                self._running.clear()
                return
            if encoded is None:
                continue
            if encoded.keyframe:
                last_keyframe = raw.capture_time
            self.stats.encoded += 1
            self._on_output(EncodedOutput(encoded, raw.capture_duration))

    @property
    def capture(self) -> CaptureBackend:
        return self._capture

    def _encoder_fps(self) -> int:
        return self._fps
