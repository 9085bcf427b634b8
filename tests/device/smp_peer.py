"""A protocol peer for SMP flashing tests, written from the published specifications (not
from the client library under test): it stands in for an MCUboot board, which cannot exist
on this machine.

- Transport: SMP over a serial line as Zephyr's "SMP transport over serial" describes it:
  frames start with 0x06 0x09 (first) or 0x04 0x14 (continuation) and end in a newline;
  their base64 text, joined, decodes to a big-endian u16 length, the SMP packet and its
  CRC-16/XMODEM (big-endian).
- SMP packet: an 8-byte header (op in the low 3 bits of byte 0 and the version in the
  next 2, flags, u16 length, u16 group, sequence, command id) and a CBOR map.
- Commands: OS group (0) MCUmgr parameters (6) and reset (5); image group (1) upload (1),
  resumable by offset, with the image's SHA-256 checked when the client sends it.
- On reset, the uploaded image is checked as MCUboot checks a slot before booting it: the
  header magic 0x96F3B83D and sizes, the TLV area magic 0x6907, the SHA-256 TLV (0x10)
  over header and body, and with a trusted key the key-hash TLV (0x01) and the ECDSA P-256
  signature TLV (0x22) over the same bytes.

The peer listens on a pseudo-terminal: its slave path is a real serial device for the client.
"""
from __future__ import annotations

import base64
import hashlib
import os
import struct
import threading
import tty

import cbor2

IMAGE_MAGIC = 0x96F3B83D
TLV_INFO_MAGIC = 0x6907
TLV_SHA256, TLV_KEYHASH, TLV_ECDSA_SIG = 0x10, 0x01, 0x22
OP_READ, OP_WRITE = 0, 2


def crc16_xmodem(data: bytes) -> int:
    crc = 0
    for b in data:
        crc ^= b << 8
        for _ in range(8):
            crc = ((crc << 1) ^ 0x1021) if crc & 0x8000 else crc << 1
            crc &= 0xFFFF
    return crc


def encode_frames(packet: bytes, line: int = 127) -> bytes:
    body = struct.pack(">H", len(packet) + 2) + packet + struct.pack(">H", crc16_xmodem(packet))
    text = base64.b64encode(body)
    room = line - 3  # two marker bytes and the newline
    out = b""
    for i in range(0, len(text), room):
        out += (b"\x06\x09" if i == 0 else b"\x04\x14") + text[i:i + room] + b"\n"
    return out


def check_mcuboot_image(image: bytes, public_key=None) -> str | None:
    """None if MCUboot would boot it, else why not."""
    if len(image) < 32:
        return "too short"
    magic, _load, hdr_size, _prot, img_size, _flags = struct.unpack_from("<IIHHII", image, 0)
    if magic != IMAGE_MAGIC:
        return f"bad header magic 0x{magic:08X}"
    signed = image[:hdr_size + img_size]
    off = hdr_size + img_size
    if len(image) < off + 4:
        return "no TLV area"
    info_magic, tot = struct.unpack_from("<HH", image, off)
    if info_magic != TLV_INFO_MAGIC:
        return f"bad TLV magic 0x{info_magic:04X}"
    tlvs, p = {}, off + 4
    while p < off + tot:
        kind, n = struct.unpack_from("<HH", image, p)
        tlvs[kind] = image[p + 4:p + 4 + n]
        p += 4 + n
    if tlvs.get(TLV_SHA256) != hashlib.sha256(signed).digest():
        return "SHA-256 TLV does not match the image"
    if public_key is not None:
        from cryptography.exceptions import InvalidSignature
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.hazmat.primitives.asymmetric import ec

        if TLV_ECDSA_SIG not in tlvs:
            return "unsigned"
        der = public_key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
        if tlvs.get(TLV_KEYHASH) != hashlib.sha256(der).digest():
            return "signed with another key (key hash differs)"
        try:
            public_key.verify(tlvs[TLV_ECDSA_SIG], signed, ec.ECDSA(hashes.SHA256()))
        except InvalidSignature:
            return "bad signature"
    return None


class SmpPeer:
    def __init__(self, *, buf_size: int = 1024, public_key=None):
        self.master, slave = os.openpty()
        tty.setraw(slave)
        self.path = os.ttyname(slave)
        self._slave = slave
        self.buf_size = buf_size
        self.public_key = public_key
        self.image = bytearray()
        self.expected_len = None
        self.expected_sha = None
        self.requests: list[tuple[int, int]] = []  # (group, command id)
        self.boot_result: str | None = "not reset"
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)

    def __enter__(self) -> "SmpPeer":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join(timeout=2)
        os.close(self.master)
        os.close(self._slave)

    # ------------------------------------------------------------------ transport

    def _serve(self) -> None:
        import select

        line, text = b"", b""
        while not self._stop.is_set():
            r, _, _ = select.select([self.master], [], [], 0.1)
            if not r:
                continue
            try:
                data = os.read(self.master, 4096)
            except OSError:
                return
            for b in data:
                if b != 0x0A:
                    line += bytes([b])
                    continue
                if line[:2] == b"\x06\x09":
                    text = line[2:]
                elif line[:2] == b"\x04\x14":
                    text += line[2:]
                line = b""
                body = _try_b64(text)
                if body is None or len(body) < 2 or len(body) - 2 < struct.unpack_from(">H", body)[0]:
                    continue  # more frames to come
                n = struct.unpack_from(">H", body)[0]
                packet, crc = body[2:2 + n - 2], struct.unpack_from(">H", body, n)[0]
                text = b""
                if crc != crc16_xmodem(packet):
                    continue  # a corrupted packet is dropped; the client times out and retries
                reply = self._handle(packet)
                if reply is not None:
                    os.write(self.master, encode_frames(reply))

    # ------------------------------------------------------------------ SMP

    def _handle(self, packet: bytes) -> bytes | None:
        b0, flags, length, group, seq, cid = struct.unpack_from(">BBHHBB", packet)
        op, ver = b0 & 7, (b0 >> 3) & 3
        req = cbor2.loads(packet[8:8 + length]) if length else {}
        self.requests.append((group, cid))
        if (group, cid, op) == (0, 6, OP_READ):
            rsp = {"buf_size": self.buf_size, "buf_count": 4}
        elif (group, cid, op) == (0, 5, OP_WRITE):
            self.boot_result = check_mcuboot_image(bytes(self.image), self.public_key)
            rsp = {}
        elif (group, cid, op) == (1, 1, OP_WRITE):
            rsp = self._upload(req)
        else:
            rsp = {"rc": 8}  # MGMT_ERR_ENOTSUP
        body = cbor2.dumps(rsp)
        return struct.pack(">BBHHBB", (ver << 3) | (op + 1), 0, len(body), group, seq, cid) + body

    def _upload(self, req: dict) -> dict:
        off, data = req["off"], req["data"]
        if off == 0:
            self.image = bytearray()
            self.expected_len, self.expected_sha = req["len"], req.get("sha")
        if off != len(self.image):
            return {"off": len(self.image)}  # resume where the peer is
        self.image += data
        if len(self.image) == self.expected_len and self.expected_sha is not None:
            if hashlib.sha256(self.image).digest() != self.expected_sha:
                return {"rc": 3}  # MGMT_ERR_EINVAL
        return {"off": len(self.image)}


def _try_b64(text: bytes) -> bytes | None:
    try:
        return base64.b64decode(text, validate=True)
    except ValueError:
        return None
