"""The lang directory: phone and word symbol tables, HMM topology, lexicon FSTs.

:func:`prepare_lang` turns a Kaldi dict dir into a lang dir, as Kaldi's
``utils/prepare_lang.sh --position-dependent-phones false`` does (Povey et
al., 2011, "The Kaldi speech recognition toolkit"; the FST recipe of Mohri,
Pereira and Riley, 2002, "Weighted finite-state transducers in speech
recognition", sec. 4).

Dict dir (input)::

  lexicon.txt           word p1 p2 ...        (several lines = several pronunciations)
  lexiconp.txt          word prob p1 p2 ...   (used instead of lexicon.txt when present)
  silence_phones.txt    phones, any number per line
  nonsilence_phones.txt phones, any number per line
  optional_silence.txt  one silence phone

Lang dir (output)::

  phones.txt            <eps>, the phones (C byte order), then #0 .. #K
  words.txt             <eps>, the words (C byte order), #0, <s>, </s>
  oov.txt, oov.int      the word that stands for words outside the lexicon
  topo                  Kaldi HMM topology (text)
  L.fst, L_disambig.fst lexicon transducers, phones in, words out (OpenFst binary,
                        olabel-sorted)
  lexicon.txt | lexiconp.txt   copy of the dict dir's lexicon
  lexiconp_disambig.txt        word, scaled prob, pronunciation with #1.. appended
  phones/{silence,nonsilence,optional_silence,disambig,context_indep}.{txt,int,csl}
  phones/wdisambig.txt, wdisambig_phones.int, wdisambig_words.int  (#0)

Phones are word-position independent (no _B/_E/_I/_S variants).
"""

from __future__ import annotations

import logging
import math
import os
import re
import shutil
import tempfile
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

from .datadir import PathLike, atomic_open, read_int_list, read_symbol_table, replace_dir

logger = logging.getLogger(__name__)

# Symbols words.txt reserves: they may not be words of the lexicon or of a transcript.
RESERVED_WORDS = ("<eps>", "<s>", "</s>", "#0")
_DISAMBIG_RE = re.compile(r"#\d+$")


def _byte_order(symbols) -> List[str]:
    """Sorted in C-locale (byte) order, as ``LC_ALL=C sort``."""
    return sorted(symbols, key=lambda s: s.encode("utf-8"))


# ------------------------------------------------------------- dict dir
@dataclass
class DictDir:
    """A validated Kaldi dict dir.

    Attributes:
      silence, nonsilence: phones in file order.
      optional_silence: the optional silence phone.
      lexicon: ``(word, prob, phones)`` in file order; ``prob`` is scaled so
        that each word's most likely pronunciation has 1.0.
      lexicon_file: the file the lexicon came from.
    """

    silence: List[str]
    nonsilence: List[str]
    optional_silence: str
    lexicon: List[Tuple[str, float, List[str]]]
    lexicon_file: Path


def _read_phone_file(path: Path, declared: Dict[str, str]) -> List[str]:
    """Phones of ``silence_phones.txt`` or ``nonsilence_phones.txt``; ``declared``
    maps each phone seen so far to its ``file:line``.

    Raises:
      FileNotFoundError: no such file.
      ValueError: a phone declared twice, a disambiguation-like name (#N,
        #anything) or <eps>, or no phone at all, naming file and line.
    """
    phones = []
    for lineno, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        for ph in line.split():
            where = f"{path}:{lineno}"
            if ph.startswith("#") or ph == "<eps>":
                raise ValueError(f"{where}: phone '{ph}' is reserved (#... names disambiguation symbols)")
            if ph in declared:
                raise ValueError(f"{where}: phone '{ph}' is declared twice (also at {declared[ph]})")
            declared[ph] = where
            phones.append(ph)
    if not phones:
        raise ValueError(f"{path}: no phones")
    return phones


