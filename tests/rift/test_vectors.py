"""docs/rift-test-vectors.json is what the implementation produces, and is self-consistent."""

from __future__ import annotations

import json

from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305

from tools.gen_test_vectors import VECTORS_PATH, build_vectors
from wavry.rift.crc import crc16_kermit
from wavry.rift.proto import rift_pb2


def test_vectors_file_matches_implementation() -> None:
    committed = json.loads(VECTORS_PATH.read_text())
    assert committed == build_vectors(), "run `uv run python -m tools.gen_test_vectors`"


def test_first_data_packet_decrypts_with_documented_key_and_nonce() -> None:
    v = json.loads(VECTORS_PATH.read_text())
    pkt = v["first_data_packet"]
    datagram = bytes.fromhex(pkt["datagram"])
    header = bytes.fromhex(pkt["header"])
    assert datagram[:18] == header
    assert int.from_bytes(header[16:18], "big") == crc16_kermit(header[:16])
    nonce = bytes(4) + (1).to_bytes(8, "little")
    assert bytes.fromhex(pkt["nonce"]) == nonce
    key = bytes.fromhex(v["k1_client_to_host"])
    plaintext = ChaCha20Poly1305(key).decrypt(nonce, datagram[18:], header)
    assert plaintext.hex() == pkt["plaintext_message"]
    hello = rift_pb2.Message.FromString(plaintext).control.hello
    assert hello.client_name == "vector-client" and hello.protocol_version == 1


def test_handshake_datagram_layout() -> None:
    v = json.loads(VECTORS_PATH.read_text())
    msg1 = bytes.fromhex(v["msg1_datagram"])
    assert len(msg1) == 30 + 32 and msg1[:4] == b"RI\x00\x01"
    assert msg1[4:20].hex() == v["inputs"]["handshake_id"]
    assert msg1[30:].hex() == v["inputs"]["client_ephemeral_public"]
    msg2 = bytes.fromhex(v["msg2_datagram"])
    assert msg2[30:62].hex() == v["inputs"]["host_ephemeral_public"]
    assert len(msg2) == 30 + 32 + 48 + len(bytes.fromhex(v["host_identity_payload"])) + 16
    msg3 = bytes.fromhex(v["msg3_datagram"])
    assert int.from_bytes(msg3[4:8], "big") == v["inputs"]["session_alias"]
    assert int.from_bytes(msg3[8:16], "big") == 0
