#!/usr/bin/env python3
"""WSJ data preparation: Kaldi data dirs from the LDC CSR-I (WSJ0) and CSR-II (WSJ1) discs.

Usage:
  local/wsj_data_prep.py [options] --wsj0 <dir> --wsj1 <dir> <data-dir>
  local/wsj_data_prep.py [options] --wsj-root <dir> <data-dir>

  e.g.: local/wsj_data_prep.py --wsj0 /corpora/LDC93S6B --wsj1 /corpora/LDC94S13B data
        local/wsj_data_prep.py --wsj-root /corpora/wsj --sets train_si84,test_eval92 data
        local/wsj_data_prep.py --wsj-root /corpora/wsj --decode-to data/local/wsj_wav --nj 8 data

The corpora are licensed by the LDC; there is nothing to download:
WSJ0 = CSR-I (WSJ0), LDC catalogue LDC93S6B (Sennheiser microphone, "csr_1")
or LDC93S6A (Complete); WSJ1 = CSR-II (WSJ1), LDC94S13B (Sennheiser,
"csr_2") or LDC94S13A (Complete). Point --wsj0/--wsj1 (or one --wsj-root
holding both) at the copies as distributed: the disc directories (``11-1.1``,
``11-13.1``, ... of WSJ0; ``13-1.1``, ``13-34.1``, ... of WSJ1; also spelt
``11_1_1``) are found up to 3 levels below each given directory, and every
path inside a disc is matched in any letter case (``wsj0/si_tr_s/011/
011c0201.wv1`` or ``WSJ0/SI_TR_S/011/011C0201.WV1``). A copy merged into one
tree without disc directories (``<root>/wsj0/...``) works too.

Sets (``--sets``, comma-separated; default train_si284,test_dev93,test_eval92),
from the LDC index files, as in Kaldi's WSJ recipe:

  train_si84   11-13.1/wsj0/doc/indices/train/tr_s_wv1.ndx (WSJ0 SI-84)
  train_si284  the same + 13-34.1/wsj1/doc/indices/si_tr_s.ndx (SI-284)
  test_dev93   13-34.1/wsj1/doc/indices/h1_p0.ndx (Nov'93 dev, 503 utts)
  test_eval92  11-13.1/wsj0/doc/indices/test/nvp/si_et_20.ndx (Nov'92, 333 utts)
  test_eval93  13-32.1/wsj1/doc/indices/wsj1/eval/h1_p0.ndx (Nov'93, 213 utts;
               its entries name disc 13_32_1 for 13_33_1, which is corrected)

The training sets leave out speaker 401 of disc 11-2.1 as Kaldi does (its
train_si84 and train_si284 have 7138 and 37416 utterances).

Writes ``<data-dir>/<set>/{wav.scp,text,utt2spk,spk2utt,utt2dur}`` and
``spk2gender``. Utterance ids are the 8-character WSJ ids in lower case
(``011c0201``), speakers their first 3 characters (``011``).

text: the ``.dot`` transcript of each utterance (all ``*.dot`` files under
the given directories are searched; ``<id[:6]>00.dot`` holds the lines
``<transcript> (<id>)``), normalised:
  * words upper case (as the CMU dictionary and Kaldi's WSJ text);
  * noise markers removed: ``[loud_breath]``, ``[<door_slam]``,
    ``[door_slam>]``, ``[phone_ring/]``, ``[/phone_ring]`` (with
    ``--noise-word W``, a ``[noise]`` marker becomes W instead, Kaldi's
    ``<NOISE>``); so are ``~`` (truncated utterance) and ``.`` (pause);
  * the marks around a spoken word in ``<word>`` and ``*word*`` are
    removed (``WORD``), and so are backslashes;
  * ``%PERCENT`` and ``.POINT`` become ``PERCENT`` and ``POINT`` (spoken in
    every transcript, Kaldi's Nov'93 normalisation);
  * verbalised punctuation, spoken by the speakers of the VP part of the
    training data: a token of punctuation symbols followed by a name in
    capitals (``,COMMA``, ``"DOUBLE-QUOTE``, ``(LEFT-PAREN``, ``--DASH``;
    after a lone apostrophe only a ...QUOTE name, so ``'EM`` and ``'N``
    stay words). It is kept as a word: ``--punctuation kaldi`` (default)
    keeps Kaldi's spelling (``,COMMA``, and ``-DASH`` for ``--DASH``);
    ``--punctuation words`` drops the symbols (``COMMA``, ``DASH``), so a
    letter model sees no punctuation letters.
An utterance whose transcript is empty after this is left out with a warning.

wav.scp: the ``.wv1`` files are NIST SPHERE with shorten-compressed samples,
which libsndfile cannot read and Debian packages no sph2pipe for. Their
entries are pipes, ``<abs path>/local/sph2wav.py <abs path of the .wv1> |``,
which decode through ffmpeg (Debian package ffmpeg; see local/sph2wav.py
for why and how); uncompressed SPHERE files are listed by path (soundfile
reads them). With ``--decode-to DIR`` every shorten file is instead decoded
once to ``DIR/<spk>/<utt>.wav`` (``--nj`` at once, each written under a
temporary name and moved into place; a WAV of the right size newer than its
.wv1 is kept) and wav.scp lists those files: worth it when the features are
computed more than once (WSJ SI-284 is about 81 hours, 9 GB as WAV).
utt2dur: seconds, from the SPHERE headers.

spk2gender: from the ``spkrinfo.txt`` files found under the given
directories (WSJ0's own training-speaker list, wsj0-train-spkrinfo.txt, was
published by the LDC apart from the discs: give it with ``--spkrinfo``). A
set with a speaker of unknown gender gets no spk2gender, with a warning.

Errors name the file, line or utterance: a disc or index file that is not
there, a malformed index or transcript line, a file that is not SPHERE. An
utterance of a training set without audio or transcript is an error (unless
``--allow-missing``); in a test set it is left out and the number left out
is warned about (as in Kaldi).
"""

