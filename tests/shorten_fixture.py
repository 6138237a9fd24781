"""A minimal shorten encoder and NIST SPHERE writer, for test fixtures only.

WSJ's ``.wv1`` files are NIST SPHERE files whose samples are compressed with
shorten (T. Robinson, "SHORTEN: simple lossless and near-lossless waveform
compression", CUED/F-INFENG/TR.156, 1994) and stored after a 1024-byte
plain-text header (``sample_coding -s.. pcm,embedded-shorten-v2.00``). No
shorten encoder is packaged for Debian or PyPI, so the WSJ data-prep tests
make their ``.wv1`` files with this one and decode them through the recipe's
real path (ffmpeg's shorten decoder), checking that the samples come back
exactly.

The stream written (bits most significant first):

* ``ajkg``, a version byte (2, or 1), then six ``ulong`` header fields:
  file type (5: signed 16 bit, little endian; 3: big endian), channels,
  block size, maximum LPC order (0: only the fixed predictors are used),
  number of block means kept for the DIFF0 offset, bytes to skip (0);
* optionally a FN_VERBATIM command holding a 44-byte RIFF WAV header, as
  stand-alone ``.shn`` files have and NIST's embedded streams do not;
* per block and channel a command: FN_BLOCKSIZE (5) with a ``ulong`` before
  a shorter last block; FN_ZERO (8) for an all-zero block; otherwise the
  best of the fixed polynomial predictors DIFF0..DIFF3 (orders 0-3), the
  Rice parameter ("energy", ``uvar(3)``) and the residuals, each ``svar``;
* FN_QUIT (4), then zero bits to a byte boundary.

Codes: ``uvar(v, k)`` is ``v >> k`` zero bits, a one bit, then the low ``k``
bits of ``v``; ``ulong(v)`` is ``uvar(k, 2)`` then ``uvar(v, k)``;
``svar(v, k)`` is ``uvar(zigzag(v), k + 1)`` with ``zigzag(v)`` = ``2v`` for
``v >= 0`` and ``-2v - 1`` otherwise. DIFF0 predicts the running offset: the
mean of the last ``nmean`` block means, with the version-2 rounding
(``(sum + n/2) / n``, C division truncating toward zero).
"""

from __future__ import annotations

import struct
from pathlib import Path
from typing import Dict, List, Optional

import numpy as np

FN_DIFF0, FN_QUIT, FN_BLOCKSIZE, FN_ZERO, FN_VERBATIM = 0, 4, 5, 8, 9
TYPE_S16HL, TYPE_S16LH = 3, 5


def _tdiv(a: int, b: int) -> int:
    """C integer division (truncates toward zero)."""
    q = abs(a) // abs(b)
    return q if (a >= 0) == (b > 0) else -q


