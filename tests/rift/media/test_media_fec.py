from __future__ import annotations

import math
import random
from collections.abc import Callable

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from wavry.rift.errors import DropReason, LocalProtocolError, RemoteProtocolError
from wavry.rift.media.fec import (
    MAX_DATA_SHARDS,
    MAX_PARITY_SHARDS,
    MAX_SHARD_LEN,
    FecDecoder,
    FecEncoder,
    ParityShard,
    group_size_for_ratio,
)
from wavry.rift.proto import rift_pb2

DET = settings(derandomize=True, deadline=None, max_examples=150)


def datagrams(rnd: random.Random, n: int, first_id: int = 100) -> dict[int, bytes]:
    return {first_id + i: rnd.randbytes(rnd.randrange(1, 1400)) for i in range(n)}


def encode_all(enc: FecEncoder, dgs: dict[int, bytes]) -> list[ParityShard]:
    shards: list[ParityShard] = []
    for pid, dg in dgs.items():
        shards += enc.add(pid, dg)
    return shards + enc.flush()


# -- group size --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("ratio", "size"),
    [
        (0.05, 20),
        (0.1, 10),
        (0.125, 8),
        (0.25, 4),
        (0.5, 2),
        (0.3, 3),
        (0.01, 32),
        (1.0, 2),
        (5.0, 2),
        (0.0, 32),
        (-1.0, 32),
        (math.nan, 32),
        (math.inf, 2),
    ],
)
def test_group_size_for_ratio(ratio: float, size: int) -> None:
    assert group_size_for_ratio(ratio) == size


def test_group_size_for_ratio_respects_custom_clamp_and_rejects_bad_bounds() -> None:
    assert group_size_for_ratio(0.05, min_group=4, max_group=30) == 20
    assert group_size_for_ratio(0.5, min_group=4, max_group=30) == 4
    with pytest.raises(LocalProtocolError):
        group_size_for_ratio(0.1, min_group=5, max_group=4)
    with pytest.raises(LocalProtocolError):
        group_size_for_ratio(0.1, max_group=MAX_DATA_SHARDS + 1)


# -- ParityShard wire form ---------------------------------------------------------------------


def test_parity_shard_round_trips_through_the_wire() -> None:
    shard = ParityShard(
        group_id=9,
        packet_ids=(5, 6, 8),
        shard_lengths=(3, 1, 2),
        parity_index=1,
        parity_count=2,
        scheme=rift_pb2.FEC_REED_SOLOMON,
        payload=b"abc",
    )
    pb = shard.to_proto()
    assert (pb.first_packet_id, pb.shard_count, pb.parity_count) == (5, 3, 2)
    assert pb.scheme == rift_pb2.FEC_REED_SOLOMON
    parsed = rift_pb2.FecPacket.FromString(pb.SerializeToString())
    assert ParityShard.from_proto(parsed) == shard


def _valid_pb() -> rift_pb2.FecPacket:
    return ParityShard(
        group_id=1,
        packet_ids=(1, 2),
        shard_lengths=(4, 2),
        parity_index=0,
        parity_count=1,
        scheme=rift_pb2.FEC_XOR,
        payload=b"wxyz",
    ).to_proto()


def _empty_group(pb: rift_pb2.FecPacket) -> None:
    pb.ClearField("packet_ids")
    pb.ClearField("shard_lengths")
    pb.shard_count = 0
    pb.payload = b""


@pytest.mark.parametrize(
    "mutate",
    [
        lambda pb: setattr(pb, "shard_count", 3),
        lambda pb: pb.packet_ids.__setitem__(0, 1),  # the first offset must be 0
        lambda pb: pb.shard_lengths.append(1),
        lambda pb: setattr(pb, "parity_count", 2),  # XOR has one parity shard
        lambda pb: setattr(pb, "parity_index", 1),
        lambda pb: setattr(pb, "parity_count", 0),
        lambda pb: setattr(pb, "payload", b"wxy"),
        lambda pb: setattr(pb, "payload", b"wxyz!"),
        lambda pb: setattr(pb, "scheme", 7),
        lambda pb: pb.packet_ids.__setitem__(1, 0),  # duplicate packet id
        lambda pb: _empty_group(pb),
    ],
)
def test_from_proto_rejects_inconsistent_packets(
    mutate: Callable[[rift_pb2.FecPacket], object],
) -> None:
    pb = _valid_pb()
    mutate(pb)
    with pytest.raises(RemoteProtocolError) as info:
        ParityShard.from_proto(pb)
    assert info.value.reason is DropReason.FEC_INVALID