def read_lexicon(path: PathLike, with_probs: bool = False,
                 phones: Optional[Sequence[str]] = None) -> List[Tuple[str, float, List[str]]]:
    """Read ``word p1 p2 ...`` (or ``word prob p1 p2 ...`` with ``with_probs``).

    Pronunciation probabilities are scaled per word so that the largest is
    1.0 (Kaldi's convention for lexiconp.txt: the best pronunciation costs
    nothing, the others ``-log(p / p_max)``).

    Args:
      phones: the declared phones; every phone used must be one of them.

    Returns: ``[(word, prob, [phone, ...]), ...]`` in file order.

    Raises:
      ValueError: naming file and line: an empty pronunciation, a reserved
        word (<s>, </s>, #0, <eps>), a probability outside (0, 1], an
        undeclared phone, or the same pronunciation of a word twice.
    """
    declared = set(phones) if phones is not None else None
    entries, first_line = [], {}
    for lineno, line in enumerate(Path(path).read_text(encoding="utf-8").splitlines(), 1):
        parts = line.split()
        if not parts:
            continue
        where = f"{path}:{lineno}"
        word, rest = parts[0], parts[1:]
        if word in RESERVED_WORDS or _DISAMBIG_RE.match(word):
            raise ValueError(f"{where}: word '{word}' is reserved and may not be in the lexicon")
        prob = 1.0
        if with_probs:
            try:
                prob = float(rest[0]) if rest else float("nan")
            except ValueError:
                raise ValueError(f"{where}: word '{word}': pronunciation probability "
                                 f"'{rest[0]}' is not a number") from None
            if not 0.0 < prob <= 1.0:
                raise ValueError(f"{where}: word '{word}': pronunciation probability must be in (0, 1]")
            rest = rest[1:]
        if not rest:
            raise ValueError(f"{where}: word '{word}' has an empty pronunciation")
        if declared is not None:
            for ph in rest:
                if ph not in declared:
                    raise ValueError(f"{where}: word '{word}' uses phone '{ph}', which is not declared "
                                     "in silence_phones.txt or nonsilence_phones.txt")
        key = (word, tuple(rest))
        if key in first_line:
            raise ValueError(f"{where}: word '{word}' has this pronunciation already at {first_line[key]}")
        first_line[key] = where
        entries.append((word, prob, rest))
    if not entries:
        raise ValueError(f"{path}: no lexicon entries")
    best: Dict[str, float] = {}
    for word, prob, _ in entries:
        best[word] = max(best.get(word, 0.0), prob)
    return [(w, p / best[w], pron) for w, p, pron in entries]


def read_dict_dir(dict_dir: PathLike) -> DictDir:
    """Read and validate a Kaldi dict dir (see the module docstring).

    Raises:
      FileNotFoundError: a missing file, naming it.
      ValueError: an invalid entry, naming file and line (see
        :func:`read_lexicon`), or an optional silence that is not exactly one
        silence phone.
    """
    d = Path(dict_dir)
    declared: Dict[str, str] = {}
    silence = _read_phone_file(d / "silence_phones.txt", declared)
    nonsilence = _read_phone_file(d / "nonsilence_phones.txt", declared)
    opt = (d / "optional_silence.txt").read_text(encoding="utf-8").split()
    if len(opt) != 1 or opt[0] not in silence:
        raise ValueError(f"{d}/optional_silence.txt: must hold one phone of silence_phones.txt, got {opt}")
    if (d / "lexiconp.txt").is_file():
        lex_file, with_probs = d / "lexiconp.txt", True
    elif (d / "lexicon.txt").is_file():
        lex_file, with_probs = d / "lexicon.txt", False
    else:
        raise FileNotFoundError(f"{d}: neither lexicon.txt nor lexiconp.txt exists")
    lexicon = read_lexicon(lex_file, with_probs, phones=silence + nonsilence)
    return DictDir(silence, nonsilence, opt[0], lexicon, lex_file)


# --------------------------------------------------- disambiguation, topology
def add_disambig(prons: Sequence[Sequence[str]]) -> Tuple[List[List[str]], int]:
    """Append #1, #2, ... to each pronunciation that is a prefix of another
    one or occurs more than once (homophones), so that L o G is
    determinizable (Mohri et al., 2002, sec. 4.1; Kaldi's
    add_lex_disambig.pl). Equal pronunciations get #1, #2, ... in order;
    a pronunciation that is only a proper prefix of others gets #1.

    Returns: ``(pronunciations with the symbols appended, highest N used)``.
    """
    keys = [tuple(p) for p in prons]
    count = Counter(keys)
    prefixes = {k[:i] for k in keys for i in range(1, len(k))}
    used: Counter = Counter()
    out = []
    for k in keys:
        if count[k] > 1 or k in prefixes:
            used[k] += 1
            out.append(list(k) + [f"#{used[k]}"])
        else:
            out.append(list(k))
    return out, max(used.values(), default=0)