from __future__ import annotations

import logging
import os
import re
import shlex
import shutil
import sys
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, Iterable, List, Optional, Sequence, Tuple

ROOT = Path(__file__).resolve().parents[4]
sys.path.insert(0, str(ROOT / "steps" / "libs"))
sys.path.insert(0, str(Path(__file__).resolve().parent))
from mtlasr.cli import make_parser, program  # noqa: E402
from mtlasr.datadir import write_data_dir  # noqa: E402
from sph2wav import decode_to_file, sphere_header  # noqa: E402

logger = logging.getLogger("wsj_data_prep")

SPH2WAV = Path(__file__).resolve().parent / "sph2wav.py"


@dataclass(frozen=True)
class SetSpec:
    """One data set: its index files as ``(disc, path inside the disc)``,
    whether it is a training set (missing audio/transcripts are errors), and
    ``(wrong, right)`` disc ids to correct in its index entries."""
    indices: Tuple[Tuple[str, str], ...]
    train: bool
    disc_fix: Tuple[Tuple[str, str], ...] = ()


SI84 = ("11-13.1", "wsj0/doc/indices/train/tr_s_wv1.ndx")
SETS: Dict[str, SetSpec] = {
    "train_si84": SetSpec((SI84,), True),
    "train_si284": SetSpec((SI84, ("13-34.1", "wsj1/doc/indices/si_tr_s.ndx")), True),
    "test_dev93": SetSpec((("13-34.1", "wsj1/doc/indices/h1_p0.ndx"),), False),
    "test_eval92": SetSpec((("11-13.1", "wsj0/doc/indices/test/nvp/si_et_20.ndx"),), False),
    "test_eval93": SetSpec((("13-32.1", "wsj1/doc/indices/wsj1/eval/h1_p0.ndx"),), False,
                           (("13-32.1", "13-33.1"),)),
}
DEFAULT_SETS = "train_si284,test_dev93,test_eval92"
# Left out of the training sets, as in Kaldi's recipe: (disc, path prefix).
EXCLUDE = (("11-2.1", "wsj0/si_tr_s/401/"),)

