"""Every ``wavry ...`` command the operations docs show parses with the real CLI, and the docs
are linked from the README."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
OPS = ROOT / "docs" / "operations"
PAGES = ("gateway.md", "master.md", "relay.md", "host.md", "client.md", "runbooks.md")


def _docs() -> list[Path]:
    return [OPS / name for name in PAGES] + [ROOT / "docs" / "configuration.md"]


def _commands(text: str) -> list[str]:
    """``wavry ...`` command lines: from fenced code blocks (continuations joined, comments
    dropped) and from inline code spans."""
    found: list[str] = []
    for block in re.findall(r"```[a-z]*\n(.*?)```", text, re.S):
        for line in block.replace("\\\n", " ").splitlines():
            line = re.split(r"\s+#\s", line, maxsplit=1)[0].strip()
            if line:
                found.append(line)
    prose = re.sub(r"```.*?```", "", text, flags=re.S)
    prose = re.sub(r"``.*?``", "", prose)  # quoted messages that contain backticks
    found += [span for span in re.findall(r"`([^`\n]+)`", prose) if span.startswith("wavry ")]
    return found


def _wavry_argv(line: str) -> list[str] | None:
    try:
        tokens = shlex.split(line)
    except ValueError:
        return None
    for i, token in enumerate(tokens):
        if token == "wavry" or token.endswith("/bin/wavry"):
            if i + 1 < len(tokens) and tokens[i + 1].endswith(":"):
                return None  # a quoted message ("wavry host: refusing ..."), not a command
            argv = []
            for part in tokens[i + 1 :]:
                if part in ("|", "&&", ";", "||"):
                    break
                argv.append(part)
            return argv
    return None


def test_the_pages_exist() -> None:
    for page in _docs():
        assert page.is_file(), page


@pytest.mark.parametrize("page", _docs(), ids=lambda p: p.name)
def test_every_wavry_command_in_the_docs_parses(page: Path) -> None:
    from wavry.cli import build_parser

    checked = 0
    for line in _commands(page.read_text(encoding="utf-8")):
        argv = _wavry_argv(line)
        if argv is None or "--help" in argv or "-h" in argv:
            continue
        parser = build_parser()
        try:
            ns = parser.parse_args(argv)
        except SystemExit:
            pytest.fail(f"{page.name}: `{line}` does not parse with the wavry CLI")
        assert getattr(ns, "func", None) is not None or ns.command, line
        checked += 1
    if page.name != "configuration.md":
        assert checked >= 3, f"{page.name}: expected wavry commands to check"


def test_a_wrong_command_is_caught() -> None:
    """The checker itself: an unknown subcommand or flag fails to parse."""
    from wavry.cli import build_parser

    for line in ("wavry relay --no-such-flag", "wavry db --service master rewind",
                 "wavry gateway db backup"):  # fmt: skip
        argv = _wavry_argv(line)
        assert argv is not None
        with pytest.raises(SystemExit):
            build_parser().parse_args(argv)


def test_readme_links_the_operations_docs() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    for target in [f"docs/operations/{name}" for name in PAGES] + ["docs/configuration.md"]:
        assert target in readme, target
