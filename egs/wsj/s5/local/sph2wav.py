#!/usr/bin/env python3
"""A NIST SPHERE file (shorten-compressed or plain 16-bit PCM) as a RIFF WAV file.

Usage:
  local/sph2wav.py <file.sph|file.wv1> [<out.wav>]

  e.g.: local/sph2wav.py /corpora/wsj/11-1.1/wsj0/si_tr_s/011/011c0201.wv1 > x.wav
        local/sph2wav.py 011c0201.wv1 011c0201.wav
        echo "011c0201 local/sph2wav.py /corpora/.../011c0201.wv1 |" > data/x/wav.scp

Without <out.wav> the WAV goes to stdout, so the command is a Kaldi
``wav.scp`` pipe; with it, the file is written under a temporary name and
moved into place. It stands in for the LDC's sph2pipe, which Debian does
not package.

The LDC's WSJ ``.wv1`` files (and those of other LDC corpora of the time)
are NIST SPHERE: a plain-text header (``NIST_1A``, its size, usually 1024
bytes, then ``name -type value`` lines up to ``end_head``), followed by the
samples, here compressed with shorten (``sample_coding`` is
``pcm,embedded-shorten-v<version>``; T. Robinson, "SHORTEN: simple lossless
and near-lossless waveform compression", CUED/F-INFENG/TR.156, 1994).
libsndfile (soundfile) reads plain SPHERE but not shorten.

The shorten stream is decoded by ffmpeg (Debian package ffmpeg: ``-f shn``).
ffmpeg's decoder requires the stream to begin, after its shorten header,
with a FN_VERBATIM block holding a RIFF WAV header (as stand-alone ``.shn``
files do); NIST's embedded streams have none, and ffmpeg stops with
"missing verbatim section at beginning of stream". So one is inserted: the
shorten header is parsed (bits most significant first: ``ajkg``, a version
byte, then the file type, channels and, from version 1 on, block size, LPC
order, number of means and skip count, each ``ulong`` = ``uvar(uvar(2))``
where ``uvar(k)`` is a unary high part and ``k`` low bits) and the verbatim
block (command 9, a 44-byte header holding the channels and the sample
rate) is spliced in at that bit position; the compressed samples after it
are not changed. A stream that has a verbatim block is passed as it is.

The decoded samples are checked against the header's ``sample_count``:
fewer is an error (a truncated file; ffmpeg itself decodes what is there
and exits 0), more are cut off. Plain PCM in either byte order
(``sample_byte_format`` 01 or 10) is copied to little-endian WAV.

Errors (one line naming the file, exit status 1): not SPHERE, not 16-bit
PCM, not a shorten stream, ffmpeg missing or failing, too few samples.
"""

from __future__ import annotations

import array
import logging
import os
import shutil
import struct
import subprocess
import sys
from pathlib import Path
from typing import Dict

sys.path.insert(0, str(Path(__file__).resolve().parents[4] / "steps" / "libs"))
from mtlasr.cli import make_parser, program  # noqa: E402

logger = logging.getLogger("sph2wav")


def sphere_header(path: Path) -> Dict[str, object]:
    """Fields of a NIST SPHERE header, plus ``header_size``.

    Raises:
      ValueError: not a SPHERE file (naming it).
    """
    with open(path, "rb") as f:
        head = f.read(1024)
        if not head.startswith(b"NIST_1A"):
            raise ValueError(f"{path}: not a NIST SPHERE file (no NIST_1A header)")
        lines = head.split(b"\n")
        if len(lines) < 2 or not lines[1].strip().isdigit():
            raise ValueError(f"{path}: malformed SPHERE header (no header size on line 2)")
        size = int(lines[1].strip())
        if size > len(head):
            head += f.read(size - len(head))
    fields: Dict[str, object] = {"header_size": size}
    for line in head[:size].split(b"\n")[2:]:
        parts = line.decode("latin-1").split(None, 2)
        if not parts or parts[0] == "end_head":
            break
        if len(parts) == 3:
            fields[parts[0]] = int(parts[2]) if parts[1] == "-i" else parts[2].strip()
    return fields


def _uvar_bits(v: int, k: int) -> str:
    """Shorten's ``uvar(v, k)`` code as a string of bits."""
    return "0" * (v >> k) + "1" + (format(v & ((1 << k) - 1), f"0{k}b") if k else "")


def _wav_header(n_samples: int, rate: int, channels: int) -> bytes:
    data = n_samples * channels * 2
    return (b"RIFF" + struct.pack("<I", 36 + data) + b"WAVEfmt " +
            struct.pack("<IHHIIHH", 16, 1, channels, rate, rate * channels * 2, channels * 2, 16) +
            b"data" + struct.pack("<I", data))