DISC_RE = re.compile(r"^(\d+)[-_](\d+)[._](\d+)$")
NDX_RE = re.compile(r"^(\d+)_(\d+)_(\d+)\s*:\s*/?(\S+)$")
DOT_RE = re.compile(r"^(.*)\((\w{8})\)\s*$")
UTT_RE = re.compile(r"^\w{8}$")
# Verbalised punctuation: symbols, then the spoken name in capitals (,COMMA "DOUBLE-QUOTE --DASH).
PUNCT_RE = re.compile(r"^([^\w\s]+)([A-Z][A-Z-]+)$")


def corpus_of(disc: str) -> str:
    return "WSJ0" if disc.startswith("11-") else "WSJ1" if disc.startswith("13-") else "?"


# --------------------------------------------------------------------------- text

def normalize_transcript(raw: str, punctuation: str = "kaldi", noise_word: Optional[str] = None) -> List[str]:
    """The words of one ``.dot`` transcript, normalised (see the module doc).

    Args:
      raw: the transcript, without its ``(utt-id)``.
      punctuation: ``kaldi`` (``,COMMA``) or ``words`` (``COMMA``).
      noise_word: what a ``[noise]`` marker becomes (None: nothing).
    """
    words: List[str] = []
    for tok in raw.replace("\\", "").split():
        if tok in ("~", ".") or re.fullmatch(r"\[(<[^\]]*|[^\]]*>|[^\]]*/|/[^\]]*)\]", tok):
            continue
        if re.fullmatch(r"\[[^\]]*\]", tok):
            if noise_word:
                words.append(noise_word)
            continue
        m = re.fullmatch(r"<(.+)>|\*(.+)\*", tok)
        if m:
            tok = m.group(1) or m.group(2)
        tok = tok.upper()
        if tok in ("%PERCENT", ".POINT"):
            tok = tok[1:]
        m = PUNCT_RE.match(tok)
        if m and (m.group(1) != "'" or "QUOTE" in m.group(2)):   # 'EM, 'TIL are words
            if punctuation == "words":
                tok = m.group(2)
            elif tok == "--DASH":
                tok = "-DASH"  # the CMU dictionary's spelling, as in Kaldi
        if tok:
            words.append(tok)
    return words


def read_dot(path: Path) -> Dict[str, str]:
    """utterance id (lower case) -> raw transcript, from one ``.dot`` file.

    Raises:
      ValueError: a line that is not ``<transcript> (<8-character id>)``,
        naming the file and line.
    """
    out: Dict[str, str] = {}
    with open(path, encoding="latin-1") as f:
        for lineno, line in enumerate(f, 1):
            if not line.strip():
                continue
            m = DOT_RE.match(line.rstrip("\r\n"))
            if not m:
                raise ValueError(f"{path}:{lineno}: expected '<transcript> (<utterance-id>)', got {line.strip()!r}")
            out.setdefault(m.group(2).lower(), m.group(1).strip())
    return out


def read_spkrinfo(paths: Iterable[Path]) -> Dict[str, str]:
    """speaker -> m/f from WSJ ``spkrinfo.txt`` files (``;`` comments; the
    first two columns are the speaker id and M/F); the first file that
    names a speaker wins."""
    out: Dict[str, str] = {}
    for path in paths:
        with open(path, encoding="latin-1") as f:
            for line in f:
                cols = line.split()
                if len(cols) >= 2 and not cols[0].startswith(";") and cols[1].lower() in ("m", "f"):
                    out.setdefault(cols[0].lower(), cols[1].lower())
    return out


# --------------------------------------------------------------------------- corpus layout

