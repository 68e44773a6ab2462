from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from wavry.rift.errors import HostKeyChangedError
from wavry.rift.identity import InvalidWavryIdError, wavry_id_from_public_key
from wavry.rift.trust import (
    MAX_ENTRIES,
    MAX_LABEL_LENGTH,
    AllowList,
    KnownHosts,
    TrustDecision,
    TrustFileError,
)

ID_A = wavry_id_from_public_key(bytes(range(32)))
ID_B = wavry_id_from_public_key(bytes(range(1, 33)))
ID_C = wavry_id_from_public_key(b"\xff" * 32)

wavry_ids = st.binary(min_size=32, max_size=32).map(wavry_id_from_public_key)
labels = st.one_of(
    st.none(),
    st.text(
        alphabet=st.characters(codec="utf-8", categories=["L", "N", "P", "S", "Zs"]),
        max_size=40,
    ),
)
hosts = st.text(
    alphabet=st.characters(min_codepoint=0x21, max_codepoint=0x7E), min_size=1, max_size=40
).filter(lambda h: not h.startswith("#"))


# -- allow list ----------------------------------------------------------------------------------


def test_allow_list_parse() -> None:
    text = (
        "\ufeff# paired devices\n"
        "\n"
        f"{ID_A}\n"
        f"   {ID_B}   Alice's   laptop  \n"
        "  # indented comment\n"
        f"{ID_C}\t#not-a-comment label\r\n"
    )
    allow = AllowList.parse(text)
    assert len(allow) == 3
    assert allow.allows(ID_A) and allow.allows(ID_B) and allow.allows(ID_C)
    assert not allow.allows(wavry_id_from_public_key(bytes(32)))
    assert allow.label(ID_A) is None
    assert allow.label(ID_B) == "Alice's laptop"
    assert allow.label(ID_C) == "#not-a-comment label"
    assert allow.dumps() == f"{ID_A}\n{ID_B} Alice's laptop\n{ID_C} #not-a-comment label\n"


def test_allow_list_add_remove() -> None:
    allow = AllowList()
    allow.add(ID_A, "phone")
    allow.add(ID_A, "  renamed  phone ")
    assert allow.label(ID_A) == "renamed phone"
    assert ID_A in allow and list(allow) == [ID_A]
    assert allow.remove(ID_A)
    assert not allow.remove(ID_A)
    assert not allow.allows(ID_A) and len(allow) == 0


@pytest.mark.parametrize(
    ("text", "line"),
    [
        ("not-an-id\n", 1),
        (f"{ID_A}\n\n{ID_A[:-1]}\n", 3),
        (f"# c\n{ID_A}=\n", 2),
        (f"{ID_A} bad\x00label\n", 1),
        (f"{ID_A} {'x' * (MAX_LABEL_LENGTH + 1)}\n", 1),
    ],
)
def test_allow_list_invalid_lines_name_the_line(text: str, line: int) -> None:
    with pytest.raises(TrustFileError) as info:
        AllowList.parse(text)
    assert info.value.line == line
    assert str(info.value).startswith(f"line {line}:")


def test_allow_list_add_invalid() -> None:
    allow = AllowList()
    with pytest.raises(TrustFileError, match="Wavry ID"):
        allow.add("nope")
    with pytest.raises(TrustFileError, match="control"):
        allow.add(ID_A, "bell\x07")
    assert len(allow) == 0
    allow.add(ID_A, "two\nlines")  # whitespace, line breaks included, folds to one space
    assert allow.label(ID_A) == "two lines"
    assert allow.dumps().count("\n") == 1
    assert issubclass(TrustFileError, ValueError)


def test_allow_list_bounded() -> None:
    ids = [wavry_id_from_public_key(n.to_bytes(32, "big")) for n in range(MAX_ENTRIES + 1)]
    allow = AllowList.parse("".join(i + "\n" for i in ids[:MAX_ENTRIES]))
    assert len(allow) == MAX_ENTRIES
    allow.add(ids[0], "re-adding an existing ID is fine")
    with pytest.raises(TrustFileError, match="full"):
        allow.add(ids[MAX_ENTRIES])
    with pytest.raises(TrustFileError) as info:
        AllowList.parse("".join(i + "\n" for i in ids))
    assert info.value.line == MAX_ENTRIES + 1


@given(st.lists(st.tuples(wavry_ids, labels), max_size=20))
def test_allow_list_round_trip(entries: list[tuple[str, str | None]]) -> None:
    allow = AllowList()
    for wid, label in entries:
        try:
            allow.add(wid, label)
        except TrustFileError:
            assert label is not None
    text = allow.dumps()
    again = AllowList.parse(text)
    assert again == allow
    assert again.items() == allow.items()
    assert again.dumps() == text


@settings(max_examples=300)
@given(st.text(max_size=300))
def test_allow_list_garbage_only_trust_file_error(text: str) -> None:
    try:
        allow = AllowList.parse(text)
    except TrustFileError as exc:
        assert exc.line is not None and exc.line >= 1
        return
    assert AllowList.parse(allow.dumps()) == allow


