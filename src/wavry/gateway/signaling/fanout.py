"""Where bound connections live, and how a message reaches one: the ``Fanout`` interface.

A *binding key* names one bound connection of the whole deployment: ``"<role>:<username>"``
(``host:alice``). Its *owner* is ``"<node_id>/<conn_id>"``: the replica holding the socket and the
socket's id there. The hub never looks at other replicas' sockets; it asks the fanout to

- ``claim`` a key for a new binding (returns the previous owner, which the hub then tells to
  close: a newer BIND replaces the older one across replicas too),
- ``release`` it when the socket closes (only if still the owner: a replaced socket must not
  unbind its successor),
- ``route`` a delivery to whoever owns a key (``False`` when nobody does),
- send to one ``owner`` (replacement), or ``broadcast`` to every replica (presence, revocation).

Deliveries are small JSON-able dicts; the receiving replica's hub interprets them
(``Hub.deliver``). ``LocalFanout`` is the single-process implementation;
``redis_backend.RedisFanout`` spreads the same contract over Redis.
"""

from __future__ import annotations

import abc
import secrets
from collections.abc import Awaitable, Callable
from typing import Any

__all__ = ["Delivery", "DeliverFn", "Fanout", "LocalFanout", "new_node_id", "owner_node"]

Delivery = dict[str, Any]
DeliverFn = Callable[[Delivery], Awaitable[None]]


def new_node_id() -> str:
    return secrets.token_hex(8)


def owner_node(owner: str) -> str:
    return owner.partition("/")[0]


class Fanout(abc.ABC):
    """The binding directory and message transport between replicas."""

    node_id: str

    @abc.abstractmethod
    async def start(self, deliver: DeliverFn) -> None:
        """Begin delivering messages addressed to this replica to ``deliver``."""

    @abc.abstractmethod
    async def aclose(self) -> None: ...

    @abc.abstractmethod
    async def claim(self, key: str, owner: str) -> str | None:
        """Make ``owner`` the binding of ``key``; return the previous owner, if any."""

    @abc.abstractmethod
    async def release(self, key: str, owner: str) -> bool:
        """Remove the binding if ``owner`` still holds it; ``True`` if it did."""

    @abc.abstractmethod
    async def route(self, key: str, delivery: Delivery) -> bool:
        """Deliver to the current owner of ``key`` (``delivery["owner"]`` is set to it).
        ``False`` if ``key`` is not bound."""

    @abc.abstractmethod
    async def to_owner(self, owner: str, delivery: Delivery) -> None:
        """Deliver to the replica of ``owner`` (``delivery["owner"] = owner``)."""

    @abc.abstractmethod
    async def broadcast(self, delivery: Delivery) -> None:
        """Deliver to every replica, this one included."""

    @abc.abstractmethod
    async def is_bound(self, key: str) -> bool: ...


class LocalFanout(Fanout):
    """One process: a dict and direct calls."""

    def __init__(self, node_id: str | None = None) -> None:
        self.node_id = node_id or new_node_id()
        self._owners: dict[str, str] = {}
        self._deliver: DeliverFn | None = None

    async def start(self, deliver: DeliverFn) -> None:
        self._deliver = deliver

    async def aclose(self) -> None:
        self._deliver = None

    async def claim(self, key: str, owner: str) -> str | None:
        previous = self._owners.get(key)
        self._owners[key] = owner
        return previous

    async def release(self, key: str, owner: str) -> bool:
        if self._owners.get(key) != owner:
            return False
        del self._owners[key]
        return True

    async def route(self, key: str, delivery: Delivery) -> bool:
        owner = self._owners.get(key)
        if owner is None:
            return False
        await self.to_owner(owner, delivery)
        return True

    async def to_owner(self, owner: str, delivery: Delivery) -> None:
        if self._deliver is not None:
            await self._deliver({**delivery, "owner": owner})

    async def broadcast(self, delivery: Delivery) -> None:
        if self._deliver is not None:
            await self._deliver(delivery)

    async def is_bound(self, key: str) -> bool:
        return key in self._owners

    def __len__(self) -> int:
        return len(self._owners)
