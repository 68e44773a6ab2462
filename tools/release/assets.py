"""What a release contains and how its files are named.

========================================================  ===================  ==============
file                                                      category             component
========================================================  ===================  ==============
``wavry-<pep440>-py3-none-any.whl``                       python-wheel         wavry
``wavry-<pep440>.tar.gz``                                 python-sdist         wavry
``wavry-<service>-<version>-linux-any.context.tar.gz``    container-context    gateway/master/relay
``wavry-<service>-<version>-linux-<arch>.image.tar``      container-image      gateway/master/relay
``wavry-docs-<version>-any-any.tar.gz``                   docs                 docs
========================================================  ===================  ==============

``<version>`` is the release version (``0.2.0-canary.1``), ``<pep440>`` its Python form
(``0.2.0rc1``, standard wheel/sdist names). Images exist only when a Docker daemon built them;
everything else is required in every release.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from tools.release.versioning import ReleaseVersion

__all__ = [
    "SERVICES",
    "AssetKind",
    "classify",
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


def wheel_name(v: ReleaseVersion) -> str:
    return f"wavry-{v.pep440}-py3-none-any.whl"


def sdist_name(v: ReleaseVersion) -> str:
    return f"wavry-{v.pep440}.tar.gz"


def context_name(v: ReleaseVersion, service: str) -> str:
    return f"wavry-{service}-{v.release}-linux-any.context.tar.gz"


def image_name(v: ReleaseVersion, service: str, arch: str) -> str:
    return f"wavry-{service}-{v.release}-linux-{arch}.image.tar"


def docs_name(v: ReleaseVersion) -> str:
    return f"wavry-docs-{v.release}-any-any.tar.gz"


def required_files(v: ReleaseVersion) -> list[str]:
    names = [wheel_name(v), sdist_name(v), docs_name(v)]
    names += [context_name(v, s) for s in SERVICES]
    return sorted(names)


def classify(name: str, v: ReleaseVersion) -> AssetKind | None:
    """The kind of a release file name for version ``v``; None when the name is not allowed."""
    if name == wheel_name(v):
        return AssetKind("wavry", "any", "any", "python-wheel")
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
