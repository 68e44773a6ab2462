"""``wavry host``: one RIFT endpoint, one media pipeline per active session, input injection.

Everything protocol-related happens in the sans-IO core on the event loop; capture and encode
run in the pipeline's threads; input is injected on the loop as soon as it is decrypted, ahead
of any media work (injection is a few microseconds per event).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import resource
import socket
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from wavry.bind_policy import check_bind, is_loopback
from wavry.host.pipeline import EncodedOutput, MediaPipeline
from wavry.host.settings import HostSettings
from wavry.input.events import InputDecodeError, from_proto
from wavry.input.inject.base import InjectorUnavailable, InputInjector, open_injector
from wavry.media.capture.barcode import timestamp_us as capture_timestamp_us
from wavry.media.capture.base import CaptureBackend, open_capture
from wavry.media.encoder import VideoEncoder, create_encoder
from wavry.media.probe import offered_codecs
from wavry.net.impairment import ImpairmentLink
from wavry.net.mdns import AsyncMdnsAdvertisement
from wavry.net.udp import DSCP_AF41, UdpDriver, impairment_from_spec, open_udp_driver
from wavry.rift import events as ev
from wavry.rift.config import HostOffer, RiftConfig
from wavry.rift.connection import Connection, ConnectionState
from wavry.rift.host_endpoint import HostEndpoint
from wavry.rift.identity import Identity
from wavry.rift.negotiation import SessionParams
from wavry.rift.proto import rift_pb2
from wavry.rift.trust import AllowList

__all__ = ["HostService", "HostStatus"]

log = logging.getLogger(__name__)

ApprovalAsker = Callable[[str], "asyncio.Future[bool] | bool"]


@dataclass(slots=True)
class HostStatus:
    listening: tuple[str, int] | None = None
    sessions_started: int = 0
    frames_sent: int = 0
    inputs_injected: int = 0
    input_errors: int = 0
    refused: list[str] = field(default_factory=list)
    #: a client's address changed mid-session (NAT rebinding, path moved to/from a relay)
    address_changes: int = 0
    #: CPU seconds (all threads) and wall seconds while a session streamed; peak RSS
    stream_cpu_s: float = 0.0
    stream_wall_s: float = 0.0
    max_rss_mb: float = 0.0


class HostService:
    def __init__(
        self,
        settings: HostSettings,
        *,
        identity: Identity,
        allow_list: AllowList,
        capture_factory: Callable[[SessionParams], CaptureBackend] | None = None,
        encoder_factory: Callable[[SessionParams], VideoEncoder] | None = None,
        injector: InputInjector | None = None,
        ask_approval: Callable[[str], bool] | None = None,
        impairment: ImpairmentLink | None = None,
    ) -> None:
        self.settings = settings
        self.identity = identity
        self.allow_list = allow_list
        self._capture_factory = capture_factory or self._default_capture
        self._encoder_factory = encoder_factory or self._default_encoder
        self._injector = injector
        self._ask_approval = ask_approval
        self._impairment = impairment
        self.status = HostStatus()
        self._endpoint: HostEndpoint | None = None
        self._driver: UdpDriver | None = None
        self._pipeline: MediaPipeline | None = None
        self._session_alias: int | None = None
        self._stop = asyncio.Event()
        self._stream_started: tuple[float, float] | None = None
        self._monitor: int | None = settings.monitor

    # -- factories ------------------------------------------------------------------------
    def _default_capture(self, params: SessionParams) -> CaptureBackend:
        s = self.settings
        options = {"pattern": s.testsrc_pattern} if s.capture == "testsrc" else {}
        return open_capture(
            s.capture,
            width=params.width,
            height=params.height,
            fps=params.fps,
            monitor=self._monitor,
            **options,
        )

    def _default_encoder(self, params: SessionParams) -> VideoEncoder:
        return create_encoder(
            params.codec,
            width=params.width,
            height=params.height,
            fps=params.fps,
            bitrate_kbps=params.bitrate_kbps,
            name=self.settings.encoder,
        )

    @property
    def endpoint(self) -> HostEndpoint | None:
        return self._endpoint

    @property
    def udp_driver(self) -> UdpDriver | None:
        """The streaming socket once listening (candidates and STUN run on it)."""
        return self._driver

    def offer(self) -> HostOffer:
        """What this host can stream (the Hello/HelloAck negotiation picks within it)."""
        return self._offer()

    def _offer(self) -> HostOffer:
        s = self.settings
        codecs = offered_codecs(s.codecs, width=s.width, height=s.height, fps=s.fps)
        return HostOffer(
            codecs=tuple(codecs),
            width=s.width,
            height=s.height,
            fps=s.fps,
            bitrate_kbps=s.bitrate_kbps,
            max_bitrate_kbps=max(s.max_bitrate_kbps, s.bitrate_kbps),
            keyframe_interval_ms=s.keyframe_interval_ms,
        )

    # -- lifecycle --------------------------------------------------------------------------
    def stop(self) -> None:
        self._stop.set()

    async def run(self) -> HostStatus:
        s = self.settings
        check_bind(
            s.listen_host,
            allow_public=s.allow_public_bind,
            flag="--public",
            env="WAVRY_HOST_ALLOW_PUBLIC_BIND",
        )
        if s.pairing == "open":
            log.warning(
                "pairing is OPEN: any client that can reach this host may control it "
                "(use --allow WAVRY_ID or --pairing prompt outside of tests)"
            )
        config = RiftConfig(idle_timeout=s.idle_timeout)
        endpoint = HostEndpoint(
            identity=self.identity,
            offer=self._offer(),
            config=config,
            allow_list=None if s.pairing == "open" else self.allow_list,
            approval_mode=s.pairing == "prompt",
        )
        self._endpoint = endpoint
        driver = await open_udp_driver(
            lambda: endpoint,
            local_addr=(s.listen_host, s.port),
            tos=DSCP_AF41,
            impairment=self._impairment or impairment_from_spec(s.impair),
        )
        self._driver = driver
        self.status.listening = driver.local_address
        host, port = driver.local_address
        log.info(
            "Wavry host ready. ID %s, listening on udp://%s:%d", self.identity.wavry_id, host, port
        )
        mdns = await self._start_mdns(port)
        loop = asyncio.get_running_loop()
        deadline = None if s.run_for is None else loop.time() + s.run_for
        try:
            while not self._stop.is_set():
                if deadline is not None and loop.time() >= deadline:
                    break
                await driver.wait_activity(0.25)
                self._handle_events(loop.time())
                self._check_pipeline()
        finally:
            self._stop_pipeline()
            endpoint.close_all(loop.time())
            driver.close()
            if mdns is not None:
                await mdns.close()
            if self._injector is not None:
                self._injector.close()
        return self.status

    async def _start_mdns(self, port: int) -> AsyncMdnsAdvertisement | None:
        if not self.settings.mdns:
            return None
        from wavry.net.mdns import async_advertise_host

        listen = self.settings.listen_host
        try:
            if is_loopback(listen):
                # Announce only where we listen: a loopback host must not multicast on the LAN.
                return await async_advertise_host(
                    port=port,
                    wavry_id=self.identity.wavry_id,
                    name=socket.gethostname(),
                    addresses=["127.0.0.1"],
                    interfaces=["127.0.0.1"],
                )
            return await async_advertise_host(
                port=port, wavry_id=self.identity.wavry_id, name=socket.gethostname()
            )
        except Exception as exc:  # noqa: BLE001 - discovery is optional; say why it is off
            log.warning("mDNS advertisement unavailable (%s); clients must give the address", exc)
            return None

    # -- events ---------------------------------------------------------------------------
    def _handle_events(self, now: float) -> None:
        endpoint = self._endpoint
        assert endpoint is not None
        while (item := endpoint.next_event()) is not None:
            alias, event = item
            conn = endpoint.connections.get(alias)
            self._on_event(alias, conn, event, now)
        if self._driver is not None:
            self._driver.flush()

    def _on_event(self, alias: int, conn: Connection | None, event: ev.Event, now: float) -> None:
        if isinstance(event, ev.InputReceived):
            self._inject(event.message)
        elif isinstance(event, ev.HandshakeCompleted):
            peer = conn.peer_addr if conn else "?"
            log.info("client %s completed the handshake from %s", event.peer_wavry_id, peer)
        elif isinstance(event, ev.ApprovalRequired) and conn is not None:
            self._approve(conn, event.peer_wavry_id, now)
        elif isinstance(event, ev.SessionEstablished) and conn is not None:
            self._start_session(alias, conn, event)
        elif isinstance(event, ev.KeyframeRequested):
            if self._pipeline is not None and alias == self._session_alias:
                self._pipeline.request_keyframe()
        elif isinstance(event, ev.TargetBitrateChanged) and conn is not None:
            if self._pipeline is not None and alias == self._session_alias:
                self._pipeline.set_bitrate(conn.encoder_bitrate_kbps)
                self._pipeline.set_fps(event.fps)
        elif isinstance(event, ev.ControlReceived) and conn is not None:
            self._on_control(alias, conn, event.message)
        elif isinstance(event, ev.PeerAddressChanged):
            # Adopted only after an authenticated packet from the new address (RIFT core).
            self.status.address_changes += 1
            log.info("client moved from %s to %s", _addr(event.old), _addr(event.new))
        elif isinstance(event, ev.ConnectionClosed):
            self._end_session(alias, event)

    def _on_control(self, alias: int, conn: Connection, control: rift_pb2.ControlMessage) -> None:
        kind = control.WhichOneof("content")
        if alias != self._session_alias or self._pipeline is None:
            return
        if kind == "encoder_control":
            self._pipeline.skip_frames(control.encoder_control.skip_frames)
        elif kind == "select_monitor":
            monitor = control.select_monitor.monitor_id
            known = {m.id for m in self._pipeline.capture.monitors()}
            if monitor not in known:
                log.info("client asked for unknown monitor %d (have %s)", monitor, sorted(known))
                return
            if monitor != self._monitor and conn.params is not None:
                log.info("client selected monitor %d", monitor)
                self._monitor = monitor
                self._start_pipeline(alias, conn.params)

    def _approve(self, conn: Connection, wavry_id: str, now: float) -> None:
        ask = self._ask_approval
        if ask is None:
            self._decided(conn, wavry_id, approved=False)
            return
        # The question may take a human minutes: ask off the loop so streams keep flowing.
        loop = asyncio.get_running_loop()
        future = loop.run_in_executor(None, ask, wavry_id)
        future.add_done_callback(
            lambda f: self._decided(conn, wavry_id, approved=not f.exception() and bool(f.result()))
        )

    def _decided(self, conn: Connection, wavry_id: str, *, approved: bool) -> None:
        now = asyncio.get_running_loop().time()
        if conn.state is ConnectionState.CLOSED:
            return
        if approved:
            log.info("client %s approved by the host user", wavry_id)
            self.allow_list.add(wavry_id)
            conn.approve(now)
        else:
            log.info("client %s refused by the host user", wavry_id)
            self.status.refused.append(wavry_id)
            conn.deny(now)
        if self._driver is not None:
            self._driver.flush()

    def _start_session(self, alias: int, conn: Connection, event: ev.SessionEstablished) -> None:
        p = event.params
        log.info(
            "session with %s: %s %dx%d@%d, %d kbit/s, keyframe every %d ms",
            event.peer_wavry_id,
            rift_pb2.Codec.Name(p.codec),
            p.width,
            p.height,
            p.fps,
            p.bitrate_kbps,
            p.keyframe_interval_ms,
        )
        self.status.sessions_started += 1
        self._monitor = self.settings.monitor
        self._start_pipeline(alias, p)
        self._ensure_injector()
        pipeline = self._pipeline
        if pipeline is not None:
            monitors = [
                rift_pb2.MonitorInfo(id=m.id, name=m.name, width=m.width, height=m.height)
                for m in pipeline.capture.monitors()[:16]
            ]
            listing = rift_pb2.MonitorList(monitors=monitors)
            conn.send_control(rift_pb2.ControlMessage(monitor_list=listing), conn_now())

    def _start_pipeline(self, alias: int, p: SessionParams) -> None:
        self._stop_pipeline()
        self._session_alias = alias
        loop = asyncio.get_running_loop()

        def deliver(out: EncodedOutput) -> None:
            loop.call_soon_threadsafe(self._send_frame, alias, out)

        capture = self._capture_factory(p)
        encoder = self._encoder_factory(p)
        self._pipeline = MediaPipeline(
            capture,
            encoder,
            fps=p.fps,
            on_output=deliver,
            keyframe_interval=p.keyframe_interval_ms / 1000 if p.keyframe_interval_ms else None,
        )
        self._pipeline.start()
        self._stream_started = (time.monotonic(), _cpu_seconds())

    def _send_frame(self, alias: int, out: EncodedOutput) -> None:
        endpoint = self._endpoint
        if endpoint is None or alias != self._session_alias:
            return
        conn = endpoint.connections.get(alias)
        if conn is None or conn.state is not ConnectionState.ESTABLISHED:
            return
        f = out.frame
        loop = asyncio.get_running_loop()
        conn.send_video_frame(
            f.data,
            keyframe=f.keyframe,
            # The same rounding as the barcode in the pixels, so the two can be compared.
            timestamp_us=capture_timestamp_us(f.capture_time),
            capture_us=min(int(out.capture_duration * 1_000_000), 2**32 - 1),
            encode_us=min(int(f.encode_duration * 1_000_000), 2**32 - 1),
            now=loop.time(),
        )
        self.status.frames_sent += 1
        if self._driver is not None:
            self._driver.flush()

    def _end_session(self, alias: int, event: ev.ConnectionClosed) -> None:
        reason = rift_pb2.DisconnectReason.Name(event.reason) if event.reason else "unspecified"
        who = "client" if event.by_peer else "host"
        log.info("session %08x closed by the %s: %s %s", alias, who, reason, event.message)
        if event.reason == rift_pb2.DISCONNECT_REJECTED:
            self.status.refused.append(event.message)
        if alias == self._session_alias:
            self._stop_pipeline()
            if self._injector is not None:
                self._injector.release_all()  # no key may stay pressed after a client leaves

    def _stop_pipeline(self) -> None:
        if self._pipeline is not None:
            self._pipeline.stop()
            self._pipeline = None
        if self._stream_started is not None:
            wall0, cpu0 = self._stream_started
            self.status.stream_wall_s += time.monotonic() - wall0
            self.status.stream_cpu_s += _cpu_seconds() - cpu0
            self._stream_started = None
        self.status.max_rss_mb = _max_rss_mb()
        self._session_alias = None

    def _check_pipeline(self) -> None:
        pipeline = self._pipeline
        if pipeline is not None and pipeline.error is not None:
            log.error("media pipeline stopped: %s; closing the session", pipeline.error)
            alias = self._session_alias
            self._stop_pipeline()
            endpoint = self._endpoint
            if endpoint is not None and alias is not None:
                conn = endpoint.connections.get(alias)
                if conn is not None:
                    loop = asyncio.get_running_loop()
                    conn.close(loop.time(), rift_pb2.DISCONNECT_SHUTDOWN, "host capture failed")

    # -- input ----------------------------------------------------------------------------
    def _ensure_injector(self) -> None:
        if self._injector is not None or self.settings.input_backend == "none":
            return
        try:
            self._injector = open_injector(self.settings.input_backend)
        except InjectorUnavailable as exc:
            log.warning("input injection unavailable: %s (the client can watch, not control)", exc)
            self.settings = _without_input(self.settings)

    def _inject(self, message: rift_pb2.InputMessage) -> None:
        injector = self._injector
        if injector is None:
            return
        try:
            injector.inject(from_proto(message))
            self.status.inputs_injected += 1
        except InputDecodeError:
            self.status.input_errors += 1


def _addr(addr: tuple[str, int]) -> str:
    host, port = addr
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def conn_now() -> float:
    return asyncio.get_running_loop().time()


def _cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _max_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def _without_input(settings: HostSettings) -> HostSettings:
    from dataclasses import replace

    return replace(settings, input_backend="none")


def prompt_on_terminal(wavry_id: str) -> bool:
    """Ask the host's user (blocking; only used when stdin is a terminal)."""
    if not sys.stdin.isatty():
        return False
    with contextlib.suppress(EOFError):
        answer = input(f"\nClient {wavry_id} wants to control this computer. Allow? [y/N] ")
        return answer.strip().lower() in ("y", "yes")
    return False
