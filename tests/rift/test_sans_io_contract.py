"""wavry.rift is sans-IO: no sockets, event loops, threads, clocks or codecs (STYLE.md §1)."""

from __future__ import annotations

import ast
from pathlib import Path

import wavry.rift

FORBIDDEN = {"asyncio", "socket", "threading", "time", "av", "random", "selectors", "uvloop"}
RIFT_DIR = Path(wavry.rift.__file__).parent


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


def test_rift_imports_no_io_modules() -> None:
    offenders = {}
    files = [p for p in RIFT_DIR.rglob("*.py") if not p.name.endswith("_pb2.py")]
    assert len(files) > 10
    for path in files:
        bad = _imports(path) & FORBIDDEN
        if bad:
            offenders[str(path.relative_to(RIFT_DIR))] = sorted(bad)
    assert offenders == {}


def test_rift_imports_nothing_of_ours_outside_rift() -> None:
    for path in RIFT_DIR.rglob("*.py"):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("wavry"):
                assert node.module.startswith("wavry.rift"), f"{path}: imports {node.module}"
