"""Build every release artifact of one git commit into a directory.

The source is ``git archive <ref>`` (never the working tree: untracked or modified files cannot
leak into a release), built with ``SOURCE_DATE_EPOCH`` = the commit's time unless given:

* wheel and sdist: ``uv build --no-build-isolation --offline`` with the locked hatchling of the
  project environment (a build backend resolved at build time would make builds drift);
* container build contexts for gateway, master and relay (``Dockerfile`` from ``docker/``,
  the wheel, ``requirements.txt`` exported from ``uv.lock`` with hashes), after the Dockerfiles
  pass :mod:`tools.release.dockerlint`;
* the documentation bundle (README, CHANGELOG, ``docs/``);
* container images, only when a Docker daemon answers (``--images auto``); otherwise the build
  says so and the contexts are the container artifacts.

Then ``SHA256SUMS`` and ``release-manifest.json`` (:mod:`tools.release.manifest`).
"""

from __future__ import annotations

import ast
import hashlib
import os
import platform
import shutil
import subprocess
import sys
import tarfile
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from tools.release import assets, dockerlint
from tools.release.manifest import ReleaseInfo, write_metadata
from tools.release.policy import check_policy
from tools.release.reproducible import sha256_file, write_tar_gz
from tools.release.versioning import (
    ReleaseVersion,
    read_project_version,
    set_lock_version,
    set_project_version,
)

__all__ = [
    "BuildError",
    "BuildResult",
    "build_python",
    "build_release",
    "docker_available",
    "export_commit",
    "find_uv",
    "locked_python",
    "migration_head",
    "run_cmd",
    "tree_digest",
]

Log = Callable[[str], None]
DOCKERFILES = {service: f"docker/{service}.Dockerfile" for service in assets.SERVICES}


class BuildError(RuntimeError):
    pass


@dataclass(frozen=True, slots=True)
class BuildResult:
    version: ReleaseVersion
    commit: str
    source_date_epoch: int
    images_built: bool
    files: tuple[str, ...]


def run_cmd(cmd: list[str], *, cwd: Path | None = None, env: dict[str, str] | None = None) -> str:
    proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        tail = "\n".join((proc.stderr or proc.stdout).strip().splitlines()[-20:])
        raise BuildError(f"{' '.join(cmd[:4])} ... failed (exit {proc.returncode}):\n{tail}")
    return proc.stdout


def find_uv() -> str:
    found = shutil.which("uv") or shutil.which("uv", path=str(Path.home() / ".local/bin"))
    if found is None:
        raise BuildError("uv not found (./scripts/bootstrap.sh installs it)")
    return found


def export_commit(repo: Path, ref: str, dest: Path) -> tuple[str, int]:
    """Extract ``git archive ref`` into ``dest``; return (commit id, commit time)."""
    commit = run_cmd(["git", "-C", str(repo), "rev-parse", "--verify", f"{ref}^{{commit}}"]).strip()
    epoch = int(run_cmd(["git", "-C", str(repo), "log", "-1", "--format=%ct", commit]).strip())
    dest.mkdir(parents=True, exist_ok=True)
    with subprocess.Popen(
        ["git", "-C", str(repo), "archive", "--format=tar", commit], stdout=subprocess.PIPE
    ) as proc:
        assert proc.stdout is not None
        with tarfile.open(fileobj=proc.stdout, mode="r|") as tar:
            tar.extractall(dest, filter="data")
        # tarfile stops at the end-of-archive marker; read git's trailing padding so it does
        # not die of SIGPIPE
        while proc.stdout.read(1 << 16):
            pass
    if proc.returncode != 0:
        raise BuildError(f"git archive {commit} failed (exit {proc.returncode})")
    return commit, epoch


def migration_head(tree: Path) -> str | None:
    """The Alembic head revision of a source tree (read from the files, nothing imported)."""
    versions = tree / "src/wavry/storage/migrations/versions"
    revisions: dict[str, tuple[str, ...]] = {}
    for path in sorted(versions.glob("*.py")) if versions.is_dir() else []:
        values: dict[str, object] = {}
        for node in ast.parse(path.read_text(encoding="utf-8")).body:
            target: ast.expr | None = node.target if isinstance(node, ast.AnnAssign) else None
            if isinstance(node, ast.Assign) and len(node.targets) == 1:
                target = node.targets[0]
            value = node.value if isinstance(node, ast.Assign | ast.AnnAssign) else None
            if isinstance(target, ast.Name) and value is not None:
                try:
                    values[target.id] = ast.literal_eval(value)
                except ValueError:
                    continue
        rev, down = values.get("revision"), values.get("down_revision")
        if isinstance(rev, str):
            downs = down if isinstance(down, tuple) else (down,) if isinstance(down, str) else ()
            revisions[rev] = tuple(str(p) for p in downs)
    if not revisions:
        return None
    parents = {p for ps in revisions.values() for p in ps}
    heads = sorted(set(revisions) - parents)
    if len(heads) != 1:
        raise BuildError(f"migrations have {len(heads)} heads {heads}; merge them before a release")
    return heads[0]


