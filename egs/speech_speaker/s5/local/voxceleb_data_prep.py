#!/usr/bin/env python3
"""VoxCeleb data preparation: Kaldi data dirs from VoxCeleb1 and/or VoxCeleb2 as distributed.

Usage:
  local/voxceleb_data_prep.py [options] [--vox1 <dir>] [--vox2 <dir>] <data-dir>

  e.g.: local/voxceleb_data_prep.py --vox1 /corpora/voxceleb1 --trials /corpora/voxceleb1/meta/veri_test2.txt data
        local/voxceleb_data_prep.py --vox2 /corpora/voxceleb2 data
        local/voxceleb_data_prep.py --vox1 db/voxceleb1 --vox1-sets test --trials trials=db/meta/veri_test2.txt \\
            --trials trials_h=db/meta/list_test_hard2.txt --vox2 db/voxceleb2 --decode-to db/vox2_wav --nj 8 data

VoxCeleb (A. Nagrani, J. S. Chung, A. Zisserman et al., Interspeech 2017
and 2018) is distributed by the Oxford VGG group after registration;
local/download_voxceleb.sh says where and fetches the public trial lists.
The layouts read:

  VoxCeleb1  <vox1>/wav/<speaker>/<video>/<clip>.wav        (both zips unpacked into one tree)
             or <vox1>/vox1_dev_wav/wav/...  and  <vox1>/vox1_test_wav/wav/...
             (also <vox1>/dev/wav/..., <vox1>/test/wav/...; or <vox1> = the wav/ directory)
  VoxCeleb2  <vox2>/dev/aac/<speaker>/<video>/<clip>.m4a    (and <vox2>/test/aac/...;
             also <vox2>/vox2_dev_aac/dev/aac/..., or .wav files under <vox2>/dev/wav/...)

e.g. ``wav/id10270/x6uYqmx31kE/00001.wav``. In the one-tree layout of
VoxCeleb1 its test part is speakers id10270 to id10309 (the 40 speakers of
the official split); in the split layout the directory says.

Data dirs written under <data-dir> (``--vox1-sets`` / ``--vox2-sets``):

  voxceleb1_dev    VoxCeleb1 dev part (1211 speakers, 148642 utterances)
  voxceleb1_test   VoxCeleb1 test part (40 speakers, 4874 utterances), with
                   the VoxCeleb1-O trial list(s)
  voxceleb1        all of VoxCeleb1 (``all``; written also when a trial
                   list names dev utterances, as VoxCeleb1-E and -H do)
  voxceleb2_dev    VoxCeleb2 dev part (5994 speakers, 1092009 utterances)
  voxceleb2_test   VoxCeleb2 test part (``--vox2-sets dev,test``)

each holding

  wav.scp   ``<utt> <absolute path of the .wav>``; for an .m4a (AAC, which
            soundfile cannot read) a pipe,
            ``<utt> ffmpeg -nostdin -v error -i <path> -f wav -ar 16000 -ac 1 - |``
            (Debian package ffmpeg), or with ``--decode-to DIR`` the path of
            ``DIR/<speaker>/<utt>.wav``, decoded once by ffmpeg (``--nj`` at
            once; each written under a temporary name; a WAV newer than its
            .m4a is kept): worth it when the audio is read more than once;
  utt2spk   ``<utt> <speaker>``, spk2utt its inverse;
  utt2dur   ``<utt> <seconds>`` from the WAV headers (4 decimals; not for
            a set read through ffmpeg pipes);
  trials    a trial list given with ``--trials``, in the toolkit's format
            ``<label> <utt1> <utt2>``, label 1 (same speaker) or 0, in the
            list's order.

Utterance ids are ``<speaker>-<video>-<clip>`` (``id10270-x6uYqmx31kE-00001``),
speakers the VoxCeleb ids (``id10270``), so every speaker id prefixes its
utterance ids (YouTube video ids may hold ``-`` and ``_``; the speaker is
the part before the first ``-``).

``--trials [NAME=]FILE`` (repeatable): a VoxCeleb1 trial list in VGG's
format, lines ``<1|0> <speaker>/<video>/<clip>.wav <speaker>/<video>/<clip>.wav``
(veri_test2.txt = VoxCeleb1-O cleaned, list_test_all2.txt = -E,
list_test_hard2.txt = -H), converted and written as ``NAME`` (default
``trials``) into voxceleb1_test when all its files are in the test part,
else into voxceleb1. For a corpus without a trial list see
local/make_trials.py.

Errors (exit status 1, one line naming the file and line; nothing is
written, as every set and trial list is checked first): no audio where a
corpus or a requested part should be; a file or directory name with white
space; two clips giving one utterance id; a trial line that is not
``<1|0> <path> <path>``, or that names a file not in the VoxCeleb1 audio
found (the trial file, line and path; the number of such trial sides). A
.wav whose header soundfile cannot read is an error; a sample rate other
than 16 kHz is warned about. ffmpeg missing: a warning (the pipes need it),
an error with ``--decode-to``.
"""

