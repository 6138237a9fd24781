#!/usr/bin/env python3
"""LibriSpeech data preparation: Kaldi data dirs from a copy in its distributed layout.

Usage:
  local/librispeech_data_prep.py [options] --root <dir> <data-dir>

  e.g.: local/librispeech_data_prep.py --root /corpora data
        local/librispeech_data_prep.py --root /corpora/LibriSpeech --sets train-clean-100,dev-clean data
        local/librispeech_data_prep.py --root db --sets dev-other,test-other --allow-missing data

LibriSpeech (V. Panayotov et al., ICASSP 2015; openslr.org resource 12,
CC BY 4.0; local/download_librispeech.sh fetches it) unpacks to

  <root>/LibriSpeech/SPEAKERS.TXT
  <root>/LibriSpeech/<subset>/<speaker>/<chapter>/<speaker>-<chapter>-<utt>.flac
  <root>/LibriSpeech/<subset>/<speaker>/<chapter>/<speaker>-<chapter>.trans.txt

``--root`` is the directory holding ``LibriSpeech/`` or ``LibriSpeech/``
itself. ``--sets`` is a comma-separated list of subset directory names
(default train-clean-100,dev-clean,test-clean; any subset there works, e.g.
dev-other, train-clean-360).

Writes, per subset, ``<data-dir>/<subset with - as _>/`` (``train_clean_100``,
``dev_clean``, ``test_clean``) holding

  wav.scp     ``<utt> <absolute path of the .flac>`` (soundfile, which the
              toolkit's audio reader uses, decodes FLAC; a path with white
              space becomes ``cat '<path>' |``)
  text        ``<utt> WORDS IN UPPER CASE`` (the transcript as distributed)
  utt2spk     ``<utt> <speaker>``, spk2utt its inverse
  utt2dur     ``<utt> <seconds>`` from the FLAC headers (4 decimals)
  spk2gender  ``<speaker> m|f`` from SPEAKERS.TXT

Utterance ids are LibriSpeech's ``<speaker>-<chapter>-<utt>``
(``103-1240-0000``), speakers the reader ids (``103``), so every speaker id
prefixes its utterance ids and both sort alike in C order (``-`` sorts
before the digits). Unlike Kaldi's LibriSpeech recipe, which takes
``<speaker>-<chapter>`` as its "speaker" (for per-chapter CMVN), the
speaker is the person: the speaker-recognition labels need that.

Errors (exit status 1, one line naming the file and line; nothing is
written, as every set is checked before any is written):
  * a subset directory that is not there (the ones present are listed);
  * a transcript line that is not ``<speaker>-<chapter>-<utt> WORDS``, or
    whose id is not of its chapter, or given twice;
  * a .flac whose name is not ``<speaker>-<chapter>-<utt>.flac`` of its
    directories, or whose header soundfile cannot read;
  * a .flac without a transcript line, a transcript line without a .flac (a
    partial copy): errors unless ``--allow-missing``, which leaves those
    utterances out with a counted warning (what Kaldi's fix_data_dir.sh
    would do).
SPEAKERS.TXT lines that do not parse are skipped with a counted warning; a
set with a speaker of unknown gender (or no SPEAKERS.TXT) gets no
spk2gender, with a warning. A sample rate other than 16 kHz is warned about.
"""

from __future__ import annotations

import logging
import re
import shlex
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

ROOT = Path(__file__).resolve().parents[4]
sys.path.insert(0, str(ROOT / "steps" / "libs"))
from mtlasr.cli import make_parser, program  # noqa: E402
from mtlasr.datadir import write_data_dir  # noqa: E402

logger = logging.getLogger("librispeech_data_prep")

DEFAULT_SETS = "train-clean-100,dev-clean,test-clean"
ID_PART = r"[^\s-]+"                      # a speaker or chapter directory name (digits in LibriSpeech)
UTT_RE = re.compile(rf"^({ID_PART})-({ID_PART})-({ID_PART})$")
SAMPLE_RATE = 16000


def find_corpus(root: Path, sets: Sequence[str]) -> Path:
    """The ``LibriSpeech/`` directory: ``root/LibriSpeech`` if there, else
    ``root`` itself.

    Raises:
      FileNotFoundError: ``root`` is not a directory; a subset of ``sets``
        is not in the corpus directory (naming it and the subsets present).
    """
    if not root.is_dir():
        raise FileNotFoundError(f"--root {root}: no such directory")
    corpus = root / "LibriSpeech" if (root / "LibriSpeech").is_dir() else root
    missing = [s for s in sets if not (corpus / s).is_dir()]
    if missing:
        present = sorted(p.name for p in corpus.iterdir() if p.is_dir() and not p.name.startswith("."))
        raise FileNotFoundError(
            f"LibriSpeech subset(s) {', '.join(missing)} not found: no directory "
            + ", ".join(str(corpus / s) for s in missing)
            + f" (subsets there: {' '.join(present) or 'none'}; local/download_librispeech.sh fetches them)")
    return corpus


