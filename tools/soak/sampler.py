"""RSS sampling from ``/proc/<pid>/status`` (``VmRSS``), once per interval, in a thread."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from pathlib import Path

__all__ = ["RssSampler", "children_of", "read_rss_mb"]

PidSource = Callable[[], int | None]


def read_rss_mb(pid: int) -> float | None:
    """Resident set size of ``pid`` in MB (``VmRSS``), or None if the process is gone."""
    try:
        text = Path(f"/proc/{pid}/status").read_text()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None
    for line in text.splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024.0  # kB -> MB
    return None  # a zombie has no VmRSS line


def children_of(pid: int) -> list[int]:
    """Direct children of ``pid`` (scans /proc; no CONFIG_PROC_CHILDREN needed)."""
    out = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        # "pid (comm) state ppid ...": comm may contain spaces and parentheses
        fields = stat[stat.rfind(")") + 2 :].split()
        if len(fields) > 1 and int(fields[1]) == pid:
            out.append(int(entry))
    return sorted(out)


class RssSampler:
    """Samples every registered process every ``interval`` seconds until stopped.

    A process is registered with a callable that returns its pid (or None while it is not
    known yet), so a child that appears late — the demo's host — is picked up when it exists.
    Samples are ``(monotonic seconds, MB)`` per name.
    """

    def __init__(self, interval: float = 1.0) -> None:
        self.interval = interval
        self.samples: dict[str, list[tuple[float, float]]] = {}
        self._sources: dict[str, PidSource] = {}
        self._pids: dict[str, int] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="rss-sampler", daemon=True)

    def add(self, name: str, source: PidSource | int) -> None:
        if isinstance(source, int):
            pid = source

            def fn() -> int | None:
                return pid
        else:
            fn = source
        with self._lock:
            self._sources[name] = fn
            self.samples.setdefault(name, [])

    def pid(self, name: str) -> int | None:
        return self._pids.get(name)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=5)

    def sample_once(self) -> None:
        now = time.monotonic()
        with self._lock:
            sources = list(self._sources.items())
        for name, source in sources:
            pid = self._pids.get(name)
            if pid is None:
                pid = source()
                if pid is None:
                    continue
                self._pids[name] = pid
            rss = read_rss_mb(pid)
            if rss is not None:
                self.samples[name].append((now, rss))

    def _run(self) -> None:
        next_at = time.monotonic()
        while not self._stop.is_set():
            self.sample_once()
            next_at += self.interval
            self._stop.wait(max(0.0, next_at - time.monotonic()))