class Corpus:
    """The disc directories, ``.dot`` and ``spkrinfo`` files under the given
    roots, with case-insensitive path lookup."""

    def __init__(self, roots: Sequence[Path]):
        self.roots = [Path(r) for r in roots]
        for r in self.roots:
            if not r.is_dir():
                raise FileNotFoundError(f"{r}: no such directory")
        self.discs: Dict[str, Path] = {}
        self.dots: Dict[str, List[Path]] = {}
        self.spkrinfo: List[Path] = []
        self._listing: Dict[Path, Tuple[set, Dict[str, str]]] = {}
        self._dot_cache: Dict[Path, Dict[str, str]] = {}
        seen = set()
        for root in self.roots:
            for dirpath, dirnames, filenames in os.walk(root, followlinks=True):
                st = os.stat(dirpath)
                if (st.st_dev, st.st_ino) in seen:   # a symbolic-link loop, or a tree given twice
                    dirnames[:] = []
                    continue
                seen.add((st.st_dev, st.st_ino))
                d = Path(dirpath)
                depth = len(d.relative_to(root).parts)
                m = DISC_RE.match(d.name)
                if m and depth <= 3:
                    disc = f"{m.group(1)}-{m.group(2)}.{m.group(3)}"
                    if disc in self.discs and self.discs[disc].resolve() != d.resolve():
                        logger.warning("disc %s found twice: %s and %s; using the first", disc, self.discs[disc], d)
                    self.discs.setdefault(disc, d)
                dirnames.sort()
                for name in sorted(filenames):
                    low = name.lower()
                    if low.endswith(".dot"):
                        self.dots.setdefault(low[:6], []).append(d / name)
                    elif "spkrinfo" in low and low.endswith(".txt"):
                        self.spkrinfo.append(d / name)
        logger.info("%d discs (%s), %d .dot files, %d spkrinfo files under %s", len(self.discs),
                    " ".join(sorted(self.discs)), sum(map(len, self.dots.values())), len(self.spkrinfo),
                    " ".join(map(str, self.roots)))

    def _child(self, parent: Path, name: str) -> Optional[Path]:
        if parent not in self._listing:
            try:
                entries = sorted(os.listdir(parent))
            except OSError:
                entries = []
            lower: Dict[str, str] = {}
            for e in entries:
                lower.setdefault(e.lower(), e)
            self._listing[parent] = (set(entries), lower)
        exact, lower = self._listing[parent]
        if name in exact:
            return parent / name
        return parent / lower[name.lower()] if name.lower() in lower else None

    def _resolve_in(self, base: Path, rel: str) -> Optional[Path]:
        p: Optional[Path] = base
        for part in rel.split("/"):
            if part:
                p = self._child(p, part)
                if p is None:
                    return None
        return p

    def find(self, disc: str, rel: str) -> Optional[Path]:
        """``rel`` (e.g. ``wsj0/si_tr_s/011/011c0201.wv1``) on ``disc``, in any
        letter case; else under a root (a copy without disc directories)."""
        if disc in self.discs:
            p = self._resolve_in(self.discs[disc], rel)
            if p is not None and p.is_file():
                return p
        for root in self.roots:
            p = self._resolve_in(root, rel)
            if p is not None and p.is_file():
                return p
        return None

    def transcript(self, utt: str) -> Tuple[Optional[str], str]:
        """``(raw transcript or None, where it was looked for)``."""
        cands = self.dots.get(utt[:6], [])
        for path in cands:
            if path not in self._dot_cache:
                self._dot_cache[path] = read_dot(path)
            if utt in self._dot_cache[path]:
                return self._dot_cache[path][utt], str(path)
        if not cands:
            return None, f"no .dot file {utt[:6]}00.dot under the corpus directories"
        return None, "not in " + ", ".join(map(str, cands))


@dataclass
class Entry:
    utt: str
    audio: Optional[Path]
    where: str        # "<index>:<line>"
    disc: str
    rel: str


