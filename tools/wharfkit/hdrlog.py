"""HdrHistogram interval logs (wharf --hdr-log, wharf merge --hdr-log) read in Python,
standard library only: base64, zlib, the V2 encoding (common/hdr_codec.h). For charts
and checks; `wharf merge` is the reference reader.

    for iv in read_log("run.log"):
        iv.start, iv.length, iv.tag, iv.count, iv.percentile(99)   # seconds; ns
"""
import base64
import math
import struct
import zlib

COOKIE, COMPRESSED = 0x1c849313, 0x1c849314


class Interval:
    def __init__(self, start, length, tag, counts):
        self.start, self.length, self.tag = start, length, tag
        self.counts = counts  # [(value_low_ns, width_ns, count)], increasing
        self.count = sum(c for _, _, c in counts)

    def percentile(self, p):
        """The smallest bucket with p% of the values at or below it: its midpoint (ns)."""
        if not self.count:
            return 0
        rank = max(1, math.ceil(p / 100 * self.count - 1e-9))
        seen = 0
        for low, width, c in self.counts:
            seen += c
            if seen >= rank:
                return low + (width - 1) // 2
        return self.counts[-1][0]

    def max(self):
        return self.counts[-1][0] + self.counts[-1][1] - 1 if self.counts else 0


def _zigzag(buf, pos):
    z, shift = 0, 0
    for i in range(9):
        b = buf[pos]
        pos += 1
        if i == 8:
            z |= b << 56
            break
        z |= (b & 0x7f) << shift
        shift += 7
        if not b & 0x80:
            break
    return (z >> 1) ^ -(z & 1), pos


def decode(text):
    """Base64 of a V2 compressed histogram -> [(low_ns, width_ns, count)]."""
    raw = base64.b64decode(text, validate=True)
    cookie, length = struct.unpack(">II", raw[:8])
    if cookie != COMPRESSED or length != len(raw) - 8:
        raise ValueError("not an HdrHistogram V2 compressed histogram")
    raw = zlib.decompress(raw[8:])
    cookie, plen, _, digits, lowest, _ = struct.unpack(">IIiiqq", raw[:32])
    if cookie != COOKIE or plen != len(raw) - 40:
        raise ValueError("bad HdrHistogram V2 header")
    half_mag = max(math.ceil(math.log2(2 * 10 ** digits)), 1) - 1
    unit_mag = int(math.floor(math.log2(lowest)))
    out, index, pos = [], 0, 40
    while pos < len(raw):
        v, pos = _zigzag(raw, pos)
        if v < 0:
            index -= v
            continue
        if v:
            bucket, sub = (index >> half_mag) - 1, (index & ((1 << half_mag) - 1)) + (1 << half_mag)
            if bucket < 0:
                bucket, sub = 0, sub - (1 << half_mag)
            out.append((sub << (bucket + unit_mag), 1 << (bucket + unit_mag), v))
        index += 1
    return out


def read_log(path):
    """The intervals of a log, start in seconds since the epoch."""
    base = start = 0.0
    out = []
    with open(path) as f:
        for line in f:
            line = line.strip()
            if line.startswith("#[StartTime: "):
                start = float(line[13:].split()[0])
            elif line.startswith("#[BaseTime: "):
                base = float(line[12:].split()[0])
            if not line or line[0] in '#"':
                continue
            tag = None
            if line.startswith("Tag="):
                tag, line = line[4:].split(",", 1)
            s, length, _, hist = line.split(",")
            s = float(s)
            s = s + (base or start) if s < 365 * 86400 else s
            out.append(Interval(s, float(length), tag, decode(hist)))
    return out
