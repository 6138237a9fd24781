"""N-gram language-model text and statistics (steps/train_lm.sh, utils/format_lm.sh).

Training text: a Kaldi ``text`` file (utterance id, then words) becomes one
sentence per line of *units*: the words themselves (``unit="word"``), or
each word's characters with ``space_symbol`` between words
(``unit="char"``: ``ab cd`` -> ``a b <space> c d``). With a vocabulary and an
OOV word, units outside the vocabulary are replaced by the OOV word (the
vocabulary is one of units: words, or characters for a character LM).

ARPA files are read as UTF-8, gzipped ones (``*.gz``) too. Perplexities
come from ``kaldingram ppl`` (SRILM's conventions: ``ppl`` counts one
``</s>`` per sentence, ``ppl1`` does not).

Nothing here imports kaldifst or kaldi_hmm_gmm, so mtlasr.bin.arpa_to_g can
import it next to kaldilm.
"""

from __future__ import annotations

import contextlib
import gzip
import io
import logging
import os
import re
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, Iterator, List, Optional, Set, Tuple

from .datadir import PathLike, atomic_open
from .lang import RESERVED_WORDS, OovCounter

logger = logging.getLogger(__name__)

UNITS = ("word", "char")
SENTENCE_MARKS = ("<s>", "</s>")


def open_text(path: PathLike) -> io.TextIOBase:
    """Open a UTF-8 text file for reading, gunzipping ``*.gz``."""
    if str(path).endswith(".gz"):
        return gzip.open(path, "rt", encoding="utf-8")
    return open(path, encoding="utf-8")


def read_vocab(path: PathLike) -> Set[str]:
    """The first field of each line (a ``words.txt`` symbol table or a plain
    word list), without the reserved symbols <eps>, #0, <s>, </s>."""
    with open_text(path) as f:
        return {line.split()[0] for line in f if line.strip()} - set(RESERVED_WORDS)


def to_units(words: List[str], unit: str, space_symbol: str) -> List[str]:
    """Words as LM units: themselves, or characters with ``space_symbol``
    between words.

    Raises:
      ValueError: an unknown unit.
    """
    if unit == "word":
        return list(words)
    if unit != "char":
        raise ValueError(f"unit must be one of {UNITS}, got '{unit}'")
    out: List[str] = []
    for i, w in enumerate(words):
        if i:
            out.append(space_symbol)
        out.extend(w)
    return out


def lm_sentences(text: PathLike, unit: str, space_symbol: str, vocab: Optional[Set[str]] = None,
                 oov_word: Optional[str] = None, counter: Optional[OovCounter] = None) -> Iterator[List[str]]:
    """The units of each non-empty transcript of a Kaldi text file.

    Args:
      vocab: known units; the others are counted in ``counter`` and, with
        ``oov_word``, replaced by it. The space symbol is always known.

    Raises:
      ValueError: a transcript holding <s> or </s>, naming file and line;
        a space symbol that is empty or holds whitespace.
    """
    if not space_symbol or len(space_symbol.split()) != 1 or space_symbol != space_symbol.strip():
        raise ValueError(f"the space symbol must be one non-empty token, got {space_symbol!r}")
    with open_text(text) as f:
        for lineno, line in enumerate(f, 1):
            words = line.split()[1:]
            for w in words:
                if w in SENTENCE_MARKS:
                    raise ValueError(f"{text}:{lineno}: transcript holds the sentence mark '{w}'")
            if not words:
                continue
            units = to_units(words, unit, space_symbol)
            oovs: List[str] = []
            if vocab is not None:
                oovs = [u for u in units if u not in vocab and u != space_symbol]
                if oov_word is not None and oovs:
                    units = [u if u in vocab or u == space_symbol else oov_word for u in units]
            if counter is not None:
                counter.add(len(units), oovs)
            yield units


def write_lm_text(text: PathLike, out: PathLike, unit: str, space_symbol: str,
                  vocab: Optional[Set[str]] = None, oov_word: Optional[str] = None) -> OovCounter:
    """Write :func:`lm_sentences` one per line to ``out``, atomically.

    Returns: the OOV counts (relative to ``vocab``; empty without one).

    Raises:
      ValueError: see :func:`lm_sentences`; ``oov_word`` without ``vocab``
        or not in it; no sentence at all.
    """
    if oov_word is not None and vocab is None:
        raise ValueError("an OOV word needs a vocabulary to say which words are OOV")
    if oov_word is not None and oov_word not in vocab:
        raise ValueError(f"the OOV word '{oov_word}' is not in the vocabulary")
    counter = OovCounter()
    with atomic_open(out) as f:
        for units in lm_sentences(text, unit, space_symbol, vocab, oov_word, counter):
            f.write(" ".join(units) + "\n")
    if counter.utts == 0:
        raise ValueError(f"{text}: no transcript to train on")
    return counter