from __future__ import annotations

import logging
import os
import re
import shlex
import shutil
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

ROOT = Path(__file__).resolve().parents[4]
sys.path.insert(0, str(ROOT / "steps" / "libs"))
from mtlasr.cli import make_parser, program  # noqa: E402
from mtlasr.datadir import atomic_open, write_data_dir  # noqa: E402

logger = logging.getLogger("voxceleb_data_prep")

SAMPLE_RATE = 16000
AUDIO_EXTS = (".wav", ".m4a")
# The 40 speakers of VoxCeleb1's official test part.
VOX1_TEST_SPEAKERS = frozenset(f"id{n}" for n in range(10270, 10310))
VOX1_LAYOUT = {"dev": ("vox1_dev_wav/wav", "vox1_dev_wav", "dev/wav"),
               "test": ("vox1_test_wav/wav", "vox1_test_wav", "test/wav")}
VOX2_LAYOUT = {"dev": ("dev/aac", "vox2_dev_aac/dev/aac", "vox2_dev_aac/aac", "dev/wav"),
               "test": ("test/aac", "vox2_test_aac/test/aac", "vox2_test_aac/aac", "test/wav")}
TRIAL_NAME_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]*$")
RESERVED = ("wav.scp", "utt2spk", "spk2utt", "utt2dur", "text", "segments", "feats.scp", "cmvn.scp")


# --------------------------------------------------------------------------- the audio

class Clip:
    """One audio file: its utterance id, speaker, path and path relative to
    the ``wav``/``aac`` directory (``id10270/x6uYqmx31kE/00001.wav``)."""
    __slots__ = ("utt", "spk", "path", "rel")

    def __init__(self, utt: str, spk: str, path: Path, rel: str):
        self.utt, self.spk, self.path, self.rel = utt, spk, path, rel


def _subdirs(d: Path) -> List[os.DirEntry]:
    return sorted((e for e in os.scandir(d) if e.is_dir() and not e.name.startswith(".")), key=lambda e: e.name)


def scan(top: Path) -> List[Clip]:
    """The clips ``top/<speaker>/<video>/<clip>.{wav,m4a}``, sorted by path.

    Raises:
      ValueError: a speaker, video or clip name holding white space (it
        could not be part of a Kaldi id), naming the path.
    """
    top = top.absolute()
    clips: List[Clip] = []
    for spk in _subdirs(top):
        for video in _subdirs(Path(spk.path)):
            for f in sorted(os.scandir(video.path), key=lambda e: e.name):
                stem, ext = os.path.splitext(f.name)
                if ext.lower() not in AUDIO_EXTS or not f.is_file():
                    continue
                path = Path(f.path)
                if re.search(r"\s", spk.name + video.name + stem) or not stem:
                    raise ValueError(f"{path}: a speaker, video or clip name with white space (or empty) cannot "
                                     f"make an utterance id <speaker>-<video>-<clip>")
                clips.append(Clip(f"{spk.name}-{video.name}-{stem}", spk.name, path,
                                  f"{spk.name}/{video.name}/{f.name}"))
    return clips


