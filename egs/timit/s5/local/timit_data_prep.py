#!/usr/bin/env python3
"""TIMIT data preparation: Kaldi data dirs for train, dev and test.

Usage:
  local/timit_data_prep.py [options] <timit-dir> <data-dir>
  local/timit_data_prep.py --print-layout <timit-dir>

  e.g.: local/timit_data_prep.py /corpora/TIMIT data
        local/timit_data_prep.py ../shared/data/timit_sample data
        local/timit_data_prep.py --print-layout /corpora/TIMIT     # prints ldc or sample

Two corpus layouts are recognised:

* LDC (LDC93S1): ``<timit-dir>/{TRAIN,TEST}/DR*/<SPK>/<UTT>.{WAV,PHN}``, in
  upper or lower case, audio in NIST SPHERE. Split: every TRAIN speaker is
  in train; the speakers of ``--dev-spk-list`` (the standard 50) and
  ``--test-spk-list`` (the 24 of the core test set), both from TEST, are dev
  and test. Listed speakers the corpus lacks are warned about (a partial
  copy still runs, as in Kaldi); a list none of whose speakers is present is
  an error.
* NLTK sample: ``<timit-dir>/dr<N>-<spk>/<utt>.{wav,phn}``. Split (speaker
  disjoint): dialect regions dr1-dr6 train, dr7 dev, dr8 test.

Writes ``<data-dir>/{train,dev,test}/{wav.scp,text,utt2spk,spk2utt,spk2gender}``.
Utterance ids are ``<spk>_<utt>`` in lower case (e.g. ``fvmh0_si836``);
``text`` holds the 48-phone transcription: the 61 TIMIT phones are folded
with column 2 of ``--phone-map``, ``q`` is dropped, ``h#``/``pau`` become
``sil``. SA sentences are left out unless ``--include-sa``.

Errors name the utterance and file: a missing audio file, a phone outside
the map, a malformed map line. An utterance whose
transcription is empty after folding is skipped with a warning (Kaldi's
fix_data_dir would drop it too).
"""

from __future__ import annotations

import argparse
import logging
import re
import sys
from pathlib import Path
from typing import Dict, List, Optional, Tuple

from mtlasr.datadir import write_data_dir

logger = logging.getLogger("timit_data_prep")

SETS = ("train", "dev", "test")


def get_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    conf = Path(__file__).resolve().parent.parent / "conf"
    p.add_argument("--phone-map", default=str(conf / "phones.60-48-39.map"),
                   help="60-48-39 phone map (default: %(default)s)")
    p.add_argument("--dev-spk-list", default=str(conf / "dev_spk.list"),
                   help="dev speakers for the LDC layout (default: %(default)s)")
    p.add_argument("--test-spk-list", default=str(conf / "test_spk.list"),
                   help="core-test speakers for the LDC layout (default: %(default)s)")
    p.add_argument("--include-sa", action="store_true", help="keep the SA sentences")
    p.add_argument("--print-layout", action="store_true",
                   help="only print the corpus layout of <timit-dir> (ldc or sample) and exit")
    p.add_argument("timit_dir", help="TIMIT corpus root (LDC or NLTK-sample layout)")
    p.add_argument("data_dir", nargs="?", help="output: <data-dir>/{train,dev,test}")
    return p


def read_phone_map(path: Path) -> Dict[str, Optional[str]]:
    """The 60 -> 48 folding of a ``timit60 train48 score39`` map file.

    Lines have 3 columns, or 1 for a 60-set phone that is deleted (``q``).

    Raises:
      ValueError: a line with another number of columns, or a phone mapped
        twice to different phones, naming the file and line.
    """
    out: Dict[str, Optional[str]] = {}
    for lineno, line in enumerate(Path(path).read_text().splitlines(), 1):
        cols = line.split()
        if not cols:
            continue
        if len(cols) not in (1, 3):
            raise ValueError(f"{path}:{lineno}: expected 1 or 3 columns, got {len(cols)}: {line.strip()!r}")
        dst = cols[1] if len(cols) == 3 else None
        if cols[0] in out and out[cols[0]] != dst:
            raise ValueError(f"{path}:{lineno}: phone {cols[0]!r} mapped to both {out[cols[0]]!r} and {dst!r}")
        out[cols[0]] = dst
    return out