def read_index(corpus: Corpus, spec: SetSpec, name: str) -> List[Entry]:
    """The utterances of a set's index files, with their audio (None if absent).

    Raises:
      FileNotFoundError: an index file (or its disc) is not there.
      ValueError: a malformed index line, naming file and line.
    """
    entries: List[Entry] = []
    for disc, rel in spec.indices:
        ndx = corpus.find(disc, rel)
        if ndx is None:
            why = (f"no {rel} in {corpus.discs[disc]}" if disc in corpus.discs else
                   f"disc {disc} is not under {' '.join(map(str, corpus.roots))}")
            raise FileNotFoundError(f"{name}: index file {disc}/{rel} of {corpus_of(disc)} not found ({why}); "
                                    f"give the {corpus_of(disc)} discs with --{corpus_of(disc).lower()}")
        with open(ndx, encoding="latin-1") as f:
            for lineno, line in enumerate(f, 1):
                line = line.strip()
                if not line or line.startswith(";"):
                    continue
                m = NDX_RE.match(line)
                if not m:
                    raise ValueError(f"{ndx}:{lineno}: expected '<disc>:<path>' (e.g. 11_1_1:wsj0/si_tr_s/011/"
                                     f"011c0201.wv1), got {line!r}")
                d = f"{m.group(1)}-{m.group(2)}.{m.group(3)}"
                d = dict(spec.disc_fix).get(d, d)
                path = m.group(4).lower()
                if "." not in path.rsplit("/", 1)[-1]:
                    path += ".wv1"
                if spec.train and any(d == xd and path.startswith(xp) for xd, xp in EXCLUDE):
                    continue
                utt = path.rsplit("/", 1)[-1].split(".")[0]
                if not UTT_RE.match(utt):
                    raise ValueError(f"{ndx}:{lineno}: {utt!r} is not an 8-character WSJ utterance id")
                entries.append(Entry(utt, corpus.find(d, path), f"{ndx}:{lineno}", d, path))
    return entries


# --------------------------------------------------------------------------- the sets

def _problems(name: str, what: str, items: List[str], fatal: bool) -> None:
    if not items:
        return
    shown = "; ".join(items[:5]) + (f"; ... and {len(items) - 5} more" if len(items) > 5 else "")
    if fatal:
        raise FileNotFoundError(f"{name}: {len(items)} utterance(s) {what} (--allow-missing leaves them out): {shown}")
    logger.warning("%s: %d utterance(s) %s, left out: %s", name, len(items), what, shown)