# -- known hosts ---------------------------------------------------------------------------------


def test_known_hosts_tofu_flow() -> None:
    known = KnownHosts()
    host = "192.0.2.1:4444"
    assert known.check(host, ID_A) is TrustDecision.NEW
    assert known.verify_or_raise(host, ID_A) is TrustDecision.NEW
    assert known.expected(host) is None  # NEW is not remembered implicitly
    known.remember(host, ID_A)
    assert known.expected(host) == ID_A
    assert known.check(host, ID_A) is TrustDecision.TRUSTED
    assert known.verify_or_raise(host, ID_A) is TrustDecision.TRUSTED
    assert known.check(host, ID_B) is TrustDecision.CHANGED
    with pytest.raises(HostKeyChangedError) as info:
        known.verify_or_raise(host, ID_B)
    assert info.value.expected_id == ID_A and info.value.presented_id == ID_B
    assert "known-hosts forget" in str(info.value)
    assert known.forget(host)
    assert not known.forget(host)
    assert known.check(host, ID_B) is TrustDecision.NEW


def test_known_hosts_case_insensitive_hosts() -> None:
    known = KnownHosts()
    known.remember("Desktop.Example.COM", ID_A)
    assert known.expected("desktop.example.com") == ID_A
    assert "DESKTOP.example.com" in known
    assert known.dumps() == f"desktop.example.com {ID_A}\n"


def test_known_hosts_parse_and_dumps() -> None:
    text = f"# pinned hosts\n192.0.2.1:4444 {ID_A}\n\n[2001:db8::1]:4444\t{ID_B}\ngame-pc {ID_C}\n"
    known = KnownHosts.parse(text)
    assert len(known) == 3
    assert known.expected("[2001:db8::1]:4444") == ID_B
    assert known.expected("game-pc") == ID_C
    assert KnownHosts.parse(known.dumps()) == known


@pytest.mark.parametrize(
    ("text", "line"),
    [
        (f"host-only\n{ID_A}\n", 1),
        (f"h1 {ID_A}\nh2 {ID_A} extra\n", 2),
        (f"h1 {ID_A}\nh2 not-an-id\n", 2),
        (f"h1 {ID_A}\nh1 {ID_B}\n", 2),
        (f"h\u00e9 {ID_A}\n", 1),
    ],
)
def test_known_hosts_invalid_lines(text: str, line: int) -> None:
    with pytest.raises(TrustFileError) as info:
        KnownHosts.parse(text)
    assert info.value.line == line


def test_known_hosts_duplicate_same_id_is_fine() -> None:
    known = KnownHosts.parse(f"h1 {ID_A}\nH1 {ID_A}\n")
    assert len(known) == 1


def test_known_hosts_invalid_arguments() -> None:
    known = KnownHosts()
    with pytest.raises(InvalidWavryIdError):
        known.check("h", "not-an-id")
    with pytest.raises(TrustFileError):
        known.remember("has space", ID_A)
    with pytest.raises(TrustFileError):
        known.remember("", ID_A)
    with pytest.raises(TrustFileError):
        known.remember("h", "bad")
    assert "has space" not in known


def test_known_hosts_bounded() -> None:
    known = KnownHosts()
    for n in range(MAX_ENTRIES):
        known.remember(f"h{n}", ID_A)
    known.remember("h0", ID_B)  # replacing is fine
    with pytest.raises(TrustFileError, match="full"):
        known.remember("one-more", ID_A)
    assert len(known) == MAX_ENTRIES


@given(st.dictionaries(hosts.map(str.lower), wavry_ids, max_size=20))
def test_known_hosts_round_trip(entries: dict[str, str]) -> None:
    known = KnownHosts()
    for host, wid in entries.items():
        known.remember(host, wid)
    again = KnownHosts.parse(known.dumps())
    assert again == known
    assert dict(again.items()) == entries


@settings(max_examples=300)
@given(st.text(max_size=300))
def test_known_hosts_garbage_only_trust_file_error(text: str) -> None:
    try:
        known = KnownHosts.parse(text)
    except TrustFileError as exc:
        assert exc.line is not None
        return
    assert KnownHosts.parse(known.dumps()) == known


@settings(max_examples=200)
@given(
    st.lists(
        st.one_of(wavry_ids, st.text(max_size=50), hosts),
        min_size=1,
        max_size=6,
    ).map(" ".join)
)
def test_known_hosts_near_miss_lines(line: str) -> None:
    try:
        known = KnownHosts.parse(line + "\n")
    except TrustFileError as exc:
        # The generated text may itself contain newlines: the error names a real line.
        assert exc.line is not None and 1 <= exc.line <= line.count("\n") + 1
        return
    assert len(known) <= line.count("\n") + 1
    assert KnownHosts.parse(known.dumps()) == known