def read_speakers(path: Path) -> Dict[str, str]:
    """speaker -> ``m``/``f`` from SPEAKERS.TXT (``;`` comment lines, then
    ``ID | SEX | SUBSET | MINUTES | NAME``; a name may hold ``|`` itself).
    Lines that do not parse are skipped, counted in one warning naming the
    first; no file gives ``{}`` with a warning."""
    if not path.is_file():
        logger.warning("%s: no such file; spk2gender is not written", path)
        return {}
    out: Dict[str, str] = {}
    bad: List[str] = []
    with open(path, encoding="utf-8", errors="replace") as f:
        for lineno, line in enumerate(f, 1):
            if not line.strip() or line.lstrip().startswith(";"):
                continue
            cols = [c.strip() for c in line.split("|", 4)]
            if len(cols) < 2 or not cols[0] or cols[1].upper() not in ("M", "F"):
                bad.append(f"{path}:{lineno}: {line.strip()!r}")
                continue
            out[cols[0]] = cols[1].lower()
    if bad:
        logger.warning("%d line(s) of %s are not 'ID | SEX | SUBSET | MINUTES | NAME', skipped; the first: %s",
                       len(bad), path, bad[0])
    return out


def read_trans(path: Path, speaker: str, chapter: str) -> Dict[str, Tuple[List[str], int]]:
    """utterance id -> (words, line number) of one ``<speaker>-<chapter>.trans.txt``.

    Raises:
      ValueError: a line that is not ``<speaker>-<chapter>-<utt> WORDS`` with
        this file's speaker and chapter, or an id given twice (naming the
        file and line).
    """
    out: Dict[str, Tuple[List[str], int]] = {}
    with open(path, encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            if not line.strip():
                continue
            cols = line.split()
            m = UTT_RE.match(cols[0])
            if len(cols) < 2 or not m or (m.group(1), m.group(2)) != (speaker, chapter):
                raise ValueError(f"{path}:{lineno}: expected '{speaker}-{chapter}-<utt> WORDS', "
                                 f"got {line.strip()!r}")
            if cols[0] in out:
                raise ValueError(f"{path}:{lineno}: utterance {cols[0]} given again (first on line "
                                 f"{out[cols[0]][1]})")
            out[cols[0]] = (cols[1:], lineno)
    return out


def wav_entry(path: Path) -> str:
    """wav.scp value of an audio file: its path (``cat`` pipe if it holds white space)."""
    s = str(path)
    return s if not re.search(r"\s", s) else f"cat {shlex.quote(s)} |"


@dataclass
class Problems:
    """Utterances with audio but no transcript line, and the reverse: how
    many, and messages (one per chapter without a transcript file)."""
    no_text: List[str] = field(default_factory=list)
    no_audio: List[str] = field(default_factory=list)
    n_no_text: int = 0


def _shown(items: List[str]) -> str:
    return "; ".join(items[:5]) + (f"; ... and {len(items) - 5} more" if len(items) > 5 else "")


def build_set(corpus: Path, subset: str, allow_missing: bool) -> Dict[str, Dict[str, object]]:
    """The tables of one subset: wav.scp, text, utt2spk, utt2dur.

    Raises:
      ValueError: a malformed transcript, a misnamed or unreadable .flac, no
        utterance at all; FileNotFoundError: (without ``allow_missing``)
        a .flac without transcript line or a line without .flac.
    """
    import soundfile as sf

    t: Dict[str, Dict[str, object]] = {k: {} for k in ("wav.scp", "text", "utt2spk", "utt2dur")}
    probs = Problems()
    other_rates: List[str] = []
    base = (corpus / subset).absolute()
    for spk_dir in sorted(p for p in base.iterdir() if p.is_dir() and not p.name.startswith(".")):
        for ch_dir in sorted(p for p in spk_dir.iterdir() if p.is_dir() and not p.name.startswith(".")):
            spk, chapter = spk_dir.name, ch_dir.name
            flacs = sorted(ch_dir.glob("*.flac"))
            trans_path = ch_dir / f"{spk}-{chapter}.trans.txt"
            trans = read_trans(trans_path, spk, chapter) if trans_path.is_file() else {}
            audio: Dict[str, Path] = {}
            for flac in flacs:
                m = UTT_RE.match(flac.name[:-len(".flac")])
                if not m or (m.group(1), m.group(2)) != (spk, chapter):
                    raise ValueError(f"{flac}: not named <speaker>-<chapter>-<utt>.flac of its directories "
                                     f"({spk}-{chapter}-<utt>.flac)")
                audio[flac.name[:-len(".flac")]] = flac
            lost = [utt for utt in audio if utt not in trans]
            probs.n_no_text += len(lost)
            if lost and not trans_path.is_file():
                probs.no_text.append(f"{ch_dir}: {len(lost)} .flac file(s) but no transcript file {trans_path.name}")
            elif lost:
                probs.no_text.extend(f"{audio[utt]}: no line {utt} in {trans_path}" for utt in lost)
            for utt, (_, lineno) in trans.items():
                if utt not in audio:
                    probs.no_audio.append(f"{trans_path}:{lineno}: {utt}: no {ch_dir / (utt + '.flac')}")
            for utt in sorted(set(audio) & set(trans)):
                try:
                    info = sf.info(str(audio[utt]))
                except Exception as e:  # libsndfile's error: not FLAC, truncated header, ...
                    msg = re.sub(r"\s+", " ", str(e)).strip()
                    raise ValueError(f"{audio[utt]}: cannot read its header: {msg}") from None
                if info.samplerate != SAMPLE_RATE:
                    other_rates.append(f"{audio[utt]} ({info.samplerate} Hz)")
                t["wav.scp"][utt] = wav_entry(audio[utt])
                t["text"][utt] = trans[utt][0]
                t["utt2spk"][utt] = spk
                t["utt2dur"][utt] = f"{info.frames / info.samplerate:.4f}"
    for n, what, items in ((probs.n_no_text, "audio file(s) have no transcript line", probs.no_text),
                           (len(probs.no_audio), "transcript line(s) have no .flac file", probs.no_audio)):
        if not n:
            continue
        if not allow_missing:
            raise FileNotFoundError(f"{subset}: {n} {what} (a partial copy? --allow-missing leaves them out): "
                                    f"{_shown(items)}")
        logger.warning("%s: %d %s, left out: %s", subset, n, what, _shown(items))
    if other_rates:
        logger.warning("%s: %d file(s) not at %d Hz: %s", subset, len(other_rates), SAMPLE_RATE, _shown(other_rates))
    if not t["utt2spk"]:
        raise ValueError(f"{subset}: no utterances under {base} (expected <speaker>/<chapter>/*.flac)")
    return t


def set_name(subset: str) -> str:
    """Data dir name of a subset: ``train-clean-100`` -> ``train_clean_100``."""
    return subset.replace("-", "_")


def prepare(root: Path, data_dir: Path, sets: Sequence[str], allow_missing: bool = False) -> Dict[str, int]:
    """Write the data dirs of ``sets`` (all are built and checked first);
    returns data dir name -> number of utterances."""
    corpus = find_corpus(root, sets)
    tables = {set_name(s): build_set(corpus, s, allow_missing) for s in sets}
    genders = read_speakers(corpus / "SPEAKERS.TXT")
    counts = {}
    for name, t in tables.items():
        spks = sorted(set(t["utt2spk"].values()))
        unknown = [s for s in spks if s not in genders]
        if not unknown:
            t["spk2gender"] = {s: genders[s] for s in spks}
        elif genders:
            logger.warning("%s: %d of %d speakers are not in %s (%s); spk2gender not written", name, len(unknown),
                           len(spks), corpus / "SPEAKERS.TXT", " ".join(unknown[:8]) + (" ..." if len(unknown) > 8
                                                                                        else ""))
    for name, t in tables.items():
        write_data_dir(data_dir / name, t)
        counts[name] = len(t["utt2spk"])
        logger.info("%s: %d speakers, %d utterances, %.2f hours", name, len(set(t["utt2spk"].values())),
                    counts[name], sum(float(d) for d in t["utt2dur"].values()) / 3600)
    return counts


def get_parser():
    p = make_parser(__doc__)
    p.add_argument("--root", required=True, metavar="DIR",
                   help="directory holding LibriSpeech/, or LibriSpeech/ itself")
    p.add_argument("--sets", default=DEFAULT_SETS,
                   help="comma-separated subset directory names (default: %(default)s)")
    p.add_argument("--allow-missing", action="store_true",
                   help="leave out .flac files without transcript line and lines without .flac (default: error)")
    p.add_argument("data_dir", help="output: <data-dir>/<subset with - as _>/")
    return p


def run(args) -> int:
    sets = [s for s in args.sets.split(",") if s]
    if not sets:
        raise ValueError("--sets: no subset given")
    bad = [s for s in sets if "/" in s or s.startswith(".")]
    if bad:
        raise ValueError(f"--sets: {' '.join(bad)}: not a subset directory name (e.g. train-clean-100)")
    dup = sorted({set_name(s) for s in sets if [set_name(x) for x in sets].count(set_name(s)) > 1})
    if dup:
        raise ValueError(f"--sets: data dir(s) {' '.join(dup)} asked for twice")
    prepare(Path(args.root), Path(args.data_dir), sets, args.allow_missing)
    return 0


def main(argv: Optional[Sequence[str]] = None) -> int:
    return program(get_parser(), run, argv, logger)


if __name__ == "__main__":
    sys.exit(main())