def vox1_parts(vox1: Path) -> Dict[str, List[Clip]]:
    """``{"dev": clips, "test": clips}`` of a VoxCeleb1 tree (see the module
    doc for the layouts; a part not there is ``[]``).

    Raises:
      FileNotFoundError: no such directory, or no VoxCeleb1 audio in it.
    """
    if not vox1.is_dir():
        raise FileNotFoundError(f"--vox1 {vox1}: no such directory")
    split = {part: next((vox1 / c for c in cands if (vox1 / c).is_dir()), None)
             for part, cands in VOX1_LAYOUT.items()}
    if any(split.values()):
        parts = {part: scan(d) if d is not None else [] for part, d in split.items()}
        layout = ", ".join(f"{part} from {d}" for part, d in split.items() if d is not None)
    else:
        top = vox1 / "wav" if (vox1 / "wav").is_dir() else vox1
        clips = scan(top)
        parts = {"dev": [c for c in clips if c.spk not in VOX1_TEST_SPEAKERS],
                 "test": [c for c in clips if c.spk in VOX1_TEST_SPEAKERS]}
        layout = f"one tree {top} (test: speakers id10270-id10309)"
    if not any(parts.values()):
        raise FileNotFoundError(f"--vox1 {vox1}: no VoxCeleb1 audio (<speaker>/<video>/<clip>.wav) under "
                                f"{vox1}/wav, {vox1}/vox1_dev_wav/wav or {vox1}/vox1_test_wav/wav")
    logger.info("VoxCeleb1: %s; %s", layout, ", ".join(f"{p} {len(c)} clips" for p, c in parts.items()))
    return parts


def vox2_parts(vox2: Path) -> Dict[str, List[Clip]]:
    """``{"dev": clips, "test": clips}`` of a VoxCeleb2 tree.

    Raises:
      FileNotFoundError: no such directory, or no VoxCeleb2 audio in it.
    """
    if not vox2.is_dir():
        raise FileNotFoundError(f"--vox2 {vox2}: no such directory")
    parts: Dict[str, List[Clip]] = {}
    for part, cands in VOX2_LAYOUT.items():
        d = next((vox2 / c for c in cands if (vox2 / c).is_dir()), None)
        parts[part] = scan(d) if d is not None else []
        if d is not None:
            logger.info("VoxCeleb2 %s: %s, %d clips", part, d, len(parts[part]))
    if not any(parts.values()):
        raise FileNotFoundError(f"--vox2 {vox2}: no VoxCeleb2 audio (<speaker>/<video>/<clip>.m4a) under "
                                f"{vox2}/dev/aac or {vox2}/test/aac")
    return parts


def check_unique(name: str, clips: Sequence[Clip]) -> None:
    """Raises ValueError if two clips give one utterance id (naming both files)."""
    seen: Dict[str, Path] = {}
    for c in clips:
        if c.utt in seen:
            raise ValueError(f"{name}: {seen[c.utt]} and {c.path} both give utterance id {c.utt}")
        seen[c.utt] = c.path


# --------------------------------------------------------------------------- trials