def test_from_proto_limits() -> None:
    ids = list(range(MAX_DATA_SHARDS + 1))
    pb = rift_pb2.FecPacket(
        shard_count=len(ids),
        packet_ids=ids,
        shard_lengths=[1] * len(ids),
        parity_count=1,
        payload=b"x",
    )
    with pytest.raises(RemoteProtocolError):
        ParityShard.from_proto(pb)
    pb = rift_pb2.FecPacket(
        shard_count=1,
        packet_ids=[1],
        shard_lengths=[MAX_SHARD_LEN + 1],
        parity_count=1,
        payload=bytes(MAX_SHARD_LEN + 1),
    )
    with pytest.raises(RemoteProtocolError):
        ParityShard.from_proto(pb)
    pb = rift_pb2.FecPacket(
        shard_count=1,
        packet_ids=[1],
        shard_lengths=[1],
        payload=b"x",
        parity_count=MAX_PARITY_SHARDS + 1,
        scheme=rift_pb2.FEC_REED_SOLOMON,
    )
    with pytest.raises(RemoteProtocolError):
        ParityShard.from_proto(pb)


def test_direct_construction_of_invalid_shard_is_a_local_error() -> None:
    with pytest.raises(LocalProtocolError):
        ParityShard(
            group_id=0,
            packet_ids=(),
            shard_lengths=(),
            parity_index=0,
            parity_count=1,
            scheme=rift_pb2.FEC_XOR,
            payload=b"",
        )


@DET
@given(
    group_id=st.integers(0, 2**64 - 1),
    first=st.integers(0, 2**64 - 1),
    shard_count=st.integers(0, 70),
    parity_index=st.integers(0, 20),
    parity_count=st.integers(0, 20),
    scheme=st.integers(0, 3),
    payload=st.binary(max_size=40),
    lengths=st.lists(st.integers(0, 2**32 - 1), max_size=70),
    ids=st.lists(st.integers(0, 2**64 - 1), max_size=70),
)
def test_from_proto_never_raises_anything_but_fec_invalid(
    group_id: int,
    first: int,
    shard_count: int,
    parity_index: int,
    parity_count: int,
    scheme: int,
    payload: bytes,
    lengths: list[int],
    ids: list[int],
) -> None:
    pb = rift_pb2.FecPacket(
        group_id=group_id,
        first_packet_id=first,
        shard_count=shard_count,
        parity_index=parity_index,
        parity_count=parity_count,
        payload=payload,
        shard_lengths=lengths,
        packet_ids=ids,
    )
    pb.scheme = scheme  # type: ignore[assignment]
    try:
        shard = ParityShard.from_proto(pb)
    except RemoteProtocolError as exc:
        assert exc.reason is DropReason.FEC_INVALID
    else:
        assert len(shard.payload) == max(shard.shard_lengths)


# -- encoder -----------------------------------------------------------------------------------


def test_xor_encoder_emits_padded_xor_when_group_fills() -> None:
    enc = FecEncoder(group_size=3)
    assert enc.add(10, b"\x01\x02\x03") == []
    assert enc.add(11, b"\x10") == []
    (shard,) = enc.add(12, b"\x00\x00\x00\x04")
    assert shard == ParityShard(
        group_id=0,
        packet_ids=(10, 11, 12),
        shard_lengths=(3, 1, 4),
        parity_index=0,
        parity_count=1,
        scheme=rift_pb2.FEC_XOR,
        payload=b"\x11\x02\x03\x04",
    )
    assert enc.flush() == []