def build_set(corpus: Corpus, name: str, punctuation: str, noise_word: Optional[str],
              allow_missing: bool) -> Tuple[Dict[str, Dict[str, object]], Dict[str, Dict[str, object]]]:
    """The tables of one set (wav.scp holding the audio paths for now, text,
    utt2spk, utt2dur) and the SPHERE header of each utterance.

    Raises:
      FileNotFoundError: in a training set (without ``allow_missing``),
        utterances without audio (a disc missing) or transcript.
      ValueError: no utterance left; a malformed index, transcript or audio
        header.
    """
    spec = SETS[name]
    fatal = spec.train and not allow_missing
    entries = read_index(corpus, spec, name)
    if not entries:
        raise ValueError(f"{name}: its index files list no utterances")
    no_audio, no_text, seen = [], [], {}
    missing_discs: Dict[str, int] = {}
    t: Dict[str, Dict[str, object]] = {k: {} for k in ("wav.scp", "text", "utt2spk", "utt2dur")}
    headers: Dict[str, Dict[str, object]] = {}
    for e in entries:
        if e.utt in seen:
            logger.warning("%s: utterance %s listed again at %s (first at %s); the first is kept",
                           name, e.utt, e.where, seen[e.utt])
            continue
        seen[e.utt] = e.where
        if e.audio is None:
            if e.disc not in corpus.discs:
                missing_discs[e.disc] = missing_discs.get(e.disc, 0) + 1
            no_audio.append(f"{e.utt}: no {e.disc}/{e.rel} ({e.where})")
            continue
        raw, looked = corpus.transcript(e.utt)
        if raw is None:
            no_text.append(f"{e.utt}: {looked} ({e.audio})")
            continue
        words = normalize_transcript(raw, punctuation, noise_word)
        if not words:
            logger.warning("%s: utterance %s: empty transcript after normalisation (%r); left out", name, e.utt, raw)
            continue
        h = sphere_header(e.audio)
        headers[e.utt] = h
        t["wav.scp"][e.utt] = e.audio
        t["text"][e.utt] = words
        t["utt2spk"][e.utt] = e.utt[:3]
        if isinstance(h.get("sample_count"), int) and isinstance(h.get("sample_rate"), int):
            t["utt2dur"][e.utt] = f"{h['sample_count'] / h['sample_rate']:.4f}"
    if missing_discs:
        msg = (f"{name}: disc(s) not found under {' '.join(map(str, corpus.roots))}: "
               + ", ".join(f"{d} ({corpus_of(d)}, {n} utterances)" for d, n in sorted(missing_discs.items())))
        if fatal:
            raise FileNotFoundError(msg + " (--allow-missing leaves their utterances out)")
        logger.warning("%s", msg)
    _problems(name, "listed in the index files have no audio file", no_audio, fatal)
    _problems(name, "have no transcript", no_text, fatal)
    if not t["utt2spk"]:
        raise ValueError(f"{name}: no utterance has both audio and a transcript")
    if len(t["utt2dur"]) != len(t["utt2spk"]):
        del t["utt2dur"]
    return t, headers


def wav_entry(path: Path, header: Dict[str, object], decoded: Optional[Path]) -> str:
    """wav.scp value: the decoded WAV, a ``sph2wav.py`` pipe, or the path."""
    if "shorten" in str(header.get("sample_coding", "")):
        if decoded is not None:
            return str(decoded)
        return f"{shlex.quote(str(SPH2WAV))} {shlex.quote(str(path))} |"
    return str(path) if not re.search(r"\s", str(path)) else f"cat {shlex.quote(str(path))} |"


def prepare(roots: Sequence[Path], data_dir: Path, sets: Sequence[str], punctuation: str = "kaldi",
            noise_word: Optional[str] = None, spkrinfo: Sequence[Path] = (), decode_to: Optional[Path] = None,
            nj: int = 4, allow_missing: bool = False) -> Dict[str, int]:
    """Write the data dirs of ``sets``; returns set -> number of utterances."""
    corpus = Corpus(roots)
    built = {name: build_set(corpus, name, punctuation, noise_word, allow_missing) for name in sets}
    tables = {name: t for name, (t, _) in built.items()}
    genders = read_spkrinfo(list(spkrinfo) + corpus.spkrinfo)
    need_ffmpeg = any("shorten" in str(h.get("sample_coding", "")) for _, hs in built.values() for h in hs.values())
    jobs: Dict[Path, Path] = {}
    for t, headers in built.values():
        for utt, path in list(t["wav.scp"].items()):
            h = headers[utt]
            dst = None
            if decode_to is not None and "shorten" in str(h.get("sample_coding", "")):
                dst = (decode_to / utt[:3] / f"{utt}.wav").resolve()
                jobs[dst] = path
            t["wav.scp"][utt] = wav_entry(path, h, dst)
    if need_ffmpeg and shutil.which("ffmpeg") is None:
        if decode_to is not None:
            raise FileNotFoundError("ffmpeg is not on PATH; it decodes the shorten-compressed .wv1 files "
                                    "(Debian: apt-get install ffmpeg)")
        logger.warning("ffmpeg is not on PATH: the wav.scp pipes that decode the shorten-compressed .wv1 files "
                       "need it (Debian: apt-get install ffmpeg)")
    if jobs:
        logger.info("decoding %d shorten files to %s with %d jobs", len(jobs), decode_to, nj)
        with ThreadPoolExecutor(max(1, nj)) as ex:
            done = [ex.submit(decode_to_file, src, dst) for dst, src in jobs.items()]
            n = sum(fut.result() for fut in done)
        logger.info("%d decoded, %d up to date", n, len(jobs) - n)
    counts = {}
    for name, t in tables.items():
        spks = sorted(set(t["utt2spk"].values()))
        unknown = [s for s in spks if s not in genders]
        if not unknown:
            t["spk2gender"] = {s: genders[s] for s in spks}
        else:
            logger.warning("%s: %d of %d speakers have no gender in the spkrinfo files (%s); spk2gender not "
                           "written (WSJ0's training speakers are in the LDC's wsj0-train-spkrinfo.txt: "
                           "--spkrinfo)", name, len(unknown), len(spks),
                           " ".join(unknown[:8]) + (" ..." if len(unknown) > 8 else ""))
        write_data_dir(data_dir / name, t)
        counts[name] = len(t["utt2spk"])
        logger.info("%s: %d speakers, %d utterances", name, len(spks), counts[name])
    return counts