def add_text_options(parser) -> None:
    """The options of mtlasr.bin.lm_text and lm_ppl that say how text
    becomes LM units (no defaults: steps/train_lm.sh holds them)."""
    parser.add_argument("--unit", required=True, choices=UNITS, help="LM units")
    parser.add_argument("--space-symbol", required=True, help="word separator of character LMs")
    parser.add_argument("--vocab", help="known units (words.txt or one per line)")
    parser.add_argument("--oov-word", help="replace units outside --vocab by this one")


def text_options(args) -> Dict[str, object]:
    """The keyword arguments (unit, space_symbol, vocab, oov_word) of
    :func:`write_lm_text` and :func:`dev_perplexity` from the options of
    :func:`add_text_options`, the vocabulary read in."""
    return {"unit": args.unit, "space_symbol": args.space_symbol, "oov_word": args.oov_word,
            "vocab": read_vocab(args.vocab) if args.vocab else None}


# ---------------------------------------------------------------- ARPA
@contextlib.contextmanager
def plain_arpa(path: PathLike, work_dir: Optional[PathLike] = None) -> Iterator[str]:
    """A path to ``path`` uncompressed: the file itself, or a temporary
    gunzipped copy (in ``work_dir``) that is removed afterwards."""
    if not str(path).endswith(".gz"):
        yield str(path)
        return
    fd, tmp = tempfile.mkstemp(suffix=".arpa", dir=work_dir)
    try:
        with os.fdopen(fd, "wb") as out, gzip.open(path, "rb") as src:
            shutil.copyfileobj(src, out)
        yield tmp
    finally:
        os.unlink(tmp)


@dataclass
class ArpaInfo:
    """What :func:`scan_arpa` found.

    Attributes:
      counts: order -> number of n-grams, from the ``\\data\\`` header.
      words: the unigram vocabulary (with <s>, </s>).
      oov_words: unigram words outside the vocabulary given to
        :func:`scan_arpa`, in file order.
      ngrams_with_oov: order -> n-grams that hold one of them.
    """

    counts: Dict[int, int] = field(default_factory=dict)
    words: Set[str] = field(default_factory=set)
    oov_words: List[str] = field(default_factory=list)
    ngrams_with_oov: Dict[int, int] = field(default_factory=dict)


_SECTION_RE = re.compile(r"\\(\d+)-grams:$")
_COUNT_RE = re.compile(r"ngram (\d+)\s*=\s*(\d+)$")


def scan_arpa(path: PathLike, vocab: Optional[Set[str]] = None) -> ArpaInfo:
    """Read an ARPA file's header counts and vocabulary and, given ``vocab``
    (e.g. the words of words.txt), count the n-grams that use other words.

    Raises:
      ValueError: a malformed n-gram line or no ``\\data\\`` counts, naming
        file and line.
    """
    info = ArpaInfo()
    known = None if vocab is None else set(vocab) | set(SENTENCE_MARKS)
    order = 0
    with open_text(path) as f:
        for lineno, line in enumerate(f, 1):
            line = line.strip()
            if not line:
                continue
            m = _COUNT_RE.match(line) if order == 0 else None
            if m:
                info.counts[int(m.group(1))] = int(m.group(2))
                continue
            m = _SECTION_RE.match(line)
            if m:
                order = int(m.group(1))
                continue
            if line == "\\end\\":
                break
            if order == 0:
                continue
            parts = line.split()
            if len(parts) < order + 1:
                raise ValueError(f"{path}:{lineno}: expected a {order}-gram line, got {line!r}")
            ngram = parts[1:order + 1]
            if order == 1:
                info.words.add(ngram[0])
                if known is not None and ngram[0] not in known:
                    info.oov_words.append(ngram[0])
            if known is not None and any(w not in known for w in ngram):
                info.ngrams_with_oov[order] = info.ngrams_with_oov.get(order, 0) + 1
    if not info.counts:
        raise ValueError(f"{path}: no 'ngram N=count' lines in a \\data\\ section; not an ARPA file")
    return info


def format_counts(counts: Dict[int, int]) -> str:
    """``1-grams 120, 2-grams 345``."""
    return ", ".join(f"{n}-grams {c}" for n, c in sorted(counts.items()))


# ---------------------------------------------------------------- perplexity
_PPL_FILE_RE = re.compile(r"(\d+) sentences, (\d+) words, (\d+) OOVs")
_PPL_RE = re.compile(r"(\d+) zeroprobs, logprob= (\S+) ppl= (\S+) ppl1= (\S+)")