def docker_available(timeout: float = 5.0) -> bool:
    if shutil.which("docker") is None:
        return False
    try:
        proc = subprocess.run(
            ["docker", "info", "--format", "{{.ServerVersion}}"],
            capture_output=True,
            timeout=timeout,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return False
    return proc.returncode == 0 and bool(proc.stdout.strip())


def _apply_version(tree: Path, version: ReleaseVersion) -> None:
    for name, setter in (("pyproject.toml", set_project_version), ("uv.lock", set_lock_version)):
        path = tree / name
        path.write_text(setter(path.read_text(encoding="utf-8"), version.pep440), encoding="utf-8")


def _lint_dockerfiles(tree: Path) -> None:
    problems = []
    for rel in DOCKERFILES.values():
        path = tree / rel
        if not path.is_file():
            problems.append(f"{rel}: missing")
            continue
        problems += [f.format(rel) for f in dockerlint.lint_file(path)]
    if problems:
        raise BuildError("Dockerfile lint failed:\n  " + "\n  ".join(problems))


def locked_python(repo: Path) -> str:
    """A Python with the locked hatchling: this one, else the project's ``.venv``."""
    try:
        import hatchling  # noqa: F401

        return sys.executable
    except ImportError:
        pass
    venv_python = repo / ".venv" / "bin" / "python"
    if venv_python.is_file():
        probe = subprocess.run(
            [str(venv_python), "-c", "import hatchling"], capture_output=True, check=False
        )
        if probe.returncode == 0:
            return str(venv_python)
    raise BuildError(
        f"hatchling (locked in uv.lock) is not installed in {sys.executable} nor in "
        f"{venv_python}: run ./scripts/bootstrap.sh (uv sync --locked)"
    )


def build_python(
    tree: Path, dest: Path, epoch: int, version: ReleaseVersion, python: str
) -> list[Path]:
    env = dict(os.environ, SOURCE_DATE_EPOCH=str(epoch))
    env.pop("VIRTUAL_ENV", None)
    raw = dest.parent / "python-build"
    run_cmd(
        [
            find_uv(), "build", "--offline", "--no-build-isolation", "--python", python,
            "--out-dir", str(raw), str(tree),
        ],
        env=env,
    )  # fmt: skip
    built = []
    found = sorted(p.name for p in raw.iterdir())
    try:
        wheel = assets.find_wheel(found, version)
    except ValueError as exc:
        raise BuildError(f"uv build produced {exc}") from None
    for name in (wheel or assets.wheel_name(version), assets.sdist_name(version)):
        if not (raw / name).is_file():
            raise BuildError(f"uv build did not produce {name} (got {found})")
        built.append(Path(shutil.move(str(raw / name), dest / name)))
    return built


def _requirements(tree: Path, wheel: Path) -> str:
    text = run_cmd(
        [
            find_uv(), "export", "--frozen", "--offline", "--no-dev", "--no-emit-project",
            "--format", "requirements-txt", "--quiet",
        ],
        cwd=tree,
    )  # fmt: skip
    digest = sha256_file(wheel)
    return text + f"wavry @ file:///src/{wheel.name} \\\n    --hash=sha256:{digest}\n"


def _build_contexts(
    tree: Path, dest: Path, scratch: Path, wheel: Path, version: ReleaseVersion, epoch: int
) -> dict[str, Path]:
    req = scratch / "requirements.txt"
    req.write_text(_requirements(tree, wheel), encoding="utf-8")
    contexts = {}
    for service, rel in DOCKERFILES.items():
        out = dest / assets.context_name(version, service)
        members = [("Dockerfile", tree / rel), ("requirements.txt", req), (wheel.name, wheel)]
        write_tar_gz(out, members, mtime=epoch)
        contexts[service] = out
    return contexts


def _build_docs(tree: Path, dest: Path, version: ReleaseVersion, epoch: int) -> Path:
    prefix = f"wavry-docs-{version.release}"
    members = [
        (f"{prefix}/{p.name}", p)
        for p in (tree / "README.md", tree / "CHANGELOG.md", tree / "LICENSE")
        if p.is_file()
    ]
    docs = tree / "docs"
    members += [
        (f"{prefix}/{p.relative_to(tree).as_posix()}", p)
        for p in sorted(docs.rglob("*"))
        if p.is_file()
    ]
    out = dest / assets.docs_name(version)
    write_tar_gz(out, members, mtime=epoch)
    return out


def _docker_arch() -> str:
    try:
        arch = subprocess.run(
            ["docker", "info", "--format", "{{.Architecture}}"],
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        arch = platform.machine()
    return {"x86_64": "amd64", "aarch64": "arm64"}.get(arch, arch)


def _build_images(
    contexts: dict[str, Path], dest: Path, scratch: Path, version: ReleaseVersion, epoch: int
) -> None:
    arch = _docker_arch()
    env = dict(os.environ, SOURCE_DATE_EPOCH=str(epoch))
    for service, ctx in contexts.items():
        unpacked = scratch / f"ctx-{service}"
        unpacked.mkdir()
        with tarfile.open(ctx) as tar:
            tar.extractall(unpacked, filter="data")
        tag = f"wavry-{service}:{version.release}"
        run_cmd(
            ["docker", "build", "--build-arg", f"WAVRY_VERSION={version.release}", "-t", tag,
             str(unpacked)],
            env=env,
        )  # fmt: skip
        run_cmd(
            ["docker", "save", "-o", str(dest / assets.image_name(version, service, arch)), tag]
        )


def build_release(
    repo: Path,
    out: Path,
    *,
    ref: str = "HEAD",
    images: str = "auto",
    version: str | None = None,
    source_date_epoch: int | None = None,
    log: Log = lambda _: None,
) -> BuildResult:
    """Build the release of ``ref`` into ``out`` (created; must be empty)."""
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise BuildError(f"{out} exists and is not an empty directory")
    if images not in ("auto", "never", "require"):
        raise BuildError(f"--images {images!r}: use auto, never or require")
    daemon = images != "never" and docker_available()
    if images == "require" and not daemon:
        raise BuildError("--images require: no Docker daemon answers `docker info`")
    with tempfile.TemporaryDirectory(prefix="wavry-release-") as tmp:
        scratch = Path(tmp)
        tree = scratch / "src"
        commit, commit_epoch = export_commit(repo, ref, tree)
        epoch = source_date_epoch if source_date_epoch is not None else commit_epoch
        if version is not None:
            rv = ReleaseVersion.parse(version)
            _apply_version(tree, rv)
        else:
            rv = ReleaseVersion.from_pep440(read_project_version(tree))
        log(f"building {rv} from {commit[:12]} (SOURCE_DATE_EPOCH={epoch})")
        problems = check_policy(tree)
        if problems:
            raise BuildError("version policy:\n  " + "\n  ".join(problems))
        _lint_dockerfiles(tree)
        log("Dockerfiles pass the lint rules: " + ", ".join(sorted(DOCKERFILES.values())))
        staging = scratch / "out"
        staging.mkdir()
        wheel, _sdist = build_python(tree, staging, epoch, rv, locked_python(repo))
        contexts = _build_contexts(tree, staging, scratch, wheel, rv, epoch)
        _build_docs(tree, staging, rv, epoch)
        if daemon:
            _build_images(contexts, staging, scratch, rv, epoch)
            log("container images built and saved")
        elif images == "never":
            log("container images NOT built (--images never); build contexts are the artifacts")
        else:
            log(
                "container images NOT built: no Docker daemon answers `docker info`; the "
                "reproducible build contexts are the container artifacts "
                "(docker build - < wavry-<service>-...context.tar.gz builds them)"
            )
        info = ReleaseInfo(rv, commit, epoch, migration_head(tree), daemon)
        write_metadata(staging, info)
        out.mkdir(parents=True, exist_ok=True)
        files = sorted(p.name for p in staging.iterdir())
        for name in files:
            shutil.move(str(staging / name), out / name)
    return BuildResult(rv, commit, epoch, daemon, tuple(files))


def tree_digest(directory: Path) -> str:
    """One hash over every file name and content of a directory (for reproducibility checks)."""
    h = hashlib.sha256()
    for path in sorted(directory.iterdir()):
        h.update(path.name.encode() + b"\0" + sha256_file(path).encode() + b"\n")
    return h.hexdigest()