def convert_trials(path: Path, rel2utt: Dict[str, str], where: str) -> List[str]:
    """A VGG trial list as lines ``<label> <utt1> <utt2>`` (list order).

    Args:
      path: the list (``1 id10270/x6uYqmx31kE/00001.wav id10270/8jEAjG6SegY/00008.wav``).
      rel2utt: ``<speaker>/<video>/<clip>.wav`` -> utterance id of the
        audio found (a longer path in the list is matched on its last 3 parts).
      where: the audio's directory, for the message.

    Raises:
      FileNotFoundError: no such list; trial sides naming files that are not
        in ``rel2utt`` (the list, line and path of the first, and how many).
      ValueError: a malformed line (file and line), or an empty list.
    """
    if not path.is_file():
        raise FileNotFoundError(f"--trials {path}: no such file")
    out: List[str] = []
    missing: List[Tuple[int, str]] = []
    with open(path, encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            cols = line.split()
            if not cols:
                continue
            if len(cols) != 3 or cols[0] not in ("0", "1") or any(c.count("/") < 2 for c in cols[1:]):
                raise ValueError(f"{path}:{lineno}: expected '<1|0> <speaker>/<video>/<clip>.wav "
                                 f"<speaker>/<video>/<clip>.wav', got {line.strip()!r}")
            utts = []
            for c in cols[1:]:
                rel = "/".join(c.split("/")[-3:])
                if rel not in rel2utt:
                    missing.append((lineno, c))
                utts.append(rel2utt.get(rel, ""))
            out.append(f"{cols[0]} {utts[0]} {utts[1]}")
    if missing:
        lineno, c = missing[0]
        raise FileNotFoundError(f"{path}:{lineno}: {c}: no such file in the VoxCeleb1 audio under {where} "
                                f"({len(missing)} trial side(s) name files not there; a part of VoxCeleb1 "
                                f"missing?)")
    if not out:
        raise ValueError(f"{path}: no trials")
    return out


def parse_trials_arg(arg: str) -> Tuple[str, Path]:
    """``[NAME=]FILE`` -> (NAME or ``trials``, FILE)."""
    name, sep, file = arg.partition("=")
    if not sep:
        return "trials", Path(arg)
    if not TRIAL_NAME_RE.match(name) or name in RESERVED:
        raise ValueError(f"--trials {arg}: {name!r} is not a usable file name for a trial list (e.g. trials_h)")
    return name, Path(file)


# --------------------------------------------------------------------------- wav.scp, decoding

def pipe_entry(path: Path) -> str:
    """wav.scp pipe decoding an .m4a to 16 kHz mono WAV on stdout."""
    return f"ffmpeg -nostdin -v error -i {shlex.quote(str(path))} -f wav -ar {SAMPLE_RATE} -ac 1 - |"


def wav_entry(path: Path) -> str:
    """wav.scp value of a WAV file: its path (``cat`` pipe if it holds white space)."""
    s = str(path)
    return s if not re.search(r"\s", s) else f"cat {shlex.quote(s)} |"


def decode_to_file(src: Path, dst: Path) -> bool:
    """Decode ``src`` (.m4a) to 16 kHz mono 16-bit WAV ``dst`` with ffmpeg,
    under a temporary name moved into place; a ``dst`` newer than ``src``
    is kept. Returns whether it was decoded.

    Raises:
      OSError: ffmpeg failed (naming ``src`` and ffmpeg's message).
    """
    if dst.is_file() and dst.stat().st_size > 44 and dst.stat().st_mtime_ns >= src.stat().st_mtime_ns:
        return False
    dst.parent.mkdir(parents=True, exist_ok=True)
    tmp = dst.with_name(f"{dst.name}.tmp{os.getpid()}")
    cmd = ["ffmpeg", "-nostdin", "-v", "error", "-y", "-i", str(src), "-ar", str(SAMPLE_RATE), "-ac", "1",
           "-c:a", "pcm_s16le", "-f", "wav", str(tmp)]
    p = subprocess.run(cmd, capture_output=True, text=True)
    if p.returncode != 0 or not tmp.is_file():
        tmp.unlink(missing_ok=True)
        why = " | ".join(p.stderr.strip().splitlines()[-3:])
        raise OSError(f"{src}: ffmpeg could not decode it (exit {p.returncode}){': ' + why if why else ''}")
    os.replace(tmp, dst)
    return True


def decode_all(jobs: Dict[Path, Path], nj: int) -> None:
    """Decode ``{dst: src}`` with ``nj`` ffmpeg processes at once; the first
    failure is raised after the running ones finish."""
    with ThreadPoolExecutor(max(1, nj)) as ex:
        futs = [ex.submit(decode_to_file, src, dst) for dst, src in jobs.items()]
        n = sum(fut.result() for fut in futs)
    logger.info("decoded %d .m4a files, %d up to date", n, len(jobs) - n)


# --------------------------------------------------------------------------- the sets

def tables_of(clips: Sequence[Clip], decoded: Dict[Path, Path]) -> Dict[str, Dict[str, object]]:
    """wav.scp, utt2spk (and utt2dur when every file is a WAV) of clips;
    ``decoded``: .m4a path -> its decoded WAV.

    Raises:
      ValueError: a WAV whose header soundfile cannot read (naming it).
    """
    import soundfile as sf

    t: Dict[str, Dict[str, object]] = {"wav.scp": {}, "utt2spk": {}, "utt2dur": {}}
    other_rates: List[str] = []
    for c in clips:
        wav = decoded.get(c.path, c.path if c.path.suffix.lower() == ".wav" else None)
        t["utt2spk"][c.utt] = c.spk
        if wav is None:
            t["wav.scp"][c.utt] = pipe_entry(c.path)
            continue
        t["wav.scp"][c.utt] = wav_entry(wav)
        try:
            info = sf.info(str(wav))
        except Exception as e:  # libsndfile: not a WAV, truncated header, ...
            msg = re.sub(r"\s+", " ", str(e)).strip()
            raise ValueError(f"{wav}: cannot read its header: {msg}") from None
        if info.samplerate != SAMPLE_RATE:
            other_rates.append(f"{wav} ({info.samplerate} Hz)")
        t["utt2dur"][c.utt] = f"{info.frames / info.samplerate:.4f}"
    if len(t["utt2dur"]) != len(t["utt2spk"]):
        del t["utt2dur"]
    if other_rates:
        logger.warning("%d file(s) not at %d Hz: %s", len(other_rates), SAMPLE_RATE,
                       "; ".join(other_rates[:5]) + (" ..." if len(other_rates) > 5 else ""))
    return t


def prepare(data_dir: Path, vox1: Optional[Path] = None, vox2: Optional[Path] = None,
            vox1_sets: Sequence[str] = ("dev", "test"), vox2_sets: Sequence[str] = ("dev",),
            trials: Sequence[Tuple[str, Path]] = (), decode_to: Optional[Path] = None,
            nj: int = 4) -> Dict[str, int]:
    """Write the data dirs (every set and trial list is built and checked
    first); returns data dir name -> number of utterances."""
    sets: Dict[str, List[Clip]] = {}
    set_trials: Dict[str, Dict[str, List[str]]] = {}
    if trials and vox1 is None:
        raise ValueError("--trials needs --vox1 (the trial lists are of VoxCeleb1)")
    if vox1 is not None:
        parts = vox1_parts(vox1)
        for part in vox1_sets:
            if part == "all":
                continue
            if not parts[part]:
                raise FileNotFoundError(f"voxceleb1_{part}: no VoxCeleb1 {part} audio under {vox1} (only the "
                                        f"other part is there? leave {part} out of --vox1-sets)")
            sets[f"voxceleb1_{part}"] = parts[part]
        everything = parts["dev"] + parts["test"]
        rel2utt = {c.rel: c.utt for c in everything}
        test_utts = {c.utt for c in parts["test"]}
        if "all" in vox1_sets:
            sets["voxceleb1"] = everything
        for name, file in trials:
            lines = convert_trials(file, rel2utt, str(vox1))
            in_test = all(u in test_utts for ln in lines for u in ln.split()[1:])
            target = "voxceleb1_test" if in_test else "voxceleb1"
            if target not in sets:
                logger.info("%s: trial list %s names %s utterances; writing %s too", target, file,
                            "test" if in_test else "dev", target)
                sets[target] = parts["test"] if in_test else everything
            got = set_trials.setdefault(target, {})
            if name in got:
                raise ValueError(f"--trials: two trial lists would be {data_dir / target / name}; name them "
                                 f"(--trials NAME=FILE)")
            got[name] = lines
            n1 = sum(ln.startswith("1") for ln in lines)
            logger.info("%s: %d trials (%d target, %d non-target) -> %s", file, len(lines), n1, len(lines) - n1,
                        data_dir / target / name)
    if vox2 is not None:
        parts2 = vox2_parts(vox2)
        for part in vox2_sets:
            if not parts2[part]:
                raise FileNotFoundError(f"voxceleb2_{part}: no VoxCeleb2 {part} audio under {vox2} "
                                        f"(expected {vox2}/{part}/aac/<speaker>/<video>/<clip>.m4a)")
            sets[f"voxceleb2_{part}"] = parts2[part]
    for name, clips in sets.items():
        check_unique(name, clips)
    m4a = sorted({c.path for clips in sets.values() for c in clips if c.path.suffix.lower() == ".m4a"})
    if m4a and shutil.which("ffmpeg") is None:
        if decode_to is not None:
            raise FileNotFoundError("ffmpeg is not on PATH; it decodes the .m4a files (Debian: apt-get install "
                                    "ffmpeg)")
        logger.warning("ffmpeg is not on PATH: the wav.scp pipes that decode the .m4a files need it (Debian: "
                       "apt-get install ffmpeg)")
    tables = {name: tables_of(clips, {}) for name, clips in sets.items()}   # the WAV headers checked first
    if m4a and decode_to is not None:
        utt_of = {c.path: c for clips in sets.values() for c in clips}
        decoded = {p: (decode_to / utt_of[p].spk / f"{utt_of[p].utt}.wav").absolute() for p in m4a}
        logger.info("decoding %d .m4a files to %s with %d jobs", len(m4a), decode_to, nj)
        decode_all({dst: src for src, dst in decoded.items()}, nj)
        tables = {name: tables_of(clips, decoded) if any(c.path in decoded for c in clips) else tables[name]
                  for name, clips in sets.items()}
    counts = {}
    for name, t in tables.items():
        write_data_dir(data_dir / name, t)
        for tname, lines in set_trials.get(name, {}).items():
            text = "".join(ln + "\n" for ln in lines)
            out = data_dir / name / tname
            if not (out.is_file() and out.read_text(encoding="utf-8") == text):
                with atomic_open(out) as f:
                    f.write(text)
        counts[name] = len(t["utt2spk"])
        logger.info("%s: %d speakers, %d utterances", name, len(set(t["utt2spk"].values())), counts[name])
    return counts


# --------------------------------------------------------------------------- main

def _sets(arg: str, option: str, known: Sequence[str]) -> List[str]:
    sets = [s for s in arg.split(",") if s]
    bad = [s for s in sets if s not in known]
    if bad or not sets:
        raise ValueError(f"{option}: unknown part(s) {' '.join(bad) or '(none given)'}; known: {','.join(known)}")
    return list(dict.fromkeys(sets))


def get_parser():
    p = make_parser(__doc__)
    p.add_argument("--vox1", default=None, metavar="DIR", help="the VoxCeleb1 tree (see above)")
    p.add_argument("--vox2", default=None, metavar="DIR", help="the VoxCeleb2 tree (see above)")
    p.add_argument("--vox1-sets", default="dev,test",
                   help="VoxCeleb1 data dirs to write, of dev,test,all (default: %(default)s)")
    p.add_argument("--vox2-sets", default="dev", help="VoxCeleb2 data dirs to write, of dev,test (default: "
                   "%(default)s)")
    p.add_argument("--trials", action="append", default=[], metavar="[NAME=]FILE",
                   help="a VoxCeleb1 trial list to convert, written as NAME (default trials); repeatable")
    p.add_argument("--decode-to", default=None, metavar="DIR",
                   help="decode the .m4a files once to DIR/<speaker>/<utt>.wav (default: ffmpeg pipes)")
    p.add_argument("--nj", type=int, default=4, help="parallel decodes with --decode-to (default: %(default)s)")
    p.add_argument("data_dir", help="output: <data-dir>/voxceleb{1,2}_{dev,test}/")
    return p


def run(args) -> int:
    if args.vox1 is None and args.vox2 is None:
        raise ValueError("no corpus given: use --vox1 DIR and/or --vox2 DIR")
    prepare(Path(args.data_dir), Path(args.vox1) if args.vox1 else None, Path(args.vox2) if args.vox2 else None,
            _sets(args.vox1_sets, "--vox1-sets", ("dev", "test", "all")),
            _sets(args.vox2_sets, "--vox2-sets", ("dev", "test")),
            [parse_trials_arg(a) for a in args.trials], Path(args.decode_to) if args.decode_to else None, args.nj)
    return 0


def main(argv: Optional[Sequence[str]] = None) -> int:
    return program(get_parser(), run, argv, logger)


if __name__ == "__main__":
    sys.exit(main())
