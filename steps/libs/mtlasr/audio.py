"""Audio input for feature extraction, checked.

A ``wav.scp`` entry is a file path or a Kaldi-style command ending in ``|``
whose standard output is a WAV file. soundfile (libsndfile) decodes RIFF
WAV, NIST SPHERE (uncompressed, as in the LDC TIMIT tree), FLAC, ...; but
it reads a truncated file without a word (a SPHERE file holding 40% of the
samples its header announces decodes as a shorter utterance), so the
container's own length fields are checked against the bytes present first:

* NIST SPHERE (``NIST_1A`` header): ``sample_count x channel_count x
  sample_n_bytes`` must fit in the bytes after the header (NIST SPHERE
  header format, as in the LDC TIMIT and WSJ distributions);
* RIFF WAV: the ``data`` chunk's size must fit in the bytes after its
  chunk header (Microsoft RIFF/WAVE specification).

A file with several channels is an error unless a channel is chosen
(Kaldi's compute-mfcc-feats ``--channel``: -1 expects mono, 0 the first
channel, ...). Samples are returned on the int16 scale that Kaldi and
kaldi-native-fbank expect.
"""

from __future__ import annotations

import io
import os
import re
import struct
import subprocess
from pathlib import Path
from typing import Optional, Tuple, Union

import numpy as np


class AudioError(RuntimeError):
    """An utterance's audio is missing, unreadable, truncated, empty or has a
    channel layout that was not asked for (the message names both)."""


def _sphere_header(head: bytes) -> Optional[dict]:
    """Fields of a NIST SPHERE header (``key -type value`` lines up to
    ``end_head``), plus ``header_size``; None if ``head`` is not SPHERE."""
    if not head.startswith(b"NIST_1A"):
        return None
    lines = head.split(b"\n")
    if len(lines) < 2 or not lines[1].strip().isdigit():
        raise ValueError("malformed NIST SPHERE header (no header size on line 2)")
    fields = {"header_size": int(lines[1].strip())}
    for line in lines[2:]:
        parts = line.decode("latin-1").split(None, 2)
        if not parts or parts[0] == "end_head":
            break
        if len(parts) == 3:
            kind, value = parts[1], parts[2].strip()
            fields[parts[0]] = int(value) if kind == "-i" else float(value) if kind == "-r" else value
    return fields


def _riff_data_size(head: bytes) -> Optional[Tuple[int, int]]:
    """``(offset of the data bytes, size the data chunk announces)`` of a
    RIFF WAV file read from its first bytes; None if not RIFF or the data
    chunk header is not within ``head``."""
    if len(head) < 12 or head[:4] != b"RIFF" or head[8:12] != b"WAVE":
        return None
    pos = 12
    while pos + 8 <= len(head):
        cid, size = head[pos:pos + 4], struct.unpack("<I", head[pos + 4:pos + 8])[0]
        if cid == b"data":
            return pos + 8, size
        pos += 8 + size + (size & 1)
    return None


def check_container(head: bytes, total: int, what: str) -> None:
    """Check that a SPHERE or RIFF WAV file of ``total`` bytes, whose first
    bytes are ``head``, holds all the samples its header announces (a RIFF
    data size of 0 or 0xFFFFFFFF means "unknown": a WAV written to a pipe).

    Raises:
      AudioError: a truncated file, naming ``what`` and both counts.
    """
    try:
        sph = _sphere_header(head)
    except ValueError as e:
        raise AudioError(f"{what}: {e}") from None
    if sph is not None:
        n = sph.get("sample_count")
        ch, width = sph.get("channel_count", 1), sph.get("sample_n_bytes", 2)
        coding = str(sph.get("sample_coding", "pcm"))
        if isinstance(n, int) and "shorten" not in coding:
            want, have = n * ch * width, total - sph["header_size"]
            if have < want:
                raise AudioError(f"{what}: truncated: its SPHERE header announces {n} samples x {ch} channel(s) "
                                 f"({want} bytes) but the file holds {max(have, 0)} bytes after the header "
                                 f"({max(have, 0) // max(ch * width, 1)} samples)")
        return
    riff = _riff_data_size(head)
    if riff is not None:
        offset, size = riff
        # 0 or 0xFFFFFFFF: a stream whose writer could not seek back to fill in
        # the size (ffmpeg or sox writing to a pipe); the data runs to the end
        if size in (0, 0xFFFFFFFF):
            return
        if total - offset < size:
            raise AudioError(f"{what}: truncated: its RIFF data chunk announces {size} bytes but the file holds "
                             f"{max(total - offset, 0)}")


def read_audio(spec: str, utt: str = "?", channel: int = -1) -> Tuple[np.ndarray, int]:
    """Read one ``wav.scp`` entry, checked.

    Args:
      spec: a file path, or a shell command ending in ``|`` that writes a WAV
        file to stdout (e.g. ``sph2pipe -f wav X.WAV |``).
      utt: the utterance id, for error messages.
      channel: -1: the audio must be mono; c >= 0: take channel c.

    Returns:
      ``(samples, sample_rate)``: samples ``(N,) float32`` on the int16 scale;
      sample_rate in Hz.

    Raises:
      AudioError: the file is missing, unreadable, truncated (its header
        announces more samples than it holds), empty, or has several
        channels with ``channel`` -1 (or fewer than ``channel + 1``); the
        message names the utterance and the file.
    """
    import soundfile as sf

    spec = spec.strip()
    what = f"utterance {utt}: audio {spec}"
    source: Union[str, io.BytesIO]
    try:
        if spec.endswith("|"):
            proc = subprocess.run(spec[:-1], shell=True, capture_output=True)
            if proc.returncode != 0:  # say why: the command's last stderr lines
                why = " | ".join(proc.stderr.decode("utf-8", "replace").strip().splitlines()[-3:])
                raise AudioError(f"{what}: the command failed (exit {proc.returncode})"
                                 + (f": {why}" if why else ""))
            check_container(proc.stdout[:65536], len(proc.stdout), what)
            source = io.BytesIO(proc.stdout)
        else:
            if not Path(spec).is_file():
                raise AudioError(f"utterance {utt}: audio file {spec} does not exist")
            with open(spec, "rb") as f:
                head = f.read(65536)
            check_container(head, os.path.getsize(spec), what)
            source = spec
        data, sr = sf.read(source, dtype="int16", always_2d=True)
    except AudioError:
        raise
    except Exception as e:  # soundfile/libsndfile or the pipe failed
        msg = re.sub(r"\s+", " ", str(e)).strip()
        raise AudioError(f"utterance {utt}: cannot read audio {spec}: {msg}") from e
    if data.shape[0] == 0:
        raise AudioError(f"{what} has no samples")
    nch = data.shape[1]
    if channel < 0 and nch > 1:
        raise AudioError(f"{what} has {nch} channels; choose one with --channel (0..{nch - 1})")
    if channel >= nch:
        raise AudioError(f"{what} has {nch} channel(s); --channel {channel} does not exist")
    return data[:, max(channel, 0)].astype(np.float32), int(sr)
