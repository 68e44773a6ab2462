#!/usr/bin/env bash
# The whole test suite, exactly as CI runs it: lint, format, types, tests.
# Usage: ./scripts/test.sh [extra pytest args]
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/bootstrap.sh
export PATH="$HOME/.local/bin:$PATH"

echo "== ruff check" >&2
uv run --locked ruff check src tests tools
echo "== ruff format --check" >&2
uv run --locked ruff format --check src tests tools
echo "== protobuf bindings up to date" >&2
uv run --locked python -m tools.gen_proto --check
echo "== mypy (strict on wavry.rift and wavry.net)" >&2
uv run --locked mypy
echo "== pytest" >&2
uv run --locked pytest "$@"
