from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from wavry.rift.config import PROTOCOL_VERSION, HostOffer
from wavry.rift.negotiation import Rejection, SessionParams, negotiate
from wavry.rift.proto import rift_pb2


def _hello(**kw: object) -> rift_pb2.Hello:
    base: dict[str, object] = {
        "client_name": "test",
        "supported_codecs": [rift_pb2.H264],
        "max_resolution": rift_pb2.Resolution(width=1920, height=1080),
        "max_fps": 60,
        "protocol_version": PROTOCOL_VERSION,
    }
    base.update(kw)
    return rift_pb2.Hello(**base)  # type: ignore[arg-type]


def test_accepts_and_clamps_to_client_limits() -> None:
    offer = HostOffer(width=2560, height=1440, fps=120, bitrate_kbps=30_000)
    result = negotiate(_hello(max_bitrate_kbps=8000, keyframe_interval_ms=2000), offer)
    assert result == SessionParams(rift_pb2.H264, 1920, 1080, 60, 8000, 2000)


def test_codec_preference_is_the_hosts() -> None:
    offer = HostOffer(codecs=(rift_pb2.AV1, rift_pb2.H264))
    result = negotiate(_hello(supported_codecs=[rift_pb2.H264, rift_pb2.AV1]), offer)
    assert isinstance(result, SessionParams) and result.codec == rift_pb2.AV1


def test_rejections_have_reasons() -> None:
    offer = HostOffer()
    no_codec = negotiate(_hello(supported_codecs=[rift_pb2.AV1]), offer)
    assert isinstance(no_codec, Rejection) and no_codec.reason == rift_pb2.REJECT_NO_COMMON_CODEC
    assert "H264" in no_codec.message
    old = negotiate(_hello(protocol_version=0), offer)
    assert isinstance(old, Rejection) and old.reason == rift_pb2.REJECT_UNSUPPORTED_VERSION
    zero = negotiate(_hello(max_fps=0), offer)
    assert isinstance(zero, Rejection) and zero.reason == rift_pb2.REJECT_INVALID_PARAMETERS


@given(
    st.integers(0, 10_000),
    st.integers(0, 10_000),
    st.integers(0, 1000),
    st.integers(0, 10**6),
    st.lists(st.integers(-5, 10), max_size=5),
)
def test_negotiation_is_total_and_within_offer(
    w: int, h: int, fps: int, kbps: int, codecs: list[int]
) -> None:
    hello = rift_pb2.Hello(
        max_resolution=rift_pb2.Resolution(width=w, height=h),
        max_fps=fps,
        max_bitrate_kbps=kbps,
        protocol_version=PROTOCOL_VERSION,
    )
    hello.supported_codecs.extend(c for c in codecs if c in (0, 1, 2))
    offer = HostOffer()
    result = negotiate(hello, offer)
    if isinstance(result, SessionParams):
        assert 16 <= result.width <= min(offer.width, w)
        assert 16 <= result.height <= min(offer.height, h)
        assert 1 <= result.fps <= offer.fps
        assert offer.min_bitrate_kbps <= result.bitrate_kbps <= offer.bitrate_kbps
