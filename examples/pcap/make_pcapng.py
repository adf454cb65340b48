#!/usr/bin/env python3
"""Writes mixed.pcapng: the frames of ../traffic/mixed.pcap in the pcapng format.

pcapng (draft-ietf-opsawg-pcapng): a Section Header Block, one Interface Description Block
(LINKTYPE_ETHERNET, snaplen 65535, default microsecond timestamps) and one Enhanced Packet Block
per frame, little endian, each block padded to 32 bits with its total length repeated at the
end. The same frames in both formats let tests check that bpfkit reads either the same way.
Usage: python3 make_pcapng.py [IN.pcap] [OUT.pcapng]
"""
import os
import struct
import sys

here = os.path.dirname(os.path.abspath(__file__))


def read_pcap(path):
    data = open(path, "rb").read()
    magic = data[:4]
    if magic == b"\xd4\xc3\xb2\xa1":
        e = "<"
    elif magic == b"\xa1\xb2\xc3\xd4":
        e = ">"
    else:
        raise SystemExit(f"{path}: not a microsecond pcap file")
    off = 24
    frames = []
    while off + 16 <= len(data):
        sec, usec, incl, orig = struct.unpack(e + "IIII", data[off:off + 16])
        frames.append((sec * 1_000_000 + usec, orig, data[off + 16:off + 16 + incl]))
        off += 16 + incl
    return frames


def block(btype, body):
    pad = (-len(body)) % 4
    total = 12 + len(body) + pad
    return struct.pack("<II", btype, total) + body + b"\0" * pad + struct.pack("<I", total)


def main():
    src = sys.argv[1] if len(sys.argv) > 1 else os.path.join(here, "..", "traffic", "mixed.pcap")
    out = sys.argv[2] if len(sys.argv) > 2 else os.path.join(here, "mixed.pcapng")
    # SHB: byte-order magic, version 1.0, section length unknown (-1).
    blob = block(0x0A0D0D0A, struct.pack("<IHHq", 0x1A2B3C4D, 1, 0, -1))
    # IDB: link type 1 (Ethernet), reserved, snaplen.
    blob += block(0x00000001, struct.pack("<HHI", 1, 0, 65535))
    for ts, orig, frame in read_pcap(src):
        epb = struct.pack("<IIIII", 0, ts >> 32, ts & 0xFFFFFFFF, len(frame), orig) + frame
        blob += block(0x00000006, epb)
    with open(out, "wb") as f:
        f.write(blob)
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