def parse_ppl_report(report: str) -> Dict[str, float]:
    """The numbers of a ``kaldingram ppl`` (SRILM-style) report.

    Returns: sentences, words, oovs, zeroprobs, logprob (log10), ppl, ppl1.

    Raises:
      ValueError: the report lacks the expected lines.
    """
    m1, m2 = _PPL_FILE_RE.search(report), _PPL_RE.search(report)
    if not m1:
        raise ValueError(f"unexpected kaldingram ppl output: {report!r}")
    out: Dict[str, float] = dict(zip(("sentences", "words", "oovs"), map(int, m1.groups())))
    out.update(zeroprobs=0, logprob=0.0, ppl=float("inf"), ppl1=float("inf"))
    if m2:
        out.update(zeroprobs=int(m2.group(1)), logprob=float(m2.group(2)), ppl=float(m2.group(3)),
                   ppl1=float(m2.group(4)))
    return out


def kaldingram_ppl(arpa: PathLike, text: PathLike) -> Dict[str, float]:
    """Run ``kaldingram ppl`` on a file of sentences (one per line) and parse it.

    Raises:
      RuntimeError: kaldingram failed, with its output.
    """
    exe = shutil.which("kaldingram") or str(Path(sys.executable).parent / "kaldingram")
    cmd = [exe, "ppl", "--lm", str(arpa), "--text", str(text), "-encoding", "utf-8"]
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed ({r.returncode}): {r.stderr.strip()[-2000:]}")
    logger.info("kaldingram ppl: %s", r.stdout.strip().replace("\n", "; "))
    return parse_ppl_report(r.stdout)


def dev_perplexity(arpa: PathLike, text: PathLike, unit: str, space_symbol: str,
                   vocab: Optional[Set[str]] = None, oov_word: Optional[str] = None,
                   work_dir: Optional[PathLike] = None) -> Dict[str, float]:
    """Perplexity of an ARPA LM on a Kaldi text file, the text turned into
    units as for training.

    A dev unit is OOV when the LM has no unigram for it (or it is outside
    ``vocab``, when given); with ``oov_word`` it is scored as that word (as
    SRILM's -unk does), otherwise kaldingram leaves out each sentence that
    holds one (its ``zeroprobs``, reported as ``skipped_sentences``).

    Returns: ppl, ppl1, logprob, sentences, tokens, oov_tokens, oov_rate
      (OOV tokens / tokens), skipped_sentences.
    """
    with plain_arpa(arpa, work_dir) as plain:
        known = scan_arpa(plain).words - set(SENTENCE_MARKS)
        if vocab is not None:
            known &= vocab
        if oov_word is not None and oov_word not in known:
            logger.warning("the OOV word %s is not in %s: dev sentences with OOV units are left out",
                           oov_word, arpa)
        counter = OovCounter()
        fd, tmp = tempfile.mkstemp(suffix=".txt", dir=work_dir)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                for units in lm_sentences(text, unit, space_symbol, known, oov_word, counter):
                    f.write(" ".join(units) + "\n")
            r = kaldingram_ppl(plain, tmp)
        finally:
            os.unlink(tmp)
    logger.info("dev text %s: %s", text, counter.summary(oov_word))
    return {"ppl": r["ppl"], "ppl1": r["ppl1"], "logprob": r["logprob"], "sentences": counter.utts,
            "tokens": counter.tokens, "oov_tokens": counter.oov_tokens, "oov_rate": counter.rate,
            "skipped_sentences": r["zeroprobs"]}


def format_ppl(stats: Dict[str, float]) -> str:
    """One line ``ppl=45.21 ppl1=60.02 ... oov_rate=0.0210 skipped_sentences=0``."""
    fmt = {"ppl": "{:.2f}", "ppl1": "{:.2f}", "logprob": "{:.4f}", "oov_rate": "{:.4f}"}
    return " ".join(f"{k}=" + fmt.get(k, "{}").format(v) for k, v in stats.items())


def read_ppl_file(path: PathLike) -> Dict[str, float]:
    """Read back a file written with :func:`format_ppl`.

    Raises:
      ValueError: a field that is not ``key=number``, naming the file.
    """
    out = {}
    for item in Path(path).read_text().split():
        key, sep, value = item.partition("=")
        try:
            out[key] = float(value)
        except ValueError:
            raise ValueError(f"{path}: bad field {item!r} (expected key=number)") from None
        if not sep:
            raise ValueError(f"{path}: bad field {item!r} (expected key=number)")
    return out


def arpa_vs_words(info: ArpaInfo, words_path: PathLike) -> Tuple[str, bool]:
    """A log line on the ARPA words missing from ``words_path``, and whether
    there are any."""
    if not info.oov_words:
        return f"all {len(info.words)} ARPA words are in {words_path}", False
    shown = " ".join(info.oov_words[:10]) + (" ..." if len(info.oov_words) > 10 else "")
    return (f"{len(info.oov_words)} of {len(info.words)} ARPA words are not in {words_path} ({shown}); "
            f"n-grams holding them: {format_counts(info.ngrams_with_oov)}"), True
