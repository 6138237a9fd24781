"""Decoding CTC outputs: greedy best path, and beam search with an n-gram LM.

Input, per utterance: a ``(T', V)`` matrix of log-softmax outputs (natural
log; T' frames after the encoder's subsampling) over the units of a
``units.txt`` symbol table (``<unit> <id>``, ids 0 .. V-1), id 0 being the
CTC blank ``<blk>``. Units are phones, letters (with a word-separator unit
such as ``<space>`` or ``|``) or sentencepiece pieces (mtlasr.pieces).

CTC (Graves et al., ICML 2006, sec. 3.1) maps a frame-level path to a label
sequence by merging repeated units, then removing blanks (their map B);
"a a <blk> a b" -> "a a b".

* Greedy (their best-path decoding, sec. 3.2): the argmax unit of each
  frame, then B.
* Beam search (flashlight-text's decoders, those of wav2letter++: Pratap
  et al., "wav2letter++: the fastest open-source speech recognition
  system", ICASSP 2019; the lexicon and word-LM beam search of Collobert et
  al., "Wav2Letter", arXiv 2016, and Liptchinsky et al., "Letter-based
  speech recognition with gated ConvNets", arXiv 2017): a frame-synchronous
  search over CTC paths that keeps ``beam`` hypotheses per frame (those
  within ``beam_threshold`` of the best), extends each by the
  ``beam_size_token`` most likely units of the frame, and merges
  hypotheses with the same LM state and last unit
  (max, not log-add: a Viterbi approximation of the CTC sum). A hypothesis
  W is ranked by

      score(W) = ln p_CTC-path(W|X) + lm_weight * ln P_LM(W) + insertion_score * |W|

  every term in natural-log units: ``lm_weight`` multiplies the natural
  log of the LM probability (KenLM works in log10; this module scales
  flashlight's weight by ln 10, so weights mean what the LM weights of
  Kaldi-style decoding mean). ``|W|`` counts words in lexicon mode and
  units in lexicon-free mode; a positive insertion score is a bonus, a
  negative one a penalty. ``P_LM`` includes the end of sentence.

  - Lexicon-free mode (a unit LM: phones, letters or pieces): every unit is
    scored by the LM. The LM must be an n-gram over the *same* units:
    flashlight's KenLM maps unit ids to LM words through the dictionary it
    is given, and a unit the LM does not know is silently scored as
    ``<unk>`` (given the wrong dictionary, *every* unit is). So the units
    are checked against the ARPA's unigrams (a few may be let through, see
    ``allow_missing_units``, never all), and flashlight's unigram score of
    each unit is checked against the ARPA (:class:`CtcBeamSearch` raises
    ValueError otherwise). The unit insertion score has no slot in
    flashlight's lexicon-free decoder; it is added to each LM call by a
    thin Python LM wrapper, exact but 5-10x slower (a Python call per LM
    query): only settings with a non-zero unit insertion score pay for it.
  - Lexicon mode (a word LM): a lexicon (Kaldi ``lexicon.txt``: ``word u1 u2
    ...``, several lines per word allowed) spells words in units; a trie of
    the spellings constrains the search to lexicon words, and the LM scores
    whole words (with its unigram scores smeared over the trie, max, as a
    look-ahead; the sum of the look-ahead increments telescopes to the true
    word score). The insertion score is added per word.

  The word separator (``word_sep``, flashlight's "silence" token), when
  given, is a unit between words: in lexicon mode it may be emitted between
  words without being scored, and ``sil_score`` is added on each frame
  emitting it (in both modes). Without one (phones, pieces), the blank
  plays that role and ``sil_score`` must be 0.

Errors: malformed inputs raise ValueError naming the file and line, or the
utterance.
"""

from __future__ import annotations

import contextlib
import logging
import math
from dataclasses import dataclass
from typing import Dict, Iterator, List, Optional, Sequence, Tuple

import numpy as np

from .datadir import PathLike
from .pieces import WORD_START, pieces_to_words

