"""``verify``: a built release passes; every kind of damage fails with the file named."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tools.release.build import BuildResult
from tools.release.cli import main as release_main
from tools.release.manifest import MANIFEST, SUMS, verify

#: the one wheel (platform-tagged when the relay fast path compiled, else py3-none-any)
WHEEL_SUFFIX = ".whl"


def _name(d: Path, suffix: str) -> str:
    (found,) = [p.name for p in d.iterdir() if p.name.endswith(suffix)]
    return found


def _manifest(d: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((d / MANIFEST).read_text())
    return data


def _write_manifest(d: Path, data: dict[str, Any]) -> None:
    (d / MANIFEST).write_text(json.dumps(data, indent=2) + "\n")


def _problems_about(d: Path, name: str, *words: str) -> list[str]:
    problems = verify(d)
    hits = [p for p in problems if name in p and all(w in p for w in words)]
    assert hits, f"no problem naming {name} {words}: {problems}"
    return hits


def test_built_release_verifies(built_release: tuple[Path, BuildResult]) -> None:
    out, result = built_release
    assert verify(out) == []
    assert verify(out, expect_version=result.version.release) == []
    assert any("version" in p for p in verify(out, expect_version="9.9.9"))


def test_release_directory_holds_only_the_artifacts(
    built_release: tuple[Path, BuildResult],
) -> None:
    out, result = built_release
    names = sorted(p.name for p in out.iterdir())
    assert names == sorted([*result.files])
    assert SUMS in names and MANIFEST in names
    v = result.version
    expected = {
        _name(out, WHEEL_SUFFIX),
        f"wavry-{v.pep440}.tar.gz",
        f"wavry-docs-{v.release}-any-any.tar.gz",
        *(
            f"wavry-{s}-{v.release}-linux-any.context.tar.gz"
            for s in ("gateway", "master", "relay")
        ),
        SUMS,
        MANIFEST,
    }
    assert set(names) == expected
    manifest = _manifest(out)
    assert manifest["version"] == v.release
    assert {a["category"] for a in manifest["assets"]} == {
        "python-wheel", "python-sdist", "docs", "container-context"
    }  # fmt: skip
    assert manifest["images_built"] is False
    sums = (out / SUMS).read_text().splitlines()
    assert len(sums) == len(manifest["assets"]) == len(names) - 2


def test_missing_file(release_copy: Path) -> None:
    wheel = _name(release_copy, WHEEL_SUFFIX)
    (release_copy / wheel).unlink()
    _problems_about(release_copy, wheel, "missing")


def test_extra_file(release_copy: Path) -> None:
    (release_copy / "notes.txt").write_text("hello")
    _problems_about(release_copy, "notes.txt", "extra")


def test_extra_directory(release_copy: Path) -> None:
    (release_copy / "sub").mkdir()
    _problems_about(release_copy, "sub", "not a regular file")


def test_symlink_instead_of_file(release_copy: Path, tmp_path: Path) -> None:
    wheel = _name(release_copy, WHEEL_SUFFIX)
    (release_copy / wheel).rename(tmp_path / wheel)
    (release_copy / wheel).symlink_to(tmp_path / wheel)
    _problems_about(release_copy, wheel, "not a regular file")


def test_renamed_file(release_copy: Path) -> None:
    docs = _name(release_copy, "-any-any.tar.gz")
    (release_copy / docs).rename(release_copy / "docs.tar.gz")
    _problems_about(release_copy, "docs.tar.gz", "extra", f"{docs} renamed")
    _problems_about(release_copy, docs, "missing")


def test_altered_file(release_copy: Path) -> None:
    sdist = next(p.name for p in release_copy.iterdir() if p.name.endswith(".tar.gz")
                 and "-linux-" not in p.name and "docs" not in p.name)  # fmt: skip
    with (release_copy / sdist).open("ab") as fh:
        fh.write(b"\0")
    _problems_about(release_copy, sdist, "checksum mismatch")
    _problems_about(release_copy, sdist, "size")


def test_same_size_alteration(release_copy: Path) -> None:
    ctx = _name(release_copy, "master-" + _manifest(release_copy)["version"]
                + "-linux-any.context.tar.gz")  # fmt: skip
    data = bytearray((release_copy / ctx).read_bytes())
    data[len(data) // 2] ^= 0x01
    (release_copy / ctx).write_bytes(bytes(data))
    _problems_about(release_copy, ctx, "checksum mismatch")


def test_bad_checksum_in_sums(release_copy: Path) -> None:
    wheel = _name(release_copy, WHEEL_SUFFIX)
    lines = (release_copy / SUMS).read_text().splitlines()
    lines = [("0" * 64 + "  " + wheel) if line.endswith(wheel) else line for line in lines]
    (release_copy / SUMS).write_text("\n".join(lines) + "\n")
    _problems_about(release_copy, wheel, "checksum mismatch")
    _problems_about(release_copy, wheel, "different checksums")


def test_malformed_sums_line(release_copy: Path) -> None:
    with (release_copy / SUMS).open("a") as fh:
        fh.write("not a checksum line\n")
    _problems_about(release_copy, SUMS, "line")


def test_duplicate_in_sums(release_copy: Path) -> None:
    lines = (release_copy / SUMS).read_text().splitlines()
    lines.insert(1, lines[0])
    (release_copy / SUMS).write_text("\n".join(lines) + "\n")
    _problems_about(release_copy, lines[0].split("  ")[1], "duplicate")


def test_duplicate_in_manifest(release_copy: Path) -> None:
    data = _manifest(release_copy)
    data["assets"].insert(0, dict(data["assets"][0]))
    _write_manifest(release_copy, data)
    _problems_about(release_copy, data["assets"][0]["file"], "duplicate")


def test_manifest_field_mismatch(release_copy: Path) -> None:
    data = _manifest(release_copy)
    entry = next(a for a in data["assets"] if a["category"] == "container-context")
    entry["component"] = "relay" if entry["component"] != "relay" else "master"
    _write_manifest(release_copy, data)
    _problems_about(release_copy, entry["file"], "component")


def test_manifest_size_mismatch(release_copy: Path) -> None:
    data = _manifest(release_copy)
    data["assets"][0]["size"] += 1
    _write_manifest(release_copy, data)
    _problems_about(release_copy, data["assets"][0]["file"], "size")


def test_manifest_checksum_mismatch(release_copy: Path) -> None:
    data = _manifest(release_copy)
    data["assets"][1]["sha256"] = "f" * 64
    _write_manifest(release_copy, data)
    _problems_about(release_copy, data["assets"][1]["file"], "different checksums")


def test_manifest_and_sums_disagree_on_the_set(release_copy: Path) -> None:
    data = _manifest(release_copy)
    dropped = data["assets"].pop()
    _write_manifest(release_copy, data)
    _problems_about(release_copy, dropped["file"], "not in release-manifest.json")


def test_consistent_omission_of_a_required_asset(release_copy: Path) -> None:
    data = _manifest(release_copy)
    gone = next(a for a in data["assets"] if a["component"] == "gateway")
    data["assets"].remove(gone)
    _write_manifest(release_copy, data)
    lines = [ln for ln in (release_copy / SUMS).read_text().splitlines() if gone["file"] not in ln]
    (release_copy / SUMS).write_text("\n".join(lines) + "\n")
    (release_copy / gone["file"]).unlink()
    _problems_about(release_copy, gone["file"], "required asset absent")


def test_manifest_version_mismatch(release_copy: Path) -> None:
    data = _manifest(release_copy)
    data["version"] = "7.7.7"
    _write_manifest(release_copy, data)
    problems = verify(release_copy)
    assert any("python_version" in p for p in problems)
    assert any("not an allowed release file name for version 7.7.7" in p for p in problems)


def test_generated_at_must_be_the_source_date(release_copy: Path) -> None:
    data = _manifest(release_copy)
    data["generated_at"] = "2000-01-01T00:00:00Z"
    _write_manifest(release_copy, data)
    _problems_about(release_copy, MANIFEST, "generated_at")


def test_images_flag_must_match(release_copy: Path) -> None:
    data = _manifest(release_copy)
    data["images_built"] = True
    _write_manifest(release_copy, data)
    assert any("no image of gateway" in p for p in verify(release_copy))


@pytest.mark.parametrize("meta", [SUMS, MANIFEST])
def test_missing_metadata(release_copy: Path, meta: str) -> None:
    (release_copy / meta).unlink()
    _problems_about(release_copy, meta, "missing")


def test_manifest_not_json(release_copy: Path) -> None:
    (release_copy / MANIFEST).write_text("{")
    assert verify(release_copy)


def test_cli_verify_exit_status(release_copy: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert release_main(["verify", str(release_copy)]) == 0
    wheel = _name(release_copy, WHEEL_SUFFIX)
    (release_copy / wheel).write_bytes(b"tampered")
    assert release_main(["verify", str(release_copy)]) == 1
    assert wheel in capsys.readouterr().err


@settings(max_examples=60, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    sums=st.text(max_size=300),
    manifest=st.one_of(
        st.text(max_size=200),
        st.recursive(
            st.none() | st.booleans() | st.integers() | st.text(max_size=20),
            lambda inner: (
                st.lists(inner, max_size=4)
                | st.dictionaries(st.text(max_size=10), inner, max_size=4)
            ),
            max_leaves=20,
        ).map(json.dumps),
    ),
)
def test_verify_never_crashes_on_garbage_metadata(tmp_path: Path, sums: str, manifest: str) -> None:
    d = tmp_path / "garbage"
    d.mkdir(exist_ok=True)
    (d / SUMS).write_text(sums, encoding="utf-8", errors="surrogatepass")
    (d / MANIFEST).write_text(manifest, encoding="utf-8", errors="surrogatepass")
    assert verify(d)  # never raises, and garbage never verifies