def detect_layout(timit_dir: Path) -> str:
    """``ldc`` (TRAIN/ and TEST/ in any case) or ``sample`` (``dr<N>-<spk>/``).

    The recipe makes its sample-vs-full decision here and nowhere else.

    Raises:
      FileNotFoundError: no such directory, or neither layout.
    """
    if not timit_dir.is_dir():
        raise FileNotFoundError(f"{timit_dir}: no such directory")
    if _find_ci(timit_dir, "train") is not None and _find_ci(timit_dir, "test") is not None:
        return "ldc"
    if any(d.is_dir() and re.fullmatch(r"dr\d-\w+", d.name.lower()) for d in timit_dir.iterdir()):
        return "sample"
    raise FileNotFoundError(
        f"{timit_dir}: neither the LDC layout (TRAIN/ and TEST/) nor the sample layout (dr1-<spk>/)")


def _find_ci(parent: Path, name: str) -> Optional[Path]:
    """The child of ``parent`` called ``name`` in any letter case."""
    for child in parent.iterdir():
        if child.name.lower() == name.lower():
            return child
    return None


def _utterances(spk_dir: Path) -> Dict[str, Tuple[Optional[Path], Optional[Path]]]:
    """utt name (lower case) -> (audio path, .phn path) for one speaker folder."""
    out: Dict[str, List[Optional[Path]]] = {}
    for f in spk_dir.iterdir():
        stem, ext = f.stem.lower(), f.suffix.lower()
        if ext == ".wav":
            out.setdefault(stem, [None, None])[0] = f
        elif ext == ".phn":
            out.setdefault(stem, [None, None])[1] = f
    return {k: (v[0], v[1]) for k, v in out.items()}


def find_speakers(timit_dir: Path, dev_list: Path, test_list: Path) -> Dict[str, Dict[str, Path]]:
    """Assign speaker folders to sets. Returns set -> {speaker id -> folder}.

    Raises:
      FileNotFoundError: no recognised layout under ``timit_dir``.
      ValueError: a speaker on both lists, or no listed speaker under TEST.
    """
    layout = detect_layout(timit_dir)
    sets: Dict[str, Dict[str, Path]] = {s: {} for s in SETS}
    if layout == "ldc":
        train_dir, test_dir = _find_ci(timit_dir, "train"), _find_ci(timit_dir, "test")
        dev = set(dev_list.read_text().split())
        test = set(test_list.read_text().split())
        if dev & test:
            raise ValueError(f"speakers on both {dev_list} and {test_list}: {sorted(dev & test)}")
        for part, part_dir in (("train", train_dir), ("test", test_dir)):
            for dr in sorted(part_dir.iterdir()):
                if not (dr.is_dir() and re.fullmatch(r"dr\d", dr.name.lower())):
                    continue
                for spk_dir in sorted(dr.iterdir()):
                    if not spk_dir.is_dir():
                        continue
                    spk = spk_dir.name.lower()
                    if part == "train":
                        sets["train"][spk] = spk_dir
                    elif spk in dev:
                        sets["dev"][spk] = spk_dir
                    elif spk in test:
                        sets["test"][spk] = spk_dir
        for name, wanted, lst in (("dev", dev, dev_list), ("test", test, test_list)):
            missing = sorted(wanted - set(sets[name]))
            if len(missing) == len(wanted):
                raise ValueError(f"{lst}: none of its {len(wanted)} speakers is under {test_dir}")
            if missing:
                logger.warning("%s: %d of its %d speakers are not under %s (%s); the %s set has the other %d",
                               lst, len(missing), len(wanted), test_dir, " ".join(missing[:5])
                               + (" ..." if len(missing) > 5 else ""), name, len(wanted) - len(missing))
        return sets
    sample = [d for d in sorted(timit_dir.iterdir()) if d.is_dir() and re.fullmatch(r"dr\d-\w+", d.name.lower())]
    for d in sample:
        region, spk = d.name.lower().split("-", 1)
        n = int(region[2:])
        sets["train" if n <= 6 else "dev" if n == 7 else "test"][spk] = d
    return sets