class _BitWriter:
    def __init__(self):
        self.parts: List[str] = []

    def uvar(self, v: int, k: int) -> None:
        assert v >= 0
        self.parts.append("0" * (v >> k) + "1" + (format(v & ((1 << k) - 1), f"0{k}b") if k else ""))

    def ulong(self, v: int) -> None:
        k = max(int(v).bit_length(), 0)
        self.uvar(k, 2)
        self.uvar(v, k)

    def residuals(self, z: np.ndarray, k: int) -> None:
        """``uvar(z_i, k)`` for every (non-negative) ``z_i``."""
        low = [format(int(v) & ((1 << k) - 1), f"0{k}b") if k else "" for v in z]
        self.parts.extend("0" * (int(v) >> k) + "1" + lo for v, lo in zip(z, low))

    def tobytes(self) -> bytes:
        bits = "".join(self.parts)
        bits += "0" * (-len(bits) % 8)
        return int(bits, 2).to_bytes(len(bits) // 8, "big") if bits else b""


def wav_header(n_samples: int, rate: int, channels: int) -> bytes:
    """The canonical 44-byte RIFF header of 16-bit PCM."""
    data = n_samples * channels * 2
    return (b"RIFF" + struct.pack("<I", 36 + data) + b"WAVEfmt " +
            struct.pack("<IHHIIHH", 16, 1, channels, rate, rate * channels * 2, channels * 2, 16) +
            b"data" + struct.pack("<I", data))


def encode_shorten(samples: np.ndarray, rate: int = 16000, blocksize: int = 256, nmean: int = 4,
                   version: int = 2, ftype: int = TYPE_S16LH, verbatim_wav_header: bool = False) -> bytes:
    """Shorten-compress int16 ``samples`` ((N,) or (N, channels)); returns the stream."""
    x = np.asarray(samples)
    x = x.reshape(len(x), -1).astype(np.int64)
    n, nch = x.shape
    w = _BitWriter()
    for field in (ftype, nch, blocksize, 0, nmean, 0):
        w.ulong(field)
    if verbatim_wav_header:
        head = wav_header(n, rate, nch)
        w.uvar(FN_VERBATIM, 2)
        w.uvar(len(head), 5)
        for b in head:
            w.uvar(b, 8)
    hist = [np.zeros(3, np.int64) for _ in range(nch)]
    means = [[0] * max(nmean, 1) for _ in range(nch)]
    cur = blocksize
    for start in range(0, n, blocksize):
        bs = min(blocksize, n - start)
        if bs != cur:
            w.uvar(FN_BLOCKSIZE, 2)
            w.ulong(bs)
            cur = bs
        for c in range(nch):
            blk = x[start:start + bs, c]
            if nmean == 0:
                coffset = 0
            else:
                coffset = _tdiv((nmean // 2 if version >= 2 else 0) + sum(means[c]), nmean)
            if not blk.any():
                w.uvar(FN_ZERO, 2)
            else:
                e = np.concatenate([hist[c], blk])
                cands = [blk - coffset, np.diff(e, 1)[2:], np.diff(e, 2)[1:], np.diff(e, 3)]
                order = int(np.argmin([np.abs(r).sum() for r in cands]))
                z = np.where(cands[order] >= 0, 2 * cands[order], -2 * cands[order] - 1)
                cost = [int((z >> (k + 1)).sum()) + len(z) * (k + 2) for k in range(24)]
                energy = int(np.argmin(cost))
                w.uvar(FN_DIFF0 + order, 2)
                w.uvar(energy, 3)
                w.residuals(z, energy + 1)
            hist[c] = np.concatenate([hist[c], blk])[-3:]
            if nmean > 0:
                mean = _tdiv((bs // 2 if version >= 2 else 0) + int(blk.sum()), bs)
                means[c] = means[c][1:] + [mean]
    w.uvar(FN_QUIT, 2)
    return b"ajkg" + bytes([version]) + w.tobytes()


def sphere_header(fields: Dict[str, object], size: int = 1024) -> bytes:
    """A NIST SPHERE header of ``size`` bytes: ``NIST_1A``, the size, one
    ``name -type value`` line per field (``-i`` for ints, ``-sN`` for
    strings), ``end_head``, padded with spaces."""
    lines = ["NIST_1A", f"   {size}"]
    for k, v in fields.items():
        lines.append(f"{k} -i {v}" if isinstance(v, int) else f"{k} -s{len(str(v))} {v}")
    text = ("\n".join(lines + ["end_head"]) + "\n").encode("ascii")
    assert len(text) <= size, "SPHERE header too long"
    return text + b" " * (size - len(text))


def write_sphere(path: Path, samples: np.ndarray, rate: int = 16000, shorten: bool = True,
                 byte_format: str = "01", utt_id: Optional[str] = None, **shorten_opts) -> None:
    """Write int16 ``samples`` as a WSJ-like SPHERE file: shorten-compressed
    (``pcm,embedded-shorten-v2.00``) or plain PCM in ``byte_format`` order
    (``01``: little endian, ``10``: big endian)."""
    x = np.asarray(samples, dtype=np.int16).reshape(len(samples), -1)
    fields: Dict[str, object] = {"database_id": "CSR-WSJ", "utterance_id": utt_id or Path(path).stem.lower(),
                                 "channel_count": x.shape[1], "sample_count": x.shape[0],
                                 "sample_rate": rate, "sample_n_bytes": 2,
                                 "sample_byte_format": byte_format, "sample_sig_bits": 16}
    if shorten:
        fields["sample_coding"] = "pcm,embedded-shorten-v2.00"
        ftype = TYPE_S16LH if byte_format == "01" else TYPE_S16HL
        body = encode_shorten(x, rate=rate, ftype=ftype, **shorten_opts)
    else:
        fields["sample_coding"] = "pcm"
        body = x.astype("<i2" if byte_format == "01" else ">i2").tobytes()
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(path).write_bytes(sphere_header(fields) + body)
