"""What a release contains and how its files are named.

========================================================  ===================  ==============
file                                                      category             component
========================================================  ===================  ==============
``wavry-<pep440>-<wheel tag>.whl``                        python-wheel         wavry
``wavry-<pep440>.tar.gz``                                 python-sdist         wavry
``wavry-<service>-<version>-linux-any.context.tar.gz``    container-context    gateway/master/relay
``wavry-<service>-<version>-linux-<arch>.image.tar``      container-image      gateway/master/relay
``wavry-docs-<version>-any-any.tar.gz``                   docs                 docs
========================================================  ===================  ==============

``<version>`` is the release version (``0.2.0-canary.1``), ``<pep440>`` its Python form
(``0.2.0rc1``, standard wheel/sdist names). The wheel carries the compiled relay fast path
(``wavry.relay._fastpath``), so its tag is the build machine's CPython and platform
(``cp311-cp311-linux_x86_64``); built where no C compiler is present it is the pure
``py3-none-any`` one. A release holds exactly one wheel. Images exist only when a Docker daemon
built them; everything else is required in every release.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from tools.release.versioning import ReleaseVersion

__all__ = [
    "SERVICES",
    "AssetKind",
    "classify",
    "find_wheel",
    "context_name",
    "docs_name",
    "image_name",
    "required_files",
    "sdist_name",
    "wheel_name",
]

SERVICES = ("gateway", "master", "relay")
_ARCHES = ("amd64", "arm64")


@dataclass(frozen=True, slots=True)
class AssetKind:
    component: str
    platform: str
    arch: str
    category: str


PURE_WHEEL_TAG = "py3-none-any"
#: wheel tags a release may carry, and the (platform, arch) each stands for
_WHEEL_TAG = re.compile(r"py3-none-any|cp3(\d+)-cp3\1-linux_(x86_64|aarch64)")
_WHEEL_ARCH = {"x86_64": "amd64", "aarch64": "arm64"}


def wheel_name(v: ReleaseVersion, tag: str = PURE_WHEEL_TAG) -> str:
    return f"wavry-{v.pep440}-{tag}.whl"


def _wheel_kind(name: str, v: ReleaseVersion) -> AssetKind | None:
    prefix, suffix = f"wavry-{v.pep440}-", ".whl"
    if not (name.startswith(prefix) and name.endswith(suffix)):
        return None
    m = _WHEEL_TAG.fullmatch(name[len(prefix) : -len(suffix)])
    if m is None:
        return None
    if m[2] is None:
        return AssetKind("wavry", "any", "any", "python-wheel")
    return AssetKind("wavry", "linux", _WHEEL_ARCH[m[2]], "python-wheel")


def find_wheel(names: Iterable[str], v: ReleaseVersion) -> str | None:
    """The one release wheel among ``names`` (None when there is none; ValueError for two)."""
    found = sorted(n for n in names if _wheel_kind(n, v) is not None)
    if len(found) > 1:
        raise ValueError(f"more than one wheel: {found}")
    return found[0] if found else None


def sdist_name(v: ReleaseVersion) -> str:
    return f"wavry-{v.pep440}.tar.gz"


def context_name(v: ReleaseVersion, service: str) -> str:
    return f"wavry-{service}-{v.release}-linux-any.context.tar.gz"


def image_name(v: ReleaseVersion, service: str, arch: str) -> str:
    return f"wavry-{service}-{v.release}-linux-{arch}.image.tar"


def docs_name(v: ReleaseVersion) -> str:
    return f"wavry-docs-{v.release}-any-any.tar.gz"


def required_files(v: ReleaseVersion) -> list[str]:
    """Every required file except the wheel, whose name depends on the build (``find_wheel``)."""
    names = [sdist_name(v), docs_name(v)]
    names += [context_name(v, s) for s in SERVICES]
    return sorted(names)


def classify(name: str, v: ReleaseVersion) -> AssetKind | None:
    """The kind of a release file name for version ``v``; None when the name is not allowed."""
    wheel = _wheel_kind(name, v)
    if wheel is not None:
        return wheel
    if name == sdist_name(v):
        return AssetKind("wavry", "any", "any", "python-sdist")
    if name == docs_name(v):
        return AssetKind("docs", "any", "any", "docs")
    for service in SERVICES:
        if name == context_name(v, service):
            return AssetKind(service, "linux", "any", "container-context")
        m = re.fullmatch(
            re.escape(f"wavry-{service}-{v.release}-linux-") + r"([a-z0-9]+)\.image\.tar", name
        )
        if m and m[1] in _ARCHES:
            return AssetKind(service, "linux", m[1], "container-image")
    return None
