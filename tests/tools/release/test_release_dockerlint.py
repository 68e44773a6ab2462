"""Dockerfile rules: the shipped Dockerfiles pass, and every rule can fail."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tools.release.build import DOCKERFILES
from tools.release.cli import main as release_main
from tools.release.dockerlint import lint_file, lint_text, parse

REPO = Path(__file__).resolve().parents[3]

GOOD = """\
# syntax=docker/dockerfile:1
FROM python:3.11.14-slim-bookworm AS build
RUN python -m venv /opt/wavry
FROM python:3.11.14-slim-bookworm
COPY --from=build /opt/wavry /opt/wavry
ENV PATH=/opt/wavry/bin:$PATH \\
    WAVRY_DATA_DIR=/var/lib/wavry
USER 10001:10001
EXPOSE 8080/tcp
HEALTHCHECK --interval=15s \\
  CMD ["python", "-c", "import urllib.request as u; u.urlopen('http://127.0.0.1:8080/health')"]
ENTRYPOINT ["wavry"]
CMD ["master"]
"""


def rules(text: str) -> set[str]:
    return {f.rule for f in lint_text(text)}


@pytest.mark.parametrize("service", sorted(DOCKERFILES))
def test_shipped_dockerfiles_pass(service: str) -> None:
    assert lint_file(REPO / DOCKERFILES[service]) == []


def test_good_example_passes() -> None:
    assert lint_text(GOOD) == []


@pytest.mark.parametrize(
    ("old", "new", "rule"),
    [
        # user
        ("USER 10001:10001\n", "", "user"),
        ("USER 10001:10001", "USER root", "user"),
        ("USER 10001:10001", "USER 0:0", "user"),
        ("USER 10001:10001", "USER root:wavry", "user"),
        ("ENTRYPOINT", "USER 0\nENTRYPOINT", "user"),  # switched back to root later
        # healthcheck
        ('HEALTHCHECK --interval=15s \\\n  CMD ["python", "-c", "import urllib.request as u; '
         "u.urlopen('http://127.0.0.1:8080/health')\"]\n", "", "healthcheck"),
        ("HEALTHCHECK --interval=15s \\\n  CMD", "HEALTHCHECK NONE\n#", "healthcheck"),
        ("/health'", "/status'", "healthcheck"),
        # latest / pinning
        ("FROM python:3.11.14-slim-bookworm\n", "FROM python:latest\n", "no-latest"),
        ("FROM python:3.11.14-slim-bookworm\n", "FROM python\n", "no-latest"),
        ("FROM python:3.11.14-slim-bookworm AS build", "FROM python:3.11-slim AS build",
         "base-pinned"),
        ("FROM python:3.11.14-slim-bookworm\n", "FROM $BASE\n", "base-pinned"),
        ("COPY --from=build", "COPY --from=busybox:latest", "no-latest"),
        # ADD of URLs
        ("RUN python", "ADD https://example.com/get-pip.py /tmp/\nRUN python", "no-add-url"),
        ("RUN python", "ADD git@github.com:x/y.git /src\nRUN python", "no-add-url"),
        # exec form
        ('CMD ["master"]', "CMD wavry master", "exec-form"),
        ('ENTRYPOINT ["wavry"]', "ENTRYPOINT wavry", "exec-form"),
        ('ENTRYPOINT ["wavry"]', "ENTRYPOINT [wavry]", "exec-form"),
        ('CMD ["python", "-c"', 'CMD python -c "', "exec-form"),
        # expose
        ("EXPOSE 8080/tcp\n", "", "expose"),
        # secrets
        ("USER 10001", "ENV WAVRY_MASTER_RELAY_AUTH_TOKEN=hunter2\nUSER 10001", "no-secrets"),
        ("USER 10001", "ARG DB_PASSWORD=s3cret\nUSER 10001", "no-secrets"),
        ("USER 10001", "ENV ADMIN_PANEL_TOKEN abcdef\nUSER 10001", "no-secrets"),
        ("USER 10001", "ENV A=1 WAVRY_MASTER_SIGNING_KEY=00ff\nUSER 10001", "no-secrets"),
        # parse
        ("EXPOSE", "EXPOSEE 1\nEXPOSE", "parse"),
    ],
)  # fmt: skip
def test_each_rule_can_fail(old: str, new: str, rule: str) -> None:
    assert old in GOOD
    assert rule in rules(GOOD.replace(old, new, 1))


def test_secret_names_without_values_are_fine() -> None:
    # an ARG without a default and an empty ENV only name the variable
    assert (
        rules(GOOD.replace("USER 10001", "ARG ADMIN_PANEL_TOKEN\nENV X_TOKEN=\nUSER 10001"))
        == set()
    )


def test_digest_pin_passes() -> None:
    pinned = GOOD.replace("python:3.11.14-slim-bookworm\n", "python@sha256:" + "ab" * 32 + "\n")
    assert lint_text(pinned) == []


def test_no_from() -> None:
    assert rules("# nothing\n") == {"parse"}


def test_continuations_and_comments() -> None:
    instrs, errors = parse("FROM a:1.2.3\nRUN a \\\n# comment\n\n  b \\\n  c\nUSER 1\n")
    assert errors == []
    assert [(i.keyword, i.args, i.line) for i in instrs] == [
        ("FROM", "a:1.2.3", 1),
        ("RUN", "a b c", 2),
        ("USER", "1", 7),
    ]
    instrs, _ = parse("# escape=`\nFROM a:1.2.3\nRUN a `\n b\n")
    assert instrs[1].args == "a b"


@given(st.text(max_size=400))
def test_lint_never_crashes(text: str) -> None:
    for finding in lint_text(text):
        assert finding.rule and finding.line >= 1


@given(st.lists(st.sampled_from(GOOD.splitlines() + ["\\", "", "FROM", "USER", "[", '["a"'])))
def test_lint_never_crashes_on_shuffled_lines(lines: list[str]) -> None:
    lint_text("\n".join(lines))


def test_cli_lint(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.Dockerfile"
    bad.write_text(GOOD.replace("USER 10001:10001\n", ""))
    assert release_main(["--repo", str(REPO), "lint", str(bad)]) == 1
    assert "[user]" in capsys.readouterr().err
    assert release_main(["--repo", str(REPO), "lint"]) == 0
