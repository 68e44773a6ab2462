"""Regenerate the RIFT protobuf bindings from src/wavry/rift/proto/rift.proto.

Usage: uv run python -m tools.gen_proto [--check]

The committed rift_pb2.py / rift_pb2.pyi must be byte-identical to what this produces with the
pinned grpcio-tools (uv.lock); tests/rift/test_proto_generated.py fails when they drift.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from pathlib import Path

PROTO_DIR = Path(__file__).resolve().parent.parent / "src" / "wavry" / "rift" / "proto"
OUTPUTS = ("rift_pb2.py", "rift_pb2.pyi")


def generate(out_dir: Path) -> None:
    """Run protoc (from grpcio-tools) on rift.proto, writing the bindings into out_dir."""
    from grpc_tools import protoc  # dev dependency: only needed to regenerate

    args = [
        "protoc",
        f"--proto_path={PROTO_DIR}",
        f"--python_out={out_dir}",
        f"--pyi_out={out_dir}",
        str(PROTO_DIR / "rift.proto"),
    ]
    if protoc.main(args) != 0:
        raise RuntimeError("protoc failed on rift.proto")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only report drift, write nothing")
    ns = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        generate(Path(tmp))
        drift = [
            name
            for name in OUTPUTS
            if not (PROTO_DIR / name).exists()
            or (PROTO_DIR / name).read_bytes() != (Path(tmp) / name).read_bytes()
        ]
        if ns.check:
            if drift:
                print(f"out of date: {', '.join(drift)}; run python -m tools.gen_proto")  # noqa: T201
                return 1
            return 0
        for name in OUTPUTS:
            shutil.copyfile(Path(tmp) / name, PROTO_DIR / name)
    return 0


if __name__ == "__main__":
    sys.exit(main())
