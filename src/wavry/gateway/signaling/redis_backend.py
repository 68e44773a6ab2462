"""Several gateway replicas through Redis: ``RedisFanout`` (signaling) and ``RedisRateLimiter``.

``RedisFanout`` implements ``fanout.Fanout``:

- the binding directory is one string key per binding, ``<prefix>:bind:<role>:<username>`` =
  ``<node_id>/<conn_id>``, with a TTL (``binding_ttl_secs``) that each replica refreshes for its
  own bindings, so a crashed replica's bindings disappear on their own;
- ``claim`` is ``SET … GET`` (atomic: exactly one replica learns the previous owner and tells it
  to close); ``release`` deletes only if still the owner (a Lua compare-and-delete);
- each replica subscribes to its own channel ``<prefix>:node:<node_id>`` plus the broadcast
  channel ``<prefix>:all``. ``route`` is one Lua script: look the owner up and ``PUBLISH`` to its
  replica's channel in the same round trip; a binding whose replica has no subscriber (it died)
  is deleted on the spot and the route reports "offline";
- a frame on a channel is ``<owner>\\n<json delivery>`` (empty owner for broadcasts).

Redis pub/sub is at-most-once: a message published while a replica is reconnecting is lost, as
on a dropped WebSocket; peers retry offers. Presence is re-read (``EXISTS``) on every WATCH.

``RedisRateLimiter`` implements the gateway's ``RateLimiter`` protocol with fixed windows shared
by every replica (``INCR`` + ``PEXPIRE`` in one script; the window index comes from the replica's
clock, which NTP keeps within far less than a window). Keys are hashed (no addresses in Redis).
If Redis fails, the limiter **fails open** (allows, logs, counts ``errors``), like Envoy's global
rate limiter: the database-backed lockouts still protect logins, and an outage of the shared
cache must not take every login down.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
import math
import time
from collections.abc import Callable
from typing import Any

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from wavry.gateway.signaling.fanout import DeliverFn, Delivery, Fanout, new_node_id, owner_node

__all__ = ["RedisFanout", "RedisRateLimiter"]

log = logging.getLogger(__name__)

_ROUTE = """
local owner = redis.call('GET', KEYS[1])
if not owner then return 0 end
local node = string.match(owner, '^([^/]+)/')
if not node then return 0 end
local n = redis.call('PUBLISH', ARGV[1] .. node, owner .. '\\n' .. ARGV[2])
if n == 0 then redis.call('DEL', KEYS[1]) end
return n
"""

_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""

_HIT = """
local n = redis.call('INCR', KEYS[1])
if n == 1 then redis.call('PEXPIRE', KEYS[1], ARGV[1]) end
return n
"""

#: largest frame accepted from a channel (a delivery carries at most one 64 KiB message)
_MAX_FRAME = 256 * 1024


def _encode(owner: str, delivery: Delivery) -> str:
    body = {k: v for k, v in delivery.items() if k != "owner"}
    return owner + "\n" + json.dumps(body, separators=(",", ":"))


def _decode(data: object) -> Delivery | None:
    if isinstance(data, bytes):
        try:
            data = data.decode("utf-8")
        except UnicodeDecodeError:
            return None
    if not isinstance(data, str) or len(data) > _MAX_FRAME:
        return None
    owner, sep, body = data.partition("\n")
    if not sep:
        return None
    try:
        delivery = json.loads(body)
    except ValueError:
        return None
    if not isinstance(delivery, dict):
        return None
    if owner:
        delivery["owner"] = owner
    return delivery


class RedisFanout(Fanout):
    def __init__(
        self,
        client: aioredis.Redis,
        *,
        node_id: str | None = None,
        prefix: str = "wavry:sig",
        binding_ttl: float = 60.0,
        reconnect_max: float = 5.0,
    ) -> None:
        self.node_id = node_id or new_node_id()
        self._redis = client
        self.prefix = prefix
        self.binding_ttl = binding_ttl
        self._ttl_ms = max(1000, int(binding_ttl * 1000))
        self._reconnect_max = reconnect_max
        self._route = client.register_script(_ROUTE)
        self._release = client.register_script(_RELEASE)
        self._mine: dict[str, str] = {}
        self._deliver: DeliverFn | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._pubsub: Any = None
        self.lost_connections = 0
        self.bad_frames = 0

    @classmethod
    def from_url(cls, url: str, **kw: Any) -> RedisFanout:
        return cls(aioredis.Redis.from_url(url, decode_responses=False), **kw)

    # --- keys ---

    def _key(self, key: str) -> str:
        return f"{self.prefix}:bind:{key}"

    def _node_channel(self, node: str) -> str:
        return f"{self.prefix}:node:{node}"

    @property
    def _all_channel(self) -> str:
        return f"{self.prefix}:all"

    # --- lifecycle ---

    async def start(self, deliver: DeliverFn) -> None:
        self._deliver = deliver
        await self._subscribe()
        self._tasks = [
            asyncio.create_task(self._listen(), name="signaling-redis-listen"),
            asyncio.create_task(self._refresh_loop(), name="signaling-redis-refresh"),
        ]

    async def _subscribe(self) -> None:
        """Subscribe and wait for both confirmations, so nothing published afterwards is lost."""
        pubsub: Any = self._redis.pubsub()
        channels = {self._node_channel(self.node_id), self._all_channel}
        try:
            await pubsub.subscribe(*channels)
            pending = {c.encode() for c in channels}
            async with asyncio.timeout(10):
                while pending:
                    msg = await pubsub.get_message(ignore_subscribe_messages=False, timeout=1.0)
                    if msg is not None and msg.get("type") in (b"subscribe", "subscribe"):
                        channel = msg.get("channel")
                        if not isinstance(channel, bytes):
                            channel = str(channel).encode()
                        pending.discard(channel)
        except BaseException:
            with contextlib.suppress(RedisError, OSError, RuntimeError):
                await pubsub.aclose()
            raise
        self._pubsub = pubsub

    async def aclose(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks = []
        if self._mine:
            with contextlib.suppress(RedisError, OSError):
                for key, owner in list(self._mine.items()):
                    await self._release(keys=[self._key(key)], args=[owner])
        self._mine.clear()
        if self._pubsub is not None:
            with contextlib.suppress(RedisError, OSError):
                await self._pubsub.aclose()
        with contextlib.suppress(RedisError, OSError):
            await self._redis.aclose()

    async def _listen(self) -> None:
        backoff = 0.1
        while True:
            if self._pubsub is None:  # lost: subscribe again, then restore our bindings
                try:
                    await self._subscribe()
                    await self._reclaim()
                    log.info("signaling: Redis subscription restored")
                    backoff = 0.1
                except (RedisError, OSError, TimeoutError):
                    await asyncio.sleep(backoff)
                    backoff = min(self._reconnect_max, backoff * 2)
                    continue
            try:
                msg = await self._pubsub.get_message(ignore_subscribe_messages=True, timeout=1.0)
            except asyncio.CancelledError:
                raise
            except (RedisError, OSError, RuntimeError) as exc:
                self.lost_connections += 1
                log.warning("signaling: Redis subscription lost (%s); reconnecting", exc)
                pubsub, self._pubsub = self._pubsub, None
                with contextlib.suppress(RedisError, OSError, RuntimeError):
                    await pubsub.aclose()
                await asyncio.sleep(backoff)
                backoff = min(self._reconnect_max, backoff * 2)
                continue
            if msg is None or msg.get("type") not in (b"message", "message"):
                continue
            delivery = _decode(msg.get("data"))
            if delivery is None:
                self.bad_frames += 1
                continue
            if self._deliver is not None:
                try:
                    await self._deliver(delivery)
                except Exception:  # noqa: BLE001 - top of the task: one bad delivery, log it
                    log.exception("signaling: delivery failed")

    async def _reclaim(self) -> None:
        """After a reconnect (Redis may have restarted empty), put our bindings back."""
        for key, owner in list(self._mine.items()):
            await self._redis.set(self._key(key), owner, px=self._ttl_ms, nx=True)

    async def _refresh_loop(self) -> None:
        interval = max(1.0, self.binding_ttl / 3)
        while True:
            await asyncio.sleep(interval)
            try:
                await self.refresh()
            except (RedisError, OSError) as exc:
                log.warning("signaling: refreshing bindings in Redis failed: %s", exc)

    async def refresh(self) -> None:
        if not self._mine:
            return
        async with self._redis.pipeline(transaction=False) as pipe:
            for key in self._mine:
                pipe.pexpire(self._key(key), self._ttl_ms)
            await pipe.execute()

    # --- Fanout ---

    async def claim(self, key: str, owner: str) -> str | None:
        previous = await self._redis.set(self._key(key), owner, px=self._ttl_ms, get=True)
        self._mine[key] = owner
        if previous is None:
            return None
        return previous.decode() if isinstance(previous, bytes) else str(previous)

    async def release(self, key: str, owner: str) -> bool:
        if self._mine.get(key) == owner:
            del self._mine[key]
        try:
            removed = await self._release(keys=[self._key(key)], args=[owner])
        except (RedisError, OSError) as exc:
            log.warning("signaling: releasing a binding failed (%s); it expires on its own", exc)
            return False
        return bool(removed)

    async def route(self, key: str, delivery: Delivery) -> bool:
        prefix = self._node_channel("")
        receivers = await self._route(
            keys=[self._key(key)], args=[prefix, json.dumps(delivery, separators=(",", ":"))]
        )
        return bool(receivers)

    async def to_owner(self, owner: str, delivery: Delivery) -> None:
        await self._redis.publish(self._node_channel(owner_node(owner)), _encode(owner, delivery))

    async def broadcast(self, delivery: Delivery) -> None:
        await self._redis.publish(self._all_channel, _encode("", delivery))

    async def is_bound(self, key: str) -> bool:
        return bool(await self._redis.exists(self._key(key)))


class RedisRateLimiter:
    """The ``RateLimiter`` protocol over Redis: fixed windows shared by every replica."""

    def __init__(
        self,
        client: aioredis.Redis,
        *,
        prefix: str = "wavry:rl",
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._redis = client
        self.prefix = prefix
        self._clock = clock
        self._hit = client.register_script(_HIT)
        self.errors = 0
        self._last_log = float("-inf")

    @classmethod
    def from_url(cls, url: str, **kw: Any) -> RedisRateLimiter:
        return cls(aioredis.Redis.from_url(url, decode_responses=False), **kw)

    async def hit(self, key: str, *, limit: int, window_secs: float) -> bool:
        window_ms = max(1, int(window_secs * 1000))
        slot = math.floor(self._clock() * 1000 / window_ms)
        digest = hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()[:32]
        rkey = f"{self.prefix}:{window_ms}:{digest}:{slot}"
        try:
            count = await self._hit(keys=[rkey], args=[window_ms])
        except (RedisError, OSError) as exc:
            self.errors += 1
            now = time.monotonic()
            if now - self._last_log > 10:
                self._last_log = now
                log.error("rate limiter: Redis unavailable (%s); allowing requests", exc)
            return True
        return int(count) <= limit

    async def aclose(self) -> None:
        with contextlib.suppress(RedisError, OSError):
            await self._redis.aclose()