def topology_text(phone_ids: Sequence[int], num_states: int) -> str:
    """Kaldi topology: a left-to-right HMM of ``num_states`` emitting states
    (self-loop 0.75, forward 0.25) plus a final non-emitting state, shared by
    ``phone_ids``."""
    lines = ["<Topology>", "<TopologyEntry>", "<ForPhones>", " ".join(map(str, phone_ids)), "</ForPhones>"]
    for s in range(num_states):
        lines.append(f"<State> {s} <PdfClass> {s} <Transition> {s} 0.75 <Transition> {s + 1} 0.25 </State>")
    lines += [f"<State> {num_states} </State>", "</TopologyEntry>", "</Topology>"]
    return "\n".join(lines) + "\n"


def make_topology(sil_ids: Sequence[int], nonsil_ids: Sequence[int], num_sil_states: int,
                  num_nonsil_states: int) -> str:
    """Topology text for silence and non-silence phones.

    Both are plain left-to-right HMMs (:func:`topology_text`). Kaldi gives
    silence phones a more connected topology (every one of the first
    ``num_sil_states - 1`` states may jump to any of them); a left-to-right
    one is used here for simplicity.
    """
    if num_sil_states == num_nonsil_states:
        return topology_text(sorted(list(sil_ids) + list(nonsil_ids)), num_nonsil_states)
    nonsil = topology_text(nonsil_ids, num_nonsil_states).splitlines()
    sil = topology_text(sil_ids, num_sil_states).splitlines()
    return "\n".join(nonsil[:-1] + sil[1:-1] + nonsil[-1:]) + "\n"


# ------------------------------------------------------------ lexicon FST
def make_lexicon_fst(lexicon: Sequence[Tuple[str, float, Sequence[str]]], phone2id: Dict[str, int],
                     word2id: Dict[str, int], sil_prob: float = 0.0, sil_phone: Optional[str] = None,
                     sil_disambig: Optional[str] = None, word_disambig: Optional[str] = None):
    """Lexicon transducer L: phones in, words out (Kaldi's make_lexicon_fst.py).

    With ``sil_prob == 0``: one state, start and final; each pronunciation is
    a path from it back to it whose first arc outputs the word.

    With ``0 < sil_prob < 1`` (optional silence between words): a start
    state, a loop state (final) and a silence state. The start state goes to
    the loop state with cost ``-log(1 - sil_prob)`` and to the silence state
    with cost ``-log(sil_prob)`` (optional silence before the first word);
    the silence state goes to the loop state through ``sil_phone`` (and then
    ``sil_disambig``, when given: the arc that keeps a word pronounced as
    the silence phone apart from the optional silence in L_disambig). Each
    pronunciation starts in the loop state and its last phone has two arcs:
    to the loop state with cost ``-log(1 - sil_prob)`` and to the silence
    state with cost ``-log(sil_prob)``. The silence arc itself is free, so
    the two ways out of a word have probabilities summing to 1 (as in
    Kaldi's make_lexicon_fst.pl; its Python rewrite, make_lexicon_fst.py,
    charges ``-log(sil_prob)`` a second time on the silence phone).

    The first arc of a pronunciation carries the word and the pronunciation
    cost ``-log(prob)`` (natural log, tropical semiring).

    Args:
      lexicon: ``(word, prob, symbols)``; symbols may end in #N (L_disambig).
      word_disambig: a symbol (#0) that gets a ``#0:#0`` self-loop on each
        final state and each state with a word-emitting arc (Kaldi's
        fstaddselfloops), so that G's backoff symbol passes through L.

    Returns: ``kaldifst.StdVectorFst``, olabel-sorted.

    Raises:
      ValueError: ``sil_prob`` outside [0, 1), or no ``sil_phone`` with it.
    """
    import kaldifst

    if not 0.0 <= sil_prob < 1.0:
        raise ValueError(f"sil_prob must be in [0, 1), got {sil_prob}")
    if sil_prob > 0 and sil_phone is None:
        raise ValueError("sil_prob > 0 needs a silence phone")
    fst = kaldifst.StdVectorFst()
    start = fst.add_state()
    fst.start = start
    if sil_prob == 0:
        loop, ends = start, [(start, 0.0)]
    else:
        no_sil_cost, sil_cost = -math.log(1.0 - sil_prob), -math.log(sil_prob)
        loop, sil = fst.add_state(), fst.add_state()
        ends = [(loop, no_sil_cost), (sil, sil_cost)]
        fst.add_arc(start, kaldifst.StdArc(0, 0, no_sil_cost, loop))
        fst.add_arc(start, kaldifst.StdArc(0, 0, sil_cost, sil))
        if sil_disambig is None:
            fst.add_arc(sil, kaldifst.StdArc(phone2id[sil_phone], 0, 0.0, loop))
        else:
            mid = fst.add_state()
            fst.add_arc(sil, kaldifst.StdArc(phone2id[sil_phone], 0, 0.0, mid))
            fst.add_arc(mid, kaldifst.StdArc(phone2id[sil_disambig], 0, 0.0, loop))
    fst.set_final(loop, 0.0)
    for word, prob, pron in lexicon:
        src, cost = loop, -math.log(prob)
        for i, ph in enumerate(pron):
            olabel, w = (word2id[word], cost) if i == 0 else (0, 0.0)
            if i < len(pron) - 1:
                dst = fst.add_state()
                fst.add_arc(src, kaldifst.StdArc(phone2id[ph], olabel, w, dst))
                src = dst
            else:
                for dst, end_cost in ends:
                    fst.add_arc(src, kaldifst.StdArc(phone2id[ph], olabel, w + end_cost, dst))
    if word_disambig is not None:
        _add_disambig_self_loops(fst, phone2id[word_disambig], word2id[word_disambig])
    kaldifst.arcsort(fst, sort_type="olabel")
    return fst