def test_flush_closes_a_partial_group_and_group_ids_increment() -> None:
    enc = FecEncoder(group_size=8)
    enc.add(1, b"a")
    (first,) = enc.flush()
    assert (first.group_id, first.packet_ids, first.payload) == (0, (1,), b"a")
    enc.add(2, b"b")
    (second,) = enc.flush()
    assert second.group_id == 1


def test_size_and_parity_changes_apply_from_the_next_group() -> None:
    enc = FecEncoder(scheme="rs", group_size=4, parity_count=2)
    enc.add(1, b"a")
    enc.set_group_size(2)
    enc.set_parity_count(3)
    assert enc.add(2, b"b") == []  # the open group still closes at 4
    enc.add(3, b"c")
    shards = enc.add(4, b"d")
    assert [s.parity_index for s in shards] == [0, 1]
    assert all(s.parity_count == 2 for s in shards)
    enc.add(5, b"e")
    shards = enc.add(6, b"f")
    assert [len(s.packet_ids) for s in shards] == [2, 2, 2]
    assert enc.group_size == 2 and enc.parity_count == 3


def test_encoder_misuse_is_a_local_error() -> None:
    with pytest.raises(LocalProtocolError):
        FecEncoder(scheme="fountain")
    with pytest.raises(LocalProtocolError):
        FecEncoder(parity_count=2)  # XOR has one parity shard
    enc = FecEncoder(scheme="reed-solomon")
    for bad in (0, MAX_DATA_SHARDS + 1):
        with pytest.raises(LocalProtocolError):
            enc.set_group_size(bad)
    with pytest.raises(LocalProtocolError):
        enc.set_parity_count(MAX_PARITY_SHARDS + 1)
    with pytest.raises(LocalProtocolError):
        enc.add(1, bytes(MAX_SHARD_LEN + 1))


# -- decoder -----------------------------------------------------------------------------------


def test_xor_recovers_one_lost_datagram_with_parity_last() -> None:
    rnd = random.Random(1)
    dgs = datagrams(rnd, 8)
    (shard,) = encode_all(FecEncoder(group_size=8), dgs)
    dec = FecDecoder()
    lost = 103
    for pid, dg in dgs.items():
        if pid != lost:
            assert dec.add_datagram(pid, dg, 0.0) == []
    assert dec.add_parity(shard, 0.0) == [dgs[lost]]
    assert dec.recovered == 1
    assert dec.open_groups == 0
    # A late original or duplicate parity changes nothing.
    assert dec.add_datagram(lost, dgs[lost], 0.0) == []
    assert dec.add_parity(shard, 0.0) == []


def test_xor_recovers_with_parity_first() -> None:
    rnd = random.Random(2)
    dgs = datagrams(rnd, 4)
    (shard,) = encode_all(FecEncoder(group_size=4), dgs)
    dec = FecDecoder()
    assert dec.add_parity(shard, 0.0) == []
    ids = list(dgs)
    assert dec.add_datagram(ids[0], dgs[ids[0]], 0.0) == []
    assert dec.add_datagram(ids[2], dgs[ids[2]], 0.0) == []
    assert dec.add_datagram(ids[3], dgs[ids[3]], 0.0) == [dgs[ids[1]]]


def test_complete_group_is_forgotten_without_recovery() -> None:
    rnd = random.Random(3)
    dgs = datagrams(rnd, 3)
    (shard,) = encode_all(FecEncoder(group_size=3), dgs)
    dec = FecDecoder()
    for pid, dg in dgs.items():
        dec.add_datagram(pid, dg, 0.0)
    assert dec.add_parity(shard, 0.0) == []
    assert (dec.open_groups, dec.completed_groups, dec.recovered) == (0, 1, 0)