logger = logging.getLogger(__name__)

LN10 = math.log(10.0)
JOIN_MODES = ("auto", "none", "sep", "pieces")
_NORM_TOL = 1e-2  # |logsumexp of a row| above this: not log-probabilities


# ------------------------------------------------------------------ inputs
def read_lexicon(path: PathLike, units: Sequence[str]) -> List[Tuple[str, List[int]]]:
    """The (word, unit ids) pairs of a Kaldi ``lexicon.txt`` (``word u1 u2 ...``).

    Raises:
      ValueError: a word without units, or a unit not in ``units`` (or the
        blank), naming file and line; an empty lexicon.
    """
    index = {u: i for i, u in enumerate(units)}
    out: List[Tuple[str, List[int]]] = []
    with open(path, encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            parts = line.split()
            if not parts:
                continue
            if len(parts) < 2:
                raise ValueError(f"{path}:{lineno}: word '{parts[0]}' has no units")
            for u in parts[1:]:
                if u not in index or index[u] == 0:
                    raise ValueError(f"{path}:{lineno}: unit '{u}' of word '{parts[0]}' is not a "
                                     f"non-blank unit of units.txt")
            out.append((parts[0], [index[u] for u in parts[1:]]))
    if not out:
        raise ValueError(f"{path}: empty lexicon")
    return out


def read_arpa_unigrams(path: PathLike) -> Dict[str, float]:
    """word -> log10 probability of the ``\\1-grams:`` section of an ARPA
    file (read up to the next section; gzipped files too).

    Raises:
      ValueError: no 1-gram section, or a malformed 1-gram line (file and line).
    """
    from .lm import open_text

    out: Dict[str, float] = {}
    inside = False
    with open_text(path) as f:
        for lineno, line in enumerate(f, 1):
            line = line.strip()
            if not inside:
                inside = line == "\\1-grams:"
                continue
            if not line:
                continue
            if line.startswith("\\"):
                break
            parts = line.split()
            try:
                out[parts[1]] = float(parts[0])
            except (IndexError, ValueError):
                raise ValueError(f"{path}:{lineno}: malformed 1-gram line {line!r}") from None
    if not out:
        raise ValueError(f"{path}: no \\1-grams: section (not an ARPA file?)")
    return out


def check_logprobs(m, num_units: int, utt: str) -> np.ndarray:
    """A ``(T', V)`` float32 C-contiguous copy of one utterance's CTC outputs.

    Raises:
      ValueError (naming ``utt``): not 2-D, V not the number of units, a
        non-finite value, or rows that are not log-probabilities (log-sum-exp
        off 0 by more than 0.01: logits or scaled scores, not log-softmax).
    """
    a = np.ascontiguousarray(m, dtype=np.float32)
    if a.ndim != 2 or a.shape[1] != num_units:
        raise ValueError(f"utterance {utt}: log-probabilities of shape {a.shape}, expected (frames, "
                         f"{num_units}) for the {num_units} units")
    if a.size and not np.isfinite(a).all():
        raise ValueError(f"utterance {utt}: non-finite log-probabilities")
    if a.size:
        lse = np.logaddexp.reduce(a.astype(np.float64), axis=1)
        worst = int(np.argmax(np.abs(lse)))
        if abs(lse[worst]) > _NORM_TOL:
            raise ValueError(f"utterance {utt}: frame {worst} is not a log-probability distribution "
                             f"(log-sum-exp {lse[worst]:.3g}; expected log-softmax outputs)")
    return a


# ------------------------------------------------------------------ outputs
def ctc_collapse(path: Sequence[int], blank: int = 0, first: Optional[int] = None) -> List[int]:
    """Graves et al.'s map B: merge repeated units, then drop blanks.

    Args:
      path: unit id per frame.
      first: a unit taken as emitted just before frame 0 (flashlight starts
        a path from its silence token; a repeat of it is not a new unit).
    """
    out: List[int] = []
    prev = blank if first is None else first
    for u in path:
        u = int(u)
        if u != blank and u != prev:
            out.append(u)
        prev = u
    return out


def join_mode(units: Sequence[str], mode: str, word_sep: Optional[str]) -> str:
    """Resolve ``auto``: ``pieces`` when a unit starts with U+2581
    (sentencepiece), ``sep`` when there is a word separator, else ``none``.

    Raises: ValueError for an unknown mode, or ``sep`` without a separator.
    """
    if mode not in JOIN_MODES:
        raise ValueError(f"join mode must be one of {', '.join(JOIN_MODES)}, got '{mode}'")
    if mode == "auto":
        if any(u.startswith(WORD_START) for u in units):
            return "pieces"
        return "sep" if word_sep else "none"
    if mode == "sep" and not word_sep:
        raise ValueError("joining units at a word separator needs the separator unit")
    return mode


def units_to_words(units: Sequence[str], mode: str, word_sep: Optional[str] = None) -> List[str]:
    """The tokens of a hypothesis transcript from its units.

    Modes: ``none`` the units themselves (phones); ``sep`` units between
    separators joined into words (letters: ``c a t <space> s a t`` -> ``cat
    sat``); ``pieces`` sentencepiece pieces joined at U+2581.
    """
    if mode == "none":
        return list(units)
    if mode == "pieces":
        return pieces_to_words(units)
    if mode != "sep":
        raise ValueError(f"join mode must be none, sep or pieces here, got '{mode}'")
    words, cur = [], []
    for u in units:
        if u == word_sep:
            if cur:
                words.append("".join(cur))
            cur = []
        else:
            cur.append(u)
    if cur:
        words.append("".join(cur))
    return words


@dataclass
class Hypothesis:
    """The best hypothesis of one utterance.

    Attributes:
      units: unit ids (after B: no blanks, repeats merged).
      words: the words found (lexicon mode); None in lexicon-free and
        greedy decoding (use :func:`units_to_words`).
      score: the total search score (natural log), see the module doc.
      am_score: ln p of the best CTC path (sum of its frames' log-probabilities).
      lm_score: ln P_LM of the hypothesis, end of sentence included (0 without LM).
    """

    units: List[int]
    words: Optional[List[str]]
    score: float
    am_score: float
    lm_score: float


def greedy_decode(logprobs: np.ndarray) -> Hypothesis:
    """Best-path decoding: the argmax unit of each frame, then B.

    Args: logprobs ``(T', V)``; blank = unit 0. Ties go to the lower unit id.
    """
    if logprobs.shape[0] == 0:
        return Hypothesis([], None, 0.0, 0.0, 0.0)
    best = np.argmax(logprobs, axis=1)
    am = float(logprobs[np.arange(len(best)), best].astype(np.float64).sum())
    return Hypothesis(ctc_collapse(best), None, am, am, 0.0)


# ------------------------------------------------------------------ beam search
@dataclass(frozen=True)
class BeamOptions:
    """Search options that do not change with the LM weight and insertion score.

    Attributes:
      beam: hypotheses kept per frame (flashlight's beam_size).
      beam_threshold: hypotheses more than this (natural log) below the best are pruned.
      beam_size_token: units tried per frame, the most likely first (0: all).
      sil_score: added on each frame that emits the word separator (0 without one).
      word_sep: the word-separator unit (letters: ``<space>`` or ``|``), or None.
    """

    beam: int
    beam_threshold: float
    beam_size_token: int = 0
    sil_score: float = 0.0
    word_sep: Optional[str] = None


_INSERTION_LM = None


def _insertion_lm_class():
    """A flashlight LM that adds a constant to every score of another LM
    (defined on first use, so flashlight is imported only when needed)."""
    global _INSERTION_LM
    if _INSERTION_LM is None:
        from flashlight.lib.text.decoder import LM

        class InsertionLM(LM):
            def __init__(self, base, bonus: float):
                LM.__init__(self)
                self.base, self.bonus = base, bonus

            def start(self, start_with_nothing):
                return self.base.start(start_with_nothing)

            def score(self, state, token):
                new, s = self.base.score(state, token)
                return new, s + self.bonus

            def finish(self, state):
                return self.base.finish(state)

        _INSERTION_LM = InsertionLM
    return _INSERTION_LM


@contextlib.contextmanager
def _plain(path: PathLike) -> Iterator[str]:
    from .lm import plain_arpa

    with plain_arpa(path) as p:
        yield p


class CtcBeamSearch:
    """Beam search over CTC outputs with flashlight-text, with or without an LM.

    Args:
      units: the units in id order (:func:`read_units`), ``units[0]`` the blank.
      options: :class:`BeamOptions`.
      arpa: an ARPA n-gram LM (plain or gzipped), or None (no LM).
      lexicon: (word, unit ids) pairs (:func:`read_lexicon`) for lexicon
        mode, or None for lexicon-free mode. With an LM, lexicon mode wants
        a word LM and lexicon-free mode a unit LM.
      allow_missing_units: in lexicon-free mode, accept an LM that lacks
        some (not all) units, which KenLM then scores as ``<unk>``: BPE
        units that only occur inside longer merges never reach the LM's
        training text (nor the acoustic model's targets).

    Raises:
      ValueError: the word separator is not a unit; a non-zero sil_score
        without one; an LM that lacks some units (lexicon-free; all of them
        even with ``allow_missing_units``) or knows none of the lexicon's words (lexicon mode), or whose scores inside
        flashlight differ from the ARPA (a dictionary mismatch); a bad
        beam option.
    """

    def __init__(self, units: Sequence[str], options: BeamOptions, arpa: Optional[PathLike] = None,
                 lexicon: Optional[Sequence[Tuple[str, List[int]]]] = None, allow_missing_units: bool = False):
        from flashlight.lib.text.decoder import SmearingMode, Trie, ZeroLM
        from flashlight.lib.text.dictionary import Dictionary

        self.units = list(units)
        self.opts = options
        self.num_units = len(self.units)
        if options.beam < 1 or options.beam_threshold <= 0 or options.beam_size_token < 0:
            raise ValueError(f"beam must be >= 1, beam threshold > 0 and beam size per token >= 0; got "
                             f"{options.beam}, {options.beam_threshold}, {options.beam_size_token}")
        if options.word_sep is not None:
            if options.word_sep not in self.units[1:]:
                raise ValueError(f"the word separator '{options.word_sep}' is not a (non-blank) unit")
            self.sil = self.units.index(options.word_sep)
        else:
            if options.sil_score != 0:
                raise ValueError("a separator score (sil_score) needs a word separator unit")
            self.sil = 0
        self.lexicon_mode = lexicon is not None
        self.arpa = None if arpa is None else str(arpa)
        self.allow_missing_units = allow_missing_units
        self.kenlm = None
        self._decoders: Dict[Tuple[float, float], object] = {}
        if self.lexicon_mode:
            self.lex_words = list(dict.fromkeys(w for w, _ in lexicon))
            self.words = self.lex_words + ([] if "<unk>" in self.lex_words else ["<unk>"])
            self.word_index = {w: i for i, w in enumerate(self.words)}
            self.lm_dict = Dictionary(self.words)
            self.unk = self.word_index["<unk>"]
        else:
            self.lm_dict = Dictionary(self.units)
        if arpa is not None:
            self.kenlm = self._load_lm(arpa)
        base = self.kenlm if self.kenlm is not None else ZeroLM()
        self.trie = None
        if self.lexicon_mode:
            self.trie = Trie(self.num_units, self.sil)
            start = base.start(True)
            for w, ids in lexicon:
                wi = self.word_index[w]
                self.trie.insert(ids, wi, base.score(start, wi)[1])
            self.trie.smear(SmearingMode.MAX)

    # -------------------------------------------------------- the LM and its checks
    def _load_lm(self, arpa: PathLike):
        from flashlight.lib.text.decoder.kenlm import KenLM

        unigrams = read_arpa_unigrams(arpa)
        entries = self.words if self.lexicon_mode else self.units[1:]
        if self.lexicon_mode:
            lex_words = self.lex_words
            missing = [w for w in lex_words if w not in unigrams]
            if len(missing) == len(lex_words):
                raise ValueError(f"the LM {arpa} knows none of the lexicon's {len(lex_words)} words "
                                 f"(e.g. {', '.join(lex_words[:5])}): lexicon decoding needs a word LM")
            if missing:
                logger.warning("%d of the lexicon's %d words are not in the LM %s (%s%s): KenLM scores "
                               "them as <unk>", len(missing), len(lex_words), arpa,
                               " ".join(missing[:10]), " ..." if len(missing) > 10 else "")
        else:
            missing = [u for u in entries if u not in unigrams and u != "<unk>"]
            shown = f"{' '.join(missing[:10])}{' ...' if len(missing) > 10 else ''}"
            if missing and (not self.allow_missing_units or len(missing) == len(entries)):
                raise ValueError(
                    f"the LM {arpa} lacks {len(missing)} of the {len(entries)} non-blank units ({shown}): "
                    f"lexicon-free decoding needs an LM over the same units as units.txt (KenLM would "
                    f"silently score them as <unk>); for a word LM give a lexicon; if a few units never "
                    f"occur in any text (BPE merge intermediates), allow missing units")
            if missing:
                logger.warning("%d of the %d non-blank units are not in the LM %s (%s): KenLM scores them "
                               "as <unk>", len(missing), len(entries), arpa, shown)
        with _plain(arpa) as plain:
            try:
                lm = KenLM(plain, self.lm_dict)
            except RuntimeError as e:  # e.g. a unigram LM: KenLM wants order >= 2
                raise ValueError(f"KenLM cannot load {arpa}: {str(e).strip().splitlines()[-1]}") from None
        check_lm_dictionary(lm, self.words if self.lexicon_mode else self.units, unigrams, arpa)
        return lm

    def lm_score(self, tokens: Sequence[int]) -> float:
        """ln P_LM of a sequence of LM tokens (unit ids in lexicon-free mode,
        word-dictionary ids in lexicon mode), ``<s>`` and ``</s>`` included;
        0 without an LM."""
        if self.kenlm is None:
            return 0.0
        state, total = self.kenlm.start(False), 0.0
        for t in tokens:
            state, s = self.kenlm.score(state, int(t))
            total += s
        return (total + self.kenlm.finish(state)[1]) * LN10

    # -------------------------------------------------------- decoding
    def _decoder(self, lm_weight: float, insertion_score: float):
        from flashlight.lib.text.decoder import (CriterionType, LexiconDecoder, LexiconDecoderOptions,
                                                 LexiconFreeDecoder, LexiconFreeDecoderOptions, ZeroLM)

        key = (float(lm_weight), float(insertion_score))
        if key in self._decoders:
            return self._decoders[key]
        if lm_weight < 0:
            raise ValueError(f"the LM weight must be >= 0, got {lm_weight}")
        token_beam = self.opts.beam_size_token or self.num_units
        base = self.kenlm if self.kenlm is not None else ZeroLM()
        fl_weight = lm_weight * LN10
        bonus = 0.0
        if self.lexicon_mode:
            opts = LexiconDecoderOptions(
                beam_size=self.opts.beam, beam_size_token=token_beam, beam_threshold=self.opts.beam_threshold,
                lm_weight=fl_weight, word_score=insertion_score, unk_score=float("-inf"),
                sil_score=self.opts.sil_score, log_add=False, criterion_type=CriterionType.CTC)
            dec = LexiconDecoder(opts, self.trie, base, self.sil, 0, self.unk, [], False)
            lm = base
        else:
            lm = base
            if insertion_score != 0:
                if fl_weight > 0:
                    bonus = insertion_score / fl_weight       # times fl_weight: insertion_score per unit
                else:
                    lm, fl_weight, bonus = ZeroLM(), 1.0, insertion_score
                lm = _insertion_lm_class()(lm, bonus)
            opts = LexiconFreeDecoderOptions(
                beam_size=self.opts.beam, beam_size_token=token_beam, beam_threshold=self.opts.beam_threshold,
                lm_weight=fl_weight, sil_score=self.opts.sil_score, log_add=False,
                criterion_type=CriterionType.CTC)
            dec = LexiconFreeDecoder(opts, lm, self.sil, 0, [])
        # The decoder keeps a pointer to the LM: keep the LM alive with it.
        self._decoders[key] = (dec, lm, fl_weight, bonus)
        return self._decoders[key]

    def decode(self, logprobs: np.ndarray, lm_weight: float, insertion_score: float) -> Hypothesis:
        """The best hypothesis for one utterance.

        Args:
          logprobs: ``(T', V)`` float32 log-softmax outputs (:func:`check_logprobs`).
          lm_weight: weight of ln P_LM (>= 0; ignored without an LM).
          insertion_score: added per word (lexicon mode) or unit (lexicon-free).

        Raises: ValueError for a wrong number of columns or a negative LM weight.
        """
        if logprobs.ndim != 2 or logprobs.shape[1] != self.num_units:
            raise ValueError(f"log-probabilities of shape {logprobs.shape}, expected (frames, {self.num_units})")
        dec, _, fl_weight, bonus = self._decoder(lm_weight, insertion_score)
        t = logprobs.shape[0]
        if t == 0:
            return Hypothesis([], [] if self.lexicon_mode else None, 0.0, 0.0, 0.0)
        em = np.ascontiguousarray(logprobs, dtype=np.float32)
        results = dec.decode(em.ctypes.data, t, self.num_units)
        if not results:  # not seen; flashlight keeps the best candidate of every frame
            raise ValueError("the beam search ended with no hypothesis")
        best = results[0]
        tokens = list(best.tokens)[1:t + 1]  # [start token, T frames, end token]
        units = ctc_collapse(tokens, 0, first=self.sil)
        if self.lexicon_mode:
            words = [self.words[i] for i in best.words if i >= 0]
            lm = best.lmScore * LN10 if self.kenlm is not None else 0.0
            return Hypothesis(units, words, best.score, best.emittingModelScore, lm)
        if self.kenlm is None:
            lm = 0.0
        elif bonus != 0 and lm_weight == 0:
            lm = self.lm_score(units)
        else:
            lm = (best.lmScore - bonus * len(units)) * LN10
        return Hypothesis(units, None, best.score, best.emittingModelScore, lm)


def check_lm_dictionary(lm, tokens: Sequence[str], unigrams: Dict[str, float], arpa: PathLike,
                        tol: float = 1e-4) -> None:
    """Check that flashlight's KenLM scores each token index as the ARPA
    scores the token's name.

    From the empty context, KenLM's score of a word is its unigram log10
    probability. KenLM maps the decoder's token index i to an LM word
    through the dictionary it was built with; if that dictionary is not the
    decoder's (e.g. a word dictionary given in lexicon-free mode), index i
    is scored as another word or as ``<unk>``, silently. This catches it.

    Args:
      lm: ``flashlight.lib.text.decoder.kenlm.KenLM``.
      tokens: what the decoder means by each index (``tokens[i]``); those
        that are not ARPA unigrams are not checked.
      unigrams: :func:`read_arpa_unigrams` of the ARPA.

    Raises:
      ValueError: the first token whose score differs, naming it and the LM.
    """
    start = lm.start(True)
    for i, e in enumerate(tokens):
        if e not in unigrams:
            continue
        got = lm.score(start, i)[1]
        if abs(got - unigrams[e]) > tol:
            raise ValueError(f"the LM {arpa} scores '{e}' (index {i}) as {got:.4f} (log10) inside the decoder "
                             f"but the ARPA says {unigrams[e]:.4f}: the LM's dictionary does not map the "
                             f"decoder's tokens to the LM's vocabulary")