def with_verbatim_header(stream: bytes, rate: int, channels: int, what: str) -> bytes:
    """The shorten ``stream`` with a FN_VERBATIM RIFF header after its shorten
    header, as ffmpeg's decoder requires (returned unchanged if it has one).

    Shorten header: ``ajkg``, a version byte, then (bits MSB first) the file
    type and channels, and from version 1 on the block size, LPC order,
    number of means and skip count (each ``ulong``: ``uvar(uvar(k=2))``;
    version 0: ``uvar(4)``, ``uvar(0)``), then the skip bytes.

    Raises:
      ValueError: not a shorten stream, or not 16-bit samples.
    """
    if stream[:4] != b"ajkg" or len(stream) < 6:
        raise ValueError(f"{what}: no shorten stream after the SPHERE header (no 'ajkg')")
    version = stream[4]
    nbits = 8 * len(stream)
    value = int.from_bytes(stream, "big")
    pos = 40

    def bit() -> int:
        nonlocal pos
        if pos >= nbits:
            raise ValueError(f"{what}: shorten header runs past the end of the file")
        pos += 1
        return (value >> (nbits - pos)) & 1

    def uvar(k: int) -> int:
        high = 0
        while bit() == 0:
            high += 1
        low = 0
        for _ in range(k):
            low = (low << 1) | bit()
        return (high << k) | low

    def field(k: int) -> int:
        return uvar(k) if version == 0 else uvar(uvar(2))

    ftype, nchan = field(4), field(0)
    nskip = 0
    if version > 0:
        _, _, _, nskip = field(8), field(2), field(0), field(1)
    pos += 8 * nskip
    if ftype not in (3, 5):
        raise ValueError(f"{what}: shorten file type {ftype} is not 16-bit PCM (3 or 5)")
    if nchan != channels:
        raise ValueError(f"{what}: the shorten stream has {nchan} channel(s), the SPHERE header {channels}")
    start = pos
    if uvar(2) == 9:   # FN_VERBATIM already there
        return stream
    head = _wav_header(0, rate, channels)
    ins = _uvar_bits(9, 2) + _uvar_bits(len(head), 5) + "".join(_uvar_bits(b, 8) for b in head)
    tail_bits = nbits - start
    new = (((value >> tail_bits) << len(ins) | int(ins, 2)) << tail_bits) | (value & ((1 << tail_bits) - 1))
    total = nbits + len(ins)
    pad = -total % 8
    return (new << pad).to_bytes((total + pad) // 8, "big")


def sphere_to_wav(path: Path) -> bytes:
    """A WSJ SPHERE file (shorten-compressed or plain 16-bit PCM) as a RIFF WAV.

    Raises:
      ValueError: not SPHERE, an unsupported coding, ffmpeg missing or
        failing, or fewer samples than the header announces (naming the file).
    """
    h = sphere_header(path)
    coding = str(h.get("sample_coding", "pcm"))
    rate, ch = int(h.get("sample_rate", 16000)), int(h.get("channel_count", 1))
    if int(h.get("sample_n_bytes", 2)) != 2 or not coding.startswith("pcm"):
        raise ValueError(f"{path}: only 16-bit PCM is supported, not sample_coding {coding!r} with "
                         f"{h.get('sample_n_bytes')} bytes per sample")
    data = path.read_bytes()[int(h["header_size"]):]
    if "shorten" in coding:
        if shutil.which("ffmpeg") is None:
            raise ValueError(f"{path}: ffmpeg, which decodes shorten, is not on PATH (Debian: apt-get install ffmpeg)")
        stream = with_verbatim_header(data, rate, ch, str(path))
        p = subprocess.run(["ffmpeg", "-nostdin", "-hide_banner", "-loglevel", "error", "-f", "shn", "-i", "pipe:0",
                            "-f", "s16le", "-acodec", "pcm_s16le", "pipe:1"], input=stream, capture_output=True)
        if p.returncode != 0:
            msg = " ".join(p.stderr.decode(errors="replace").split())
            raise ValueError(f"{path}: ffmpeg could not decode its shorten stream: {msg}")
        pcm = p.stdout
    else:
        pcm = data[:len(data) // 2 * 2]
        if str(h.get("sample_byte_format", "01")) == "10":   # big endian: swap each byte pair (WAV is little endian)
            samples = array.array("h", pcm)
            samples.byteswap()
            pcm = samples.tobytes()
    n = len(pcm) // (2 * ch)
    want = h.get("sample_count")
    if isinstance(want, int):
        if n < want:
            raise ValueError(f"{path}: truncated: its SPHERE header announces {want} samples, it holds {n}")
        n = want
    return _wav_header(n, rate, ch) + pcm[:n * 2 * ch]


def decode_to_file(src: Path, dst: Path) -> bool:
    """Write ``src`` as the WAV file ``dst`` (under a temporary name moved
    into place), unless ``dst`` already has the size the SPHERE header
    implies and is newer than ``src``. Returns whether it was written."""
    h = sphere_header(src)
    size = 44 + int(h.get("sample_count", -1)) * 2 * int(h.get("channel_count", 1))
    if dst.is_file() and dst.stat().st_size == size and dst.stat().st_mtime >= src.stat().st_mtime:
        return False
    wav = sphere_to_wav(src)
    dst.parent.mkdir(parents=True, exist_ok=True)
    tmp = dst.with_name(f"{dst.name}.tmp.{os.getpid()}")
    try:
        tmp.write_bytes(wav)
        os.replace(tmp, dst)
    finally:
        if tmp.exists():
            tmp.unlink()
    return True


def get_parser():
    p = make_parser(__doc__)
    p.add_argument("sphere", help="the SPHERE file (.wv1, .sph, ...)")
    p.add_argument("wav", nargs="?", help="the WAV file to write (default: stdout)")
    return p


def run(args) -> int:
    if args.wav is not None:
        decode_to_file(Path(args.sphere), Path(args.wav))
        return 0
    sys.stdout.buffer.write(sphere_to_wav(Path(args.sphere)))
    sys.stdout.buffer.flush()
    return 0


def main(argv=None) -> int:
    return program(get_parser(), run, argv, logger)


if __name__ == "__main__":
    sys.exit(main())
