"""mDNS advertise/browse over real multicast on the loopback interface.

Everything is pinned to ``interfaces=["127.0.0.1"]``: zeroconf then sets IP_MULTICAST_IF to
127.0.0.1 and the kernel loops 224.0.0.251 back over ``lo`` even though ``lo`` lacks the
MULTICAST flag, so nothing leaves this machine. Each test uses a fresh random identity and looks
only for that identity, so another mDNS test running on the same machine cannot interfere.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import threading

import pytest
from zeroconf import ServiceBrowser, ServiceInfo, ServiceListener, Zeroconf

from wavry.net.mdns import (
    SERVICE_TYPE,
    DiscoveredHost,
    advertise_host,
    async_advertise_host,
    async_browse_hosts,
    browse_hosts,
    instance_label,
)
from wavry.rift.identity import Identity, InvalidWavryIdError

LO = ["127.0.0.1"]
# Generous browse window: the responder answers within ~0.1 s, the rest is slack for a busy CI.
BROWSE_S = 1.5


def _ours(hosts: list[DiscoveredHost], wavry_id: str) -> list[DiscoveredHost]:
    return [h for h in hosts if h.wavry_id == wavry_id]


class _Watcher(ServiceListener):
    """A long-lived browser: sees the goodbye packets that close() must send."""

    def __init__(self, instance_part: str) -> None:
        self._part = instance_part
        self.added = threading.Event()
        self.removed = threading.Event()

    def add_service(self, zc: Zeroconf, type_: str, name: str) -> None:
        if self._part in name:
            self.added.set()

    def update_service(self, zc: Zeroconf, type_: str, name: str) -> None:
        pass

    def remove_service(self, zc: Zeroconf, type_: str, name: str) -> None:
        if self._part in name:
            self.removed.set()


def test_advertise_then_browse_finds_host_and_close_unregisters() -> None:
    wid = Identity.generate().wavry_id
    watcher = _Watcher(wid[:8])
    wzc = Zeroconf(interfaces=LO)
    browser = ServiceBrowser(wzc, SERVICE_TYPE, listener=watcher)
    try:
        adv = advertise_host(
            port=48123, wavry_id=wid, name="Living room PC", addresses=["127.0.0.1"], interfaces=LO
        )
        try:
            found = _ours(browse_hosts(BROWSE_S, interfaces=LO), wid)
            assert len(found) == 1
            host = found[0]
            assert host.port == 48123
            assert host.addresses == ("127.0.0.1",)
            assert host.name == "Living room PC"
            assert host.instance == adv.instance_name
            assert host.instance.endswith("." + SERVICE_TYPE)
            assert wid[:8] in host.instance
            assert watcher.added.wait(10)
            assert not watcher.removed.is_set()
        finally:
            adv.close()
        adv.close()  # idempotent
        # Goodbye (TTL 0) records reach a browser that already knew the host: it drops it now,
        # not when the 75-minute TTL runs out.
        assert watcher.removed.wait(10)
    finally:
        browser.cancel()
        wzc.close()
    assert _ours(browse_hosts(BROWSE_S, interfaces=LO), wid) == []


async def test_async_advertise_and_browse() -> None:
    wid = Identity.generate().wavry_id
    async with await async_advertise_host(
        port=5000, wavry_id=wid, name="büro ✓", addresses=["127.0.0.1"], interfaces=LO
    ) as adv:
        found = _ours(await async_browse_hosts(BROWSE_S, interfaces=LO), wid)
        assert [(h.name, h.port, h.instance) for h in found] == [
            ("büro ✓", 5000, adv.instance_name)
        ]
    assert _ours(await async_browse_hosts(BROWSE_S, interfaces=LO), wid) == []


def test_browse_finds_host_advertised_by_another_process() -> None:
    wid = Identity.generate().wavry_id
    child = textwrap.dedent(
        f"""
        import sys
        from wavry.net.mdns import advertise_host
        with advertise_host(port=47000, wavry_id={wid!r}, name="child",
                            addresses=["127.0.0.1"], interfaces=["127.0.0.1"]):
            print("ready", flush=True)
            sys.stdin.readline()
        """
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", child],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)},
    )
    try:
        assert proc.stdout is not None and proc.stdin is not None
        assert proc.stdout.readline().strip() == "ready"
        found = _ours(browse_hosts(BROWSE_S, interfaces=LO), wid)
        assert [(h.name, h.port, h.addresses) for h in found] == [("child", 47000, ("127.0.0.1",))]
        proc.stdin.write("\n")
        proc.stdin.flush()
        assert proc.wait(10) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert _ours(browse_hosts(BROWSE_S, interfaces=LO), wid) == []


def test_foreign_version_and_bad_id_records_are_ignored() -> None:
    wid = Identity.generate().wavry_id
    label = instance_label(wid, "foreign")
    zc = Zeroconf(interfaces=LO)
    records = [
        ServiceInfo(
            SERVICE_TYPE,
            f"{label}-v2.{SERVICE_TYPE}",
            port=1,
            parsed_addresses=["127.0.0.1"],
            properties={"v": "2", "id": wid},
            server=f"{label}-v2.local.",
        ),
        ServiceInfo(
            SERVICE_TYPE,
            f"{label}-bad.{SERVICE_TYPE}",
            port=2,
            parsed_addresses=["127.0.0.1"],
            properties={"v": "1", "id": wid[:-3] + "!!!"},
            server=f"{label}-bad.local.",
        ),
        ServiceInfo(
            SERVICE_TYPE,
            f"{label}-ok.{SERVICE_TYPE}",
            port=3,
            parsed_addresses=["127.0.0.1"],
            properties={"v": "1", "id": wid},  # no name: falls back to the instance label
            server=f"{label}-ok.local.",
        ),
    ]
    try:
        for info in records:
            zc.register_service(info)
        found = [h for h in browse_hosts(BROWSE_S, interfaces=LO) if label in h.instance]
        assert [(h.port, h.name) for h in found] == [(3, f"{label}-ok")]
    finally:
        zc.unregister_all_services()
        zc.close()


def test_instance_label_is_a_safe_unique_dns_label() -> None:
    wid = Identity.generate().wavry_id
    other = Identity.generate().wavry_id
    assert instance_label(wid, "my.box.lan") == f"my-{wid[:8]}"
    assert instance_label(wid, "Dan's PC") == f"Dan-s-PC-{wid[:8]}"
    assert instance_label(wid, "...") == f"wavry-{wid[:8]}"
    long = instance_label(wid, "x" * 100)
    assert len(long.encode()) == 63 and long.endswith(wid[:8])
    assert instance_label(wid, "box") != instance_label(other, "box")


def test_advertise_rejects_misuse() -> None:
    with pytest.raises(InvalidWavryIdError):
        advertise_host(port=1, wavry_id="nope", name="x", interfaces=LO)
    wid = Identity.generate().wavry_id
    with pytest.raises(ValueError, match="port"):
        advertise_host(port=0, wavry_id=wid, name="x", interfaces=LO)
    with pytest.raises(ValueError, match="addresses"):
        advertise_host(port=1, wavry_id=wid, name="x", addresses=[], interfaces=LO)


async def test_blocking_api_refuses_a_running_loop() -> None:
    with pytest.raises(RuntimeError, match="async_browse_hosts"):
        browse_hosts(0.1, interfaces=LO)
