"""Export the signaling dialect's JSON schema to docs/signaling.schema.json.

Usage: uv run python -m tools.gen_signaling_schema [--check]

The schema is generated from the pydantic models in ``wavry.gateway.signaling.messages`` (the
code is the source of truth); tests/gateway/signaling/test_schema.py fails when the committed
file drifts, as ``--check`` does.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

OUT = Path(__file__).resolve().parent.parent / "docs" / "signaling.schema.json"


def build() -> dict[str, Any]:
    from wavry.gateway.signaling.messages import client_schema, server_schema

    defs: dict[str, Any] = {}
    roots: dict[str, Any] = {}
    for name, schema in (("ClientMessage", client_schema()), ("ServerMessage", server_schema())):
        for key, value in schema.pop("$defs", {}).items():
            if key in defs and defs[key] != value:
                raise RuntimeError(f"conflicting definitions of {key}")
            defs[key] = value
        roots[name] = schema
    roots["ClientMessage"]["description"] = "A frame a client sends to the gateway."
    roots["ServerMessage"]["description"] = "A frame the gateway sends to a client."
    defs.update(roots)
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": "https://wavry.dev/schemas/signaling.schema.json",
        "title": "Wavry signaling (GET /ws)",
        "description": (
            "One UTF-8 JSON object per WebSocket text frame (at most 65536 bytes), internally "
            "tagged by 'type'. See docs/signaling.md."
        ),
        "anyOf": [{"$ref": "#/$defs/ClientMessage"}, {"$ref": "#/$defs/ServerMessage"}],
        "$defs": dict(sorted(defs.items())),
    }


def render() -> str:
    return json.dumps(build(), indent=2, sort_keys=False, ensure_ascii=False) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only report drift, write nothing")
    ns = parser.parse_args(argv)
    text = render()
    if ns.check:
        if not OUT.exists() or OUT.read_text(encoding="utf-8") != text:
            print(f"out of date: {OUT.name}; run python -m tools.gen_signaling_schema")  # noqa: T201
            return 1
        return 0
    OUT.write_text(text, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