# --------------------------------------------------------------------------- main

def get_parser():
    p = make_parser(__doc__)
    p.add_argument("--wsj0", action="append", default=[], metavar="DIR",
                   help="directory holding the WSJ0 (LDC93S6B, csr_1) discs 11-*.1 (repeatable)")
    p.add_argument("--wsj1", action="append", default=[], metavar="DIR",
                   help="directory holding the WSJ1 (LDC94S13B, csr_2) discs 13-*.1 (repeatable)")
    p.add_argument("--wsj-root", action="append", default=[], metavar="DIR",
                   help="one directory holding both corpora (repeatable)")
    p.add_argument("--sets", default=DEFAULT_SETS,
                   help=f"comma-separated sets, of {', '.join(SETS)} (default: %(default)s)")
    p.add_argument("--punctuation", choices=("kaldi", "words"), default="kaldi",
                   help="verbalised punctuation: ,COMMA (kaldi) or COMMA (words) (default: %(default)s)")
    p.add_argument("--noise-word", default=None, metavar="WORD",
                   help="word for [noise] markers, e.g. '<NOISE>' (default: markers removed)")
    p.add_argument("--spkrinfo", action="append", default=[], metavar="FILE",
                   help="extra speaker-info file (e.g. wsj0-train-spkrinfo.txt); repeatable")
    p.add_argument("--decode-to", default=None, metavar="DIR",
                   help="decode the shorten files to WAV under DIR once (default: wav.scp pipes)")
    p.add_argument("--nj", type=int, default=4, help="parallel decodes with --decode-to (default: %(default)s)")
    p.add_argument("--allow-missing", action="store_true",
                   help="leave out training utterances without audio or transcript (default: error)")
    p.add_argument("data_dir", nargs="?", help="output: <data-dir>/<set>/")
    return p


def run(args) -> int:
    roots = [Path(d) for d in args.wsj0 + args.wsj1 + args.wsj_root]
    if not roots:
        raise ValueError("no corpus given: use --wsj0 DIR --wsj1 DIR, or --wsj-root DIR")
    if args.data_dir is None:
        raise ValueError("<data-dir> is required")
    sets = [s for s in args.sets.split(",") if s]
    bad = [s for s in sets if s not in SETS]
    if bad or not sets:
        raise ValueError(f"--sets: unknown set(s) {' '.join(bad)}; known: {' '.join(SETS)}")
    prepare(roots, Path(args.data_dir), sets, args.punctuation, args.noise_word,
            [Path(f) for f in args.spkrinfo], Path(args.decode_to) if args.decode_to else None,
            args.nj, args.allow_missing)
    return 0


def main(argv=None) -> int:
    return program(get_parser(), run, argv, logger)


if __name__ == "__main__":
    sys.exit(main())