def test_two_losses_in_an_xor_group_are_unrecoverable_and_expire() -> None:
    rnd = random.Random(4)
    dgs = datagrams(rnd, 4)
    (shard,) = encode_all(FecEncoder(group_size=4), dgs)
    dec = FecDecoder(max_age=0.5)
    ids = list(dgs)
    for pid in ids[2:]:
        dec.add_datagram(pid, dgs[pid], 0.0)
    assert dec.add_parity(shard, 0.125) == []
    assert dec.next_expiry() == 0.625
    dec.expire(0.624)
    assert dec.open_groups == 1
    dec.expire(0.625)
    assert (dec.open_groups, dec.unrecoverable_groups) == (0, 1)
    assert dec.add_datagram(ids[0], dgs[ids[0]], 0.7) == []


def test_parity_that_contradicts_its_group_is_fec_invalid() -> None:
    dec = FecDecoder()
    base = ParityShard(
        group_id=1,
        packet_ids=(1, 2),
        shard_lengths=(2, 2),
        parity_index=0,
        parity_count=2,
        scheme=rift_pb2.FEC_REED_SOLOMON,
        payload=b"xx",
    )
    dec.add_parity(base, 0.0)
    other = ParityShard(
        group_id=1,
        packet_ids=(1, 3),
        shard_lengths=(2, 2),
        parity_index=1,
        parity_count=2,
        scheme=rift_pb2.FEC_REED_SOLOMON,
        payload=b"yy",
    )
    with pytest.raises(RemoteProtocolError) as info:
        dec.add_parity(other, 0.0)
    assert info.value.reason is DropReason.FEC_INVALID
    claim = ParityShard(
        group_id=2,
        packet_ids=(2,),
        shard_lengths=(2,),
        parity_index=0,
        parity_count=1,
        scheme=rift_pb2.FEC_XOR,
        payload=b"zz",
    )
    with pytest.raises(RemoteProtocolError):
        dec.add_parity(claim, 0.0)  # packet 2 belongs to open group 1
    dec.add_datagram(7, b"abc", 0.0)
    wrong_len = ParityShard(
        group_id=3,
        packet_ids=(7, 8),
        shard_lengths=(2, 3),
        parity_index=0,
        parity_count=1,
        scheme=rift_pb2.FEC_XOR,
        payload=b"zzz",
    )
    with pytest.raises(RemoteProtocolError):
        dec.add_parity(wrong_len, 0.0)
    assert dec.open_groups == 1


def test_datagram_of_other_length_than_announced_fails_the_group() -> None:
    dec = FecDecoder()
    shard = ParityShard(
        group_id=1,
        packet_ids=(1, 2),
        shard_lengths=(2, 2),
        parity_index=0,
        parity_count=1,
        scheme=rift_pb2.FEC_XOR,
        payload=b"xx",
    )
    dec.add_parity(shard, 0.0)
    assert dec.add_datagram(1, b"abc", 0.0) == []
    assert (dec.open_groups, dec.unrecoverable_groups) == (0, 1)


def test_decoder_state_is_bounded() -> None:
    dec = FecDecoder(max_datagrams=4, max_groups=2)
    for pid in range(10):
        dec.add_datagram(pid, b"d", 0.0)
    for gid in range(5):
        shard = ParityShard(
            group_id=gid,
            packet_ids=(100 + 2 * gid, 101 + 2 * gid),
            shard_lengths=(1, 1),
            parity_index=0,
            parity_count=1,
            scheme=rift_pb2.FEC_XOR,
            payload=b"p",
        )
        dec.add_parity(shard, 0.0)
        assert dec.open_groups <= 2
    assert dec.unrecoverable_groups == 3
    # Datagram 0 was evicted: a group over 0 and 9 cannot use it.
    shard = ParityShard(
        group_id=10,
        packet_ids=(0, 9),
        shard_lengths=(1, 1),
        parity_index=0,
        parity_count=1,
        scheme=rift_pb2.FEC_XOR,
        payload=b"\0",
    )
    assert dec.add_parity(shard, 0.0) == [b"d"]  # 0 rebuilt from 9 and parity