def _add_disambig_self_loops(fst, ilabel: int, olabel: int) -> None:
    """``ilabel:olabel`` self-loops on final states and states with a
    non-epsilon output arc (Kaldi's fstaddselfloops)."""
    import kaldifst

    targets = []
    for s in kaldifst.StateIterator(fst):
        final = fst.final(s).value != float("inf")
        if final or any(a.olabel != 0 for a in kaldifst.ArcIterator(fst, s)):
            targets.append(s)
    for s in targets:
        fst.add_arc(s, kaldifst.StdArc(ilabel, olabel, 0.0, s))


# ------------------------------------------------------------ writing
def _write_symbols(path: Path, symbols: Sequence[str]) -> None:
    with atomic_open(path) as f:
        for i, s in enumerate(symbols):
            f.write(f"{s} {i}\n")


def _write_phone_set(phones_dir: Path, name: str, phones: Sequence[str], phone2id: Dict[str, int]) -> None:
    """``phones/<name>.{txt,int,csl}`` as Kaldi's prepare_lang.sh writes them."""
    ids = [str(phone2id[p]) for p in phones]
    (phones_dir / f"{name}.txt").write_text("".join(p + "\n" for p in phones), encoding="utf-8")
    (phones_dir / f"{name}.int").write_text("".join(i + "\n" for i in ids))
    (phones_dir / f"{name}.csl").write_text(":".join(ids) + "\n")


