"""Hatch build hook: compile the relay's optional C fast path (``wavry.relay._fastpath``).

The extension is optional (docs/relay.md, "Native fast path"): without a C compiler, Python
headers or on a non-Linux system the build succeeds without it and the relay runs its pure-Python
path. ``WAVRY_NO_EXTENSION=1`` skips it on purpose.

The build is deterministic: fixed flags (no ``__DATE__``/``__TIME__`` in the source, no debug
info, ``-ffile-prefix-map`` for any recorded path), so two builds of one tree are byte-identical
(the release tool's reproducibility check). The shared object is written next to its source, which
is what an editable install imports; a real wheel gets it as an artifact and a platform tag.

Run ``python hatch_build.py`` to rebuild it in place after editing the C source.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path
from typing import Any

try:
    from hatchling.builders.hooks.plugin.interface import BuildHookInterface
except ImportError:  # `python hatch_build.py` without hatchling installed
    BuildHookInterface = object  # type: ignore[assignment,misc]

ROOT = Path(__file__).resolve().parent
SOURCE = Path("src/wavry/relay/_fastpath.c")


def _say(text: str) -> None:
    sys.stderr.write(f"wavry: {text}\n")


def extension_path(root: Path = ROOT) -> Path:
    suffix = sysconfig.get_config_var("EXT_SUFFIX") or ".so"
    return root / SOURCE.with_name("_fastpath" + suffix)


def compile_extension(root: Path = ROOT) -> Path | None:
    """Build the shared object in place; None (and a note on stderr) when it cannot be built."""
    if os.environ.get("WAVRY_NO_EXTENSION", "") not in ("", "0"):
        return None
    if not sys.platform.startswith("linux"):
        _say("the relay fast path needs Linux; building without it")
        return None
    cc_var = os.environ.get("CC") or sysconfig.get_config_var("CC") or "cc"
    cc = shutil.which(cc_var.split()[0]) or shutil.which("cc") or shutil.which("gcc")
    include = sysconfig.get_paths()["include"]
    if cc is None or not (Path(include) / "Python.h").is_file():
        _say("no C compiler or Python headers; relay fast path not built")
        return None
    out = extension_path(root)
    tmp = out.with_name(out.name + ".tmp")
    # relative paths, run in the root: no build directory ends up in the object
    cmd = [
        cc,
        "-O2",
        "-fPIC",
        "-shared",
        "-std=c11",
        "-Wall",
        "-Wextra",
        "-Wno-unused-parameter",
        "-Wno-missing-field-initializers",
        "-Wno-cast-function-type",
        f"-ffile-prefix-map={root}=.",
        "-I",
        include,
        SOURCE.as_posix(),
        "-o",
        tmp.relative_to(root).as_posix(),
    ]
    env = dict(os.environ, SOURCE_DATE_EPOCH=os.environ.get("SOURCE_DATE_EPOCH", "0"))
    try:
        done = subprocess.run(
            cmd, cwd=root, capture_output=True, text=True, env=env, timeout=120, check=False
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        _say(f"compiling the relay fast path failed ({exc}); building without it")
        return None
    if done.returncode != 0:
        _say(f"compiling the relay fast path failed; building without it\n{done.stderr}")
        tmp.unlink(missing_ok=True)
        return None
    os.replace(tmp, out)
    return out


class CustomBuildHook(BuildHookInterface):  # type: ignore[misc,valid-type]
    PLUGIN_NAME = "custom"

    def initialize(self, version: str, build_data: dict[str, Any]) -> None:
        if self.target_name != "wheel":
            return
        root = Path(self.root)
        built = compile_extension(root)
        if built is None or version == "editable":
            # editable: the package directory is imported as is, the .so sits in it
            return
        build_data["pure_python"] = False
        build_data["infer_tag"] = True
        build_data["force_include"][str(built)] = f"wavry/relay/{built.name}"


if __name__ == "__main__":
    path = compile_extension()
    sys.stdout.write(f"{path or 'not built'}\n")
    sys.exit(0 if path else 1)
