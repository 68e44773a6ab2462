"""The capture -> encode pipeline on its own: real test source, real libx264."""

from __future__ import annotations

import threading

from wavry.host.pipeline import EncodedOutput, MediaPipeline
from wavry.media.capture.base import open_capture
from wavry.media.encoder import create_encoder
from wavry.rift.proto import rift_pb2


def _pipeline(outputs: list[EncodedOutput], done: threading.Event, want: int) -> MediaPipeline:
    capture = open_capture("testsrc", width=320, height=180, fps=60)
    encoder = create_encoder(rift_pb2.H264, width=320, height=180, fps=60, bitrate_kbps=1000)

    def on_output(out: EncodedOutput) -> None:
        outputs.append(out)
        if len(outputs) >= want:
            done.set()

    return MediaPipeline(capture, encoder, fps=60, on_output=on_output)


def test_first_frame_is_a_keyframe_and_requests_are_honoured() -> None:
    outputs: list[EncodedOutput] = []
    done = threading.Event()
    pipe = _pipeline(outputs, done, 40)
    pipe.start()
    try:
        assert done.wait(10)
        pipe.request_keyframe()
        n = len(outputs)
        done.clear()
        assert done.wait(1) or len(outputs) > n
    finally:
        pipe.stop()
    assert outputs[0].frame.keyframe
    assert sum(o.frame.keyframe for o in outputs[1:]) >= 1  # the requested one
    assert pipe.stats.encoded == len(outputs) and pipe.error is None


def test_skip_request_drops_frames_capped_at_four() -> None:
    outputs: list[EncodedOutput] = []
    done = threading.Event()
    pipe = _pipeline(outputs, done, 30)
    pipe.skip_frames(10)
    pipe.start()
    try:
        assert done.wait(10)
    finally:
        pipe.stop()
    assert pipe.stats.skipped_on_request == 4
    indexes = [o.frame.frame_index for o in outputs]
    assert indexes == sorted(indexes)