def prepare_lang(dict_dir: PathLike, lang_dir: PathLike, oov_word: Optional[str], sil_prob: float = 0.5,
                 num_sil_states: int = 5, num_nonsil_states: int = 3,
                 tmp_dir: Optional[PathLike] = None) -> Dict[str, int]:
    """Build a lang dir (see the module docstring) from a Kaldi dict dir.

    Disambiguation symbols: #0 is G's backoff symbol (a ``#0:#0`` self-loop
    in L_disambig), #1 .. #N mark prefix and duplicate pronunciations
    (:func:`add_disambig`), and with ``sil_prob > 0`` one more, #(N+1), follows
    the optional silence in L_disambig, as Kaldi's prepare_lang.sh does.

    Args:
      oov_word: a lexicon word that stands for out-of-vocabulary words
        (Kaldi's <oov-word>, e.g. ``<unk>``, or ``sil`` for a phone
        recogniser); None writes no oov.txt.
      sil_prob: probability of optional silence after each word (and before
        the first), in [0, 1); 0 gives no optional silence.
      num_sil_states, num_nonsil_states: emitting HMM states of silence and
        non-silence phones.
      tmp_dir: where to keep the intermediate lexicons (lexiconp.txt,
        lexiconp_disambig.txt, lex_ndisambig), as Kaldi's <tmp-dir>.

    Returns: counts ``{"phones", "words", "prons", "disambig"}`` (disambig =
      the highest #N).

    Raises:
      FileNotFoundError, ValueError: from :func:`read_dict_dir`; the OOV word
        not in the lexicon; a bad sil_prob or state count. The old lang dir
        is then untouched.
    """
    if not 0.0 <= sil_prob < 1.0:
        raise ValueError(f"sil_prob must be in [0, 1), got {sil_prob}")
    if num_sil_states < 1 or num_nonsil_states < 1:
        raise ValueError("num_sil_states and num_nonsil_states must be positive")
    d = read_dict_dir(dict_dir)
    lexicon_words = {w for w, _, _ in d.lexicon}
    if oov_word is not None and oov_word not in lexicon_words:
        raise ValueError(f"{d.lexicon_file}: the OOV word '{oov_word}' is not in the lexicon")
    prons_disambig, max_disambig = add_disambig([p for _, _, p in d.lexicon])
    lex_disambig = [(w, p, pron) for (w, p, _), pron in zip(d.lexicon, prons_disambig)]
    num_disambig = max_disambig + (1 if sil_prob > 0 else 0)
    disambig = [f"#{i}" for i in range(num_disambig + 1)]
    phones = ["<eps>"] + _byte_order(d.silence + d.nonsilence) + disambig
    words = ["<eps>"] + _byte_order(lexicon_words) + ["#0", "<s>", "</s>"]
    phone2id = {p: i for i, p in enumerate(phones)}
    word2id = {w: i for i, w in enumerate(words)}

    lang_dir = Path(lang_dir)
    lang_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=lang_dir.parent, prefix=lang_dir.name + ".tmp."))
    umask = os.umask(0)
    os.umask(umask)
    tmp.chmod(0o777 & ~umask)  # mkdtemp makes it 0700
    try:
        lex_lines = ["".join(f"{w} {p:g} {' '.join(pron)}\n" for w, p, pron in lex)
                     for lex in (d.lexicon, lex_disambig)]
        if tmp_dir is not None:
            Path(tmp_dir).mkdir(parents=True, exist_ok=True)
            for name, text in zip(("lexiconp.txt", "lexiconp_disambig.txt"), lex_lines):
                (Path(tmp_dir) / name).write_text(text, encoding="utf-8")
            (Path(tmp_dir) / "lex_ndisambig").write_text(f"{num_disambig}\n")
        (tmp / "lexiconp_disambig.txt").write_text(lex_lines[1], encoding="utf-8")
        shutil.copy(d.lexicon_file, tmp / d.lexicon_file.name)
        _write_symbols(tmp / "phones.txt", phones)
        _write_symbols(tmp / "words.txt", words)
        if oov_word is not None:
            (tmp / "oov.txt").write_text(oov_word + "\n", encoding="utf-8")
            (tmp / "oov.int").write_text(f"{word2id[oov_word]}\n")
        pdir = tmp / "phones"
        pdir.mkdir()
        sets = {"silence": d.silence, "nonsilence": d.nonsilence, "optional_silence": [d.optional_silence],
                "disambig": disambig, "context_indep": d.silence}
        for name, members in sets.items():
            _write_phone_set(pdir, name, members, phone2id)
        (pdir / "wdisambig.txt").write_text("#0\n")
        (pdir / "wdisambig_phones.int").write_text(f"{phone2id['#0']}\n")
        (pdir / "wdisambig_words.int").write_text(f"{word2id['#0']}\n")
        (tmp / "topo").write_text(make_topology(sorted(phone2id[p] for p in d.silence),
                                                sorted(phone2id[p] for p in d.nonsilence),
                                                num_sil_states, num_nonsil_states))
        sil = dict(sil_prob=sil_prob, sil_phone=d.optional_silence)
        make_lexicon_fst(d.lexicon, phone2id, word2id, **sil).write(str(tmp / "L.fst"))
        sil_disambig = disambig[-1] if sil_prob > 0 else None
        make_lexicon_fst(lex_disambig, phone2id, word2id, sil_disambig=sil_disambig, word_disambig="#0",
                         **sil).write(str(tmp / "L_disambig.fst"))
        replace_dir(tmp, lang_dir)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return {"phones": len(d.silence) + len(d.nonsilence), "words": len(lexicon_words),
            "prons": len(d.lexicon), "disambig": num_disambig}