def read_phn(path: Path, phone_map: Dict[str, Optional[str]], utt: str) -> List[str]:
    """The 48-phone transcription of one .PHN file (``start end phone`` lines).

    Raises:
      ValueError: a malformed line or a phone outside the map, naming the
        utterance, file and line.
    """
    phones: List[str] = []
    for lineno, line in enumerate(path.read_text().splitlines(), 1):
        parts = line.split()
        if not parts:
            continue
        if len(parts) != 3:
            raise ValueError(f"utterance {utt}: {path}:{lineno}: expected 'start end phone', got {line!r}")
        ph = parts[2].lower()
        if ph not in phone_map:
            raise ValueError(f"utterance {utt}: {path}:{lineno}: phone '{ph}' is not in the phone map")
        if phone_map[ph] is not None:
            phones.append(phone_map[ph])
    return phones


def prepare(timit_dir: Path, data_dir: Path, phone_map_file: Path, dev_list: Path,
            test_list: Path, include_sa: bool = False) -> Dict[str, int]:
    """Write the three data dirs; returns set -> number of utterances."""
    phone_map = read_phone_map(phone_map_file)
    sets = find_speakers(timit_dir, dev_list, test_list)
    counts, tables = {}, {}
    for name in SETS:
        wav, text, utt2spk, spk2gender = {}, {}, {}, {}
        for spk, spk_dir in sets[name].items():
            for utt_name, (audio, phn) in sorted(_utterances(spk_dir).items()):
                if utt_name.startswith("sa") and not include_sa:
                    continue
                utt = f"{spk}_{utt_name}"
                if audio is None:
                    raise FileNotFoundError(f"utterance {utt}: no audio file for {phn} (expected {phn.with_suffix(phn.suffix[:-3] + ('WAV' if phn.suffix.isupper() else 'wav'))})")
                if phn is None:
                    raise FileNotFoundError(f"utterance {utt}: no transcription {spk_dir}/{utt_name}.phn (for {audio})")
                phones = read_phn(phn, phone_map, utt)
                if not phones:
                    logger.warning("utterance %s: empty transcription in %s; skipped", utt, phn)
                    continue
                wav[utt] = str(audio.resolve())
                text[utt] = phones
                utt2spk[utt] = spk
                spk2gender[spk] = spk[0] if spk[0] in "mf" else "m"
        if not utt2spk:
            raise ValueError(f"{timit_dir}: no utterances for the {name} set")
        tables[name] = {"wav.scp": wav, "text": text, "utt2spk": utt2spk, "spk2gender": spk2gender}
    # Everything was read without error: only now are the data dirs replaced.
    for name in SETS:
        write_data_dir(data_dir / name, tables[name])
        utt2spk = tables[name]["utt2spk"]
        counts[name] = len(utt2spk)
        logger.info("%s: %d speakers, %d utterances", name, len(set(utt2spk.values())), len(utt2spk))
    return counts


def main(argv=None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    args = get_parser().parse_args(argv)
    try:
        if args.print_layout:
            print(detect_layout(Path(args.timit_dir)))
            return 0
        if args.data_dir is None:
            raise ValueError("<data-dir> is required (unless --print-layout)")
        prepare(Path(args.timit_dir), Path(args.data_dir), Path(args.phone_map),
                Path(args.dev_spk_list), Path(args.test_spk_list), args.include_sa)
    except (OSError, ValueError) as e:
        logger.error("%s", e)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