@DET
@given(seed=st.integers(0, 2**32), n=st.integers(1, 32), parity_first=st.booleans())
def test_xor_property_single_erasure_is_exact(seed: int, n: int, parity_first: bool) -> None:
    rnd = random.Random(seed)
    dgs = datagrams(rnd, n)
    (shard,) = encode_all(FecEncoder(group_size=n), dgs)
    lost = rnd.choice(list(dgs))
    events: list[tuple[str, int]] = [("d", pid) for pid in dgs if pid != lost]
    rnd.shuffle(events)
    events.insert(0 if parity_first else rnd.randrange(len(events) + 1), ("p", 0))
    dec = FecDecoder()
    out: list[bytes] = []
    for kind, pid in events:
        out += dec.add_parity(shard, 0.0) if kind == "p" else dec.add_datagram(pid, dgs[pid], 0.0)
    assert out == [dgs[lost]]


@DET
@given(
    seed=st.integers(0, 2**32),
    k=st.integers(1, 24),
    m=st.integers(1, 6),
    extra_loss=st.integers(0, 2),
    parity_lost=st.integers(0, 6),
)
def test_rs_property_recovers_within_capability_and_nothing_beyond(
    seed: int, k: int, m: int, extra_loss: int, parity_lost: int
) -> None:
    rnd = random.Random(seed)
    dgs = datagrams(rnd, k)
    shards = encode_all(FecEncoder(scheme="rs", group_size=k, parity_count=m), dgs)
    assert len(shards) == m
    kept_parity = rnd.sample(shards, m - min(parity_lost, m))
    capability = len(kept_parity)
    n_lost = min(k, rnd.randint(0, capability) + extra_loss)
    lost = set(rnd.sample(list(dgs), n_lost))
    events: list[tuple[str, object]] = [("d", pid) for pid in dgs if pid not in lost]
    events += [("p", s) for s in kept_parity]
    rnd.shuffle(events)
    dec = FecDecoder()
    out: list[bytes] = []
    for kind, item in events:
        if kind == "p":
            assert isinstance(item, ParityShard)
            out += dec.add_parity(item, 0.0)
        else:
            assert isinstance(item, int)
            out += dec.add_datagram(item, dgs[item], 0.0)
    # Whatever is missing when k shards are in is rebuilt: with parity ahead of data that can
    # include datagrams that were only late. Rebuilt bytes are always exact.
    assert all(rec in dgs.values() for rec in out)
    assert dec.recovered == len(out)
    if n_lost <= capability:
        assert {dgs[pid] for pid in lost} <= set(out)
    else:
        assert out == []


@DET
@given(seed=st.integers(0, 2**32), group=st.integers(2, 10), loss=st.floats(0.0, 0.3))
def test_stream_of_groups_recovers_only_true_datagrams(seed: int, group: int, loss: float) -> None:
    rnd = random.Random(seed)
    enc = FecEncoder(group_size=group)
    dec = FecDecoder(max_groups=4, max_datagrams=64)
    sent: dict[int, bytes] = {}
    now = 0.0
    for pid in range(200):
        now += 0.001
        dg = rnd.randbytes(rnd.randrange(20, 300))
        sent[pid] = dg
        parity = enc.add(pid, dg)
        if rnd.random() >= loss:
            for rec in dec.add_datagram(pid, dg, now):
                assert rec in sent.values()
        for shard in parity:
            if rnd.random() >= loss:
                for rec in dec.add_parity(shard, now):
                    assert rec in sent.values()
        assert dec.open_groups <= 4


def test_packet_ids_travel_as_offsets_from_the_first() -> None:
    shard = ParityShard(
        group_id=9,
        packet_ids=(2**41 + 5, 2**41 + 6, 2**41 + 9),
        shard_lengths=(3, 3, 3),
        parity_index=0,
        parity_count=1,
        scheme=rift_pb2.FEC_XOR,
        payload=b"abc",
    )
    pb = shard.to_proto()
    assert list(pb.packet_ids) == [0, 1, 4] and pb.first_packet_id == 2**41 + 5
    assert ParityShard.from_proto(pb) == shard
    pb.first_packet_id = 2**64 - 2  # offsets would overflow the u64 id space
    with pytest.raises(RemoteProtocolError):
        ParityShard.from_proto(pb)