# ------------------------------------------------------------ reading
@dataclass
class OovCounter:
    """Counts of out-of-vocabulary tokens over the utterances seen.

    Attributes: tokens, utts (all seen), oov_tokens, oov_utts (utterances
    with at least one OOV), words (``Counter`` of the OOV words).
    """

    tokens: int = 0
    utts: int = 0
    oov_tokens: int = 0
    oov_utts: int = 0
    words: Counter = field(default_factory=Counter)

    def add(self, num_tokens: int, oovs: Sequence[str]) -> None:
        """Record one utterance of ``num_tokens`` tokens with OOV tokens ``oovs``."""
        self.tokens += num_tokens
        self.utts += 1
        if oovs:
            self.oov_tokens += len(oovs)
            self.oov_utts += 1
            self.words.update(oovs)

    @property
    def rate(self) -> float:
        """OOV tokens / tokens (0 when nothing was seen)."""
        return self.oov_tokens / self.tokens if self.tokens else 0.0

    def summary(self, mapped_to: Optional[str] = None, top: int = 5) -> str:
        """E.g. ``3 OOV tokens (1.50% of 200) in 2 of 10 utterances, mapped to
        <unk>; most frequent: foo (2), bar (1)``."""
        s = (f"{self.oov_tokens} OOV tokens ({100 * self.rate:.2f}% of {self.tokens}) "
             f"in {self.oov_utts} of {self.utts} utterances")
        if mapped_to is not None and self.oov_tokens:
            s += f", mapped to {mapped_to}"
        if self.words:
            s += "; most frequent: " + ", ".join(f"{w} ({n})" for w, n in self.words.most_common(top))
        return s


class Lang:
    """A lang dir loaded for training and decoding.

    Attributes: dir, phone2id, id2phone, word2id, id2word, silence_ids (list
    of int), disambig_ids (list of int), oov_word and oov_id (None for a lang
    dir without oov.txt), oov (:class:`OovCounter` over every
    :meth:`words_to_ids` call).
    """

    def __init__(self, lang_dir: PathLike):
        self.dir = Path(lang_dir)
        for f in ("phones.txt", "words.txt", "topo", "L.fst", "phones/silence.csl", "phones/disambig.int"):
            if not (self.dir / f).is_file():
                raise FileNotFoundError(f"{self.dir}/{f}: missing (run prepare_lang first)")
        self.phone2id = read_symbol_table(self.dir / "phones.txt")
        self.id2phone = {i: p for p, i in self.phone2id.items()}
        self.word2id = read_symbol_table(self.dir / "words.txt")
        self.id2word = {i: w for w, i in self.word2id.items()}
        self.silence_ids = [int(x) for x in (self.dir / "phones/silence.csl").read_text().strip().split(":")]
        self.disambig_ids = read_int_list(self.dir / "phones/disambig.int")
        self.oov_word: Optional[str] = None
        self.oov_id: Optional[int] = None
        if (self.dir / "oov.txt").is_file():
            self.oov_word = (self.dir / "oov.txt").read_text(encoding="utf-8").strip()
            if self.oov_word not in self.word2id:
                raise ValueError(f"{self.dir}/oov.txt: '{self.oov_word}' is not in {self.dir}/words.txt")
            self.oov_id = self.word2id[self.oov_word]
        self.oov = OovCounter()

    def topology(self):
        """The HMM topology (``kaldi_hmm_gmm.HmmTopology``)."""
        import kaldi_hmm_gmm as khg

        topo = khg.HmmTopology()
        topo.read((self.dir / "topo").read_text())
        return topo

    def lexicon_fst(self, disambig: bool = False):
        """L.fst, or L_disambig.fst with ``disambig`` (``kaldifst.StdVectorFst``)."""
        import kaldifst

        return kaldifst.StdVectorFst.read(str(self.dir / ("L_disambig.fst" if disambig else "L.fst")))

    def words_to_ids(self, words: Sequence[str], utt: str = "?") -> List[int]:
        """Map a transcript to word ids; a word not in words.txt becomes the
        OOV word when the lang dir has one. Every call is counted in
        :attr:`oov`; report with :meth:`oov_summary`.

        Raises:
          KeyError: naming the utterance and word: a word not in words.txt
            and no OOV word, or a reserved symbol (<eps>, #0, <s>, </s>).
        """
        ids, oovs = [], []
        for w in words:
            if w in RESERVED_WORDS:
                raise KeyError(f"utterance {utt}: {w!r} is a reserved symbol, not a word")
            i = self.word2id.get(w)
            if i is None:
                if self.oov_id is None:
                    raise KeyError(f"utterance {utt}: word {w!r} is not in {self.dir}/words.txt "
                                   f"and the lang dir has no oov.txt")
                i = self.oov_id
                oovs.append(w)
            ids.append(i)
        self.oov.add(len(ids), oovs)
        return ids

    def oov_summary(self) -> str:
        """E.g. ``5 OOV tokens (0.50% of 1000) in 4 of 100 utterances, mapped to <unk>; ...``."""
        return self.oov.summary(self.oov_word)
