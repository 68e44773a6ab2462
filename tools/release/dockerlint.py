"""A small Dockerfile rule checker for the release images (no Docker daemon needed).

Rules (each one has a test that makes it fail):

``base-pinned``   every ``FROM`` names an earlier stage, a digest (``@sha256:<64 hex>``) or an
                  exact version tag (``3.11.14-slim-bookworm``: at least X.Y.Z); never a bare
                  name, ``latest``, or a floating tag such as ``3.11-slim``
``no-latest``     no ``:latest`` anywhere (``FROM``, ``COPY --from``)
``user``          the final stage switches to a non-root ``USER`` (not ``root``/``0``, by name or
                  uid, with or without a group) and stays there
``healthcheck``   the final stage has a ``HEALTHCHECK`` (not ``NONE``) whose command fetches
                  ``/health``
``exec-form``     ``CMD``, ``ENTRYPOINT`` and ``HEALTHCHECK CMD`` use the JSON (exec) form, so the
                  service is PID 1's direct child and gets SIGTERM (no ``/bin/sh -c`` wrapper)
``no-add-url``    ``ADD`` never fetches a URL (unpinned, unverified downloads); use ``COPY``
``expose``        the final stage declares at least one ``EXPOSE``
``no-secrets``    no ``ENV``/``ARG`` with a secret-looking name (token, password, secret, private
                  or signing key, credentials) carries a value; secrets come at run time
``parse``         the file parses (instruction names known, JSON forms valid)

Usage: ``python -m tools.release lint [FILE...]`` (default: ``docker/*.Dockerfile``).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

__all__ = ["Finding", "Instruction", "lint_file", "lint_text", "parse"]

_KNOWN = {
    "ADD", "ARG", "CMD", "COPY", "ENTRYPOINT", "ENV", "EXPOSE", "FROM", "HEALTHCHECK", "LABEL",
    "MAINTAINER", "ONBUILD", "RUN", "SHELL", "STOPSIGNAL", "USER", "VOLUME", "WORKDIR",
}  # fmt: skip
_DIRECTIVE_RE = re.compile(r"^#\s*([a-zA-Z]+)\s*=\s*(\S+)\s*$")
_DIGEST_RE = re.compile(r"@sha256:[0-9a-f]{64}$")
_EXACT_TAG_RE = re.compile(r"^v?\d+\.\d+\.\d+(?:[-._][A-Za-z0-9._-]+)?$")
_SECRET_NAME_RE = re.compile(
    r"(PASSWORD|PASSWD|SECRET|TOKEN|PRIVATE_?KEY|SIGNING_?KEY|API_?KEY|CREDENTIAL|TOTP_KEY)",
    re.IGNORECASE,
)
_MAX_BYTES = 1 << 20


@dataclass(frozen=True, slots=True)
class Instruction:
    line: int  # 1-based line of the instruction keyword
    keyword: str  # upper case
    args: str  # the rest, continuation lines joined


@dataclass(frozen=True, slots=True)
class Finding:
    rule: str
    line: int
    message: str

    def format(self, path: str) -> str:
        return f"{path}:{self.line}: [{self.rule}] {self.message}"


def parse(text: str) -> tuple[list[Instruction], list[Finding]]:
    """Instructions of a Dockerfile (comments dropped, continuations joined) and parse errors."""
    if len(text.encode("utf-8", "surrogatepass")) > _MAX_BYTES:
        return [], [Finding("parse", 1, f"file larger than {_MAX_BYTES} bytes")]
    escape = "\\"
    lines = text.splitlines()
    i = 0
    while i < len(lines):  # parser directives: only at the very top
        m = _DIRECTIVE_RE.match(lines[i])
        if m is None:
            break
        if m[1].lower() == "escape" and m[2] in ("\\", "`"):
            escape = m[2]
        i += 1
    out: list[Instruction] = []
    errors: list[Finding] = []
    while i < len(lines):
        raw = lines[i]
        start = i
        i += 1
        stripped = raw.strip()
        if not stripped or stripped.startswith("#"):
            continue
        parts = [stripped]
        while parts[-1].endswith(escape) and i <= len(lines):
            parts[-1] = parts[-1][: -len(escape)]
            # comment and blank lines inside a continuation are skipped, as Docker does
            while i < len(lines) and (not lines[i].strip() or lines[i].lstrip().startswith("#")):
                i += 1
            if i >= len(lines):
                break
            parts.append(lines[i].strip())
            i += 1
        logical = " ".join(p.strip() for p in parts).strip()
        keyword, _, args = logical.partition(" ")
        keyword = keyword.upper()
        if keyword not in _KNOWN:
            errors.append(Finding("parse", start + 1, f"unknown instruction {keyword[:40]!r}"))
            continue
        out.append(Instruction(start + 1, keyword, args.strip()))
    return out, errors


def _json_array(args: str) -> list[str] | None:
    if not args.startswith("["):
        return None
    try:
        value = json.loads(args)
    except ValueError:
        return None
    if isinstance(value, list) and value and all(isinstance(v, str) for v in value):
        return value
    return None


def _flags(args: str) -> tuple[dict[str, str], str]:
    """Leading ``--name=value`` flags and the rest."""
    flags: dict[str, str] = {}
    rest = args
    while rest.startswith("--"):
        token, _, rest = rest.partition(" ")
        name, _, value = token[2:].partition("=")
        flags[name.lower()] = value
        rest = rest.lstrip()
    return flags, rest


def _stages(instrs: list[Instruction]) -> list[list[Instruction]]:
    stages: list[list[Instruction]] = []
    for ins in instrs:
        if ins.keyword == "FROM":
            stages.append([])
        if stages:
            stages[-1].append(ins)
    return stages


def _check_from(ins: Instruction, stage_names: set[str]) -> list[Finding]:
    _, rest = _flags(ins.args)
    words = rest.split()
    if not words:
        return [Finding("parse", ins.line, "FROM without an image")]
    image = words[0]
    if image.lower() in stage_names or image == "scratch":
        return []
    if "$" in image:
        return [Finding("base-pinned", ins.line, f"base image {image!r} comes from a build arg")]
    if _DIGEST_RE.search(image):
        return []
    name, _, tag = image.rpartition(":") if ":" in image.rsplit("/", 1)[-1] else (image, "", "")
    if tag == "latest":
        return [Finding("no-latest", ins.line, f"{image}: the latest tag moves; pin a version")]
    if not tag:
        return [Finding("no-latest", ins.line, f"{image}: no tag means latest; pin a version")]
    if not _EXACT_TAG_RE.match(tag):
        return [
            Finding(
                "base-pinned",
                ins.line,
                f"{name}:{tag} is a floating tag; pin an exact X.Y.Z tag or a @sha256 digest",
            )
        ]
    return []


def _is_root(user: str) -> bool:
    name = user.split(":", 1)[0].strip()
    return name in ("root", "0", "")


def lint_text(text: str) -> list[Finding]:
    instrs, findings = parse(text)
    stages = _stages(instrs)
    if not stages:
        return findings + [Finding("parse", 1, "no FROM instruction")]
    stage_names: set[str] = set()
    for ins in instrs:
        if ins.keyword == "FROM":
            findings += _check_from(ins, stage_names)
            words = _flags(ins.args)[1].split()
            if len(words) == 3 and words[1].upper() == "AS":
                stage_names.add(words[2].lower())
        elif ins.keyword in ("COPY", "ADD"):
            flags, rest = _flags(ins.args)
            src = flags.get("from", "")
            if src.endswith(":latest"):
                findings.append(Finding("no-latest", ins.line, f"COPY --from={src}"))
            if ins.keyword == "ADD":
                sources = _json_array(rest) or rest.split()
                for source in sources[:-1]:
                    if re.match(r"^(https?|ftp|git)://|^git@", source, re.IGNORECASE):
                        findings.append(
                            Finding("no-add-url", ins.line, f"ADD fetches {source[:80]!r}")
                        )
        elif ins.keyword in ("CMD", "ENTRYPOINT"):
            if _json_array(ins.args) is None:
                findings.append(
                    Finding(
                        "exec-form",
                        ins.line,
                        f"{ins.keyword} in shell form runs under /bin/sh -c (signals are not "
                        'forwarded); use the JSON form ["wavry", ...]',
                    )
                )
        elif ins.keyword in ("ENV", "ARG"):
            findings += _check_secret(ins)
    final = stages[-1]
    findings += _check_final_stage(final)
    return sorted(findings, key=lambda f: (f.line, f.rule))


def _check_secret(ins: Instruction) -> list[Finding]:
    pairs: list[tuple[str, str]] = []
    if ins.keyword == "ARG":
        name, sep, value = ins.args.partition("=")
        pairs.append((name.strip(), value.strip() if sep else ""))
    else:
        tokens = ins.args.split()
        if tokens and "=" not in tokens[0]:  # legacy ``ENV NAME value``
            pairs.append((tokens[0], " ".join(tokens[1:])))
        else:
            for token in tokens:
                name, _, value = token.partition("=")
                pairs.append((name, value))
    out = []
    for name, value in pairs:
        if _SECRET_NAME_RE.search(name) and value.strip("\"'"):
            out.append(
                Finding(
                    "no-secrets",
                    ins.line,
                    f"{ins.keyword} {name} has a value baked into the image; pass secrets at "
                    "run time (environment or a secret file)",
                )
            )
    return out


def _check_final_stage(stage: list[Instruction]) -> list[Finding]:
    findings: list[Finding] = []
    first = stage[0].line
    users = [ins for ins in stage if ins.keyword == "USER"]
    if not users:
        findings.append(Finding("user", first, "the final stage runs as root: add USER <uid>"))
    elif _is_root(users[-1].args):
        findings.append(
            Finding("user", users[-1].line, f"USER {users[-1].args} is root; use a non-root uid")
        )
    checks = [ins for ins in stage if ins.keyword == "HEALTHCHECK"]
    if not checks:
        findings.append(Finding("healthcheck", first, "the final stage has no HEALTHCHECK"))
    else:
        hc = checks[-1]
        _, rest = _flags(hc.args)
        kind, _, command = rest.partition(" ")
        if kind.upper() == "NONE":
            findings.append(Finding("healthcheck", hc.line, "HEALTHCHECK NONE disables it"))
        elif kind.upper() != "CMD":
            findings.append(Finding("parse", hc.line, "HEALTHCHECK needs CMD"))
        else:
            if _json_array(command.strip()) is None:
                findings.append(
                    Finding("exec-form", hc.line, "HEALTHCHECK CMD in shell form; use JSON form")
                )
            if "/health" not in command:
                findings.append(Finding("healthcheck", hc.line, "HEALTHCHECK must fetch /health"))
    if not any(ins.keyword == "EXPOSE" and ins.args for ins in stage):
        findings.append(Finding("expose", first, "the final stage has no EXPOSE"))
    return findings


def lint_file(path: Path) -> list[Finding]:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        return [Finding("parse", 1, f"cannot read: {exc}")]
    return lint_text(text)
