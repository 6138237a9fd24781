"""Sentencepiece subword units (BPE or unigram) as CTC output units.

A model is trained on the transcripts of a Kaldi ``text`` file (utterance
ids stripped) with the sentencepiece library: byte-pair encoding (Sennrich
et al., ACL 2016) or the unigram language model (Kudo, ACL 2018), chosen by
``model_type``. The id space is laid out for CTC:

* id 0 is the CTC blank ``<blk>`` (sentencepiece's padding piece, a
  control symbol that ``encode`` never produces and ``decode`` drops);
* id 1 is ``<unk>`` (characters the model has not seen);
* ids 2 .. V-1 are the pieces; no ``<s>`` / ``</s>``.

So a piece id *is* the unit id of ``units.txt`` (``<piece> <id>`` per
line, Kaldi style), with no mapping between the two. Word boundaries are
the pieces' leading ``\u2581`` (U+2581), so ids -> text needs no separator unit.

Training is deterministic: one thread (``num_threads=1``), the library's
random generator seeded, the sentences given from memory and the model
written to memory (the model file then holds no input path or output name,
so two trainings on the same text give byte-identical files). Text is not
normalised (``normalization_rule_name=identity``): decode(encode(t)) == t
for any text of single-space-separated words made of seen characters.
"""

from __future__ import annotations

import io
import logging
from pathlib import Path
from typing import Dict, Iterable, List, Sequence, Tuple

from .datadir import PathLike, atomic_open

logger = logging.getLogger(__name__)

BLANK = "<blk>"
UNK = "<unk>"
WORD_START = "\u2581"  # sentencepiece's meta symbol for a space ("▁")
MODEL_TYPES = ("bpe", "unigram")


def read_transcripts(text: PathLike) -> List[str]:
    """The transcripts of a Kaldi ``text`` file (utterance id stripped,
    words joined by one space), empty ones left out.

    Raises:
      FileNotFoundError: no such file. ValueError: no transcript at all.
    """
    out = []
    with open(text, encoding="utf-8") as f:
        for line in f:
            words = line.split()[1:]
            if words:
                out.append(" ".join(words))
    if not out:
        raise ValueError(f"{text}: no transcript to train on")
    return out


def train_model(sentences: Sequence[str], model_type: str, vocab_size: int, seed: int,
                character_coverage: float) -> bytes:
    """Train a sentencepiece model; return the serialised model (``sp.model``).

    Args:
      sentences: training sentences (words separated by spaces).
      model_type: ``bpe`` or ``unigram``.
      vocab_size: V, all units included (``<blk>``, ``<unk>``, pieces).
      seed: seed of sentencepiece's random generator.
      character_coverage: share of the characters the alphabet covers
        (1.0: every character seen; the rest become ``<unk>``).

    Raises:
      ValueError: an unknown model type, a vocabulary size below 3, or one
        the text cannot fill (sentencepiece's message, which names the
        largest size it can make).
    """
    import sentencepiece as spm

    if model_type not in MODEL_TYPES:
        raise ValueError(f"model type must be one of {', '.join(MODEL_TYPES)}, got '{model_type}'")
    if vocab_size < 3:
        raise ValueError(f"vocabulary size must be at least 3 (<blk>, <unk>, a piece), got {vocab_size}")
    spm.set_random_generator_seed(seed)
    buf = io.BytesIO()
    try:
        spm.SentencePieceTrainer.Train(
            sentence_iterator=iter(sentences), model_writer=buf, model_type=model_type,
            vocab_size=vocab_size, character_coverage=character_coverage, num_threads=1,
            normalization_rule_name="identity", pad_id=0, pad_piece=BLANK, unk_id=1, unk_piece=UNK,
            bos_id=-1, eos_id=-1, minloglevel=1)
    except RuntimeError as e:
        raise ValueError(f"sentencepiece training failed: {e}") from None
    return buf.getvalue()


class PieceCoder:
    """Text <-> unit ids with a model made by :func:`train_model`.

    Args:
      model: the ``sp.model`` file.

    Raises:
      OSError: the file cannot be read. ValueError: id 0 is not ``<blk>``
        (a model made elsewhere, whose ids are not CTC unit ids).
    """

    def __init__(self, model: PathLike):
        import sentencepiece as spm

        self.path = str(model)
        self.sp = spm.SentencePieceProcessor(model_proto=Path(model).read_bytes())
        if self.sp.get_piece_size() < 1 or self.sp.id_to_piece(0) != BLANK:
            raise ValueError(f"{model}: id 0 is not the CTC blank {BLANK} (not made by "
                             f"steps/train_sentencepiece.sh)")

    @property
    def vocab_size(self) -> int:
        """V: the number of units, blank included."""
        return self.sp.get_piece_size()

    def units(self) -> List[str]:
        """The pieces in id order (``units()[0] == '<blk>'``)."""
        return [self.sp.id_to_piece(i) for i in range(self.vocab_size)]

    def encode(self, text: str) -> List[int]:
        """Unit ids of a text (all in 1 .. V-1; never the blank)."""
        return list(self.sp.encode(text))

    def encode_pieces(self, text: str) -> List[str]:
        """The pieces of a text."""
        return list(self.sp.encode(text, out_type=str))

    def decode(self, ids: Iterable[int]) -> str:
        """The text of unit ids; blanks (0) are dropped.

        Raises: ValueError for an id outside 0 .. V-1.
        """
        ids = [int(i) for i in ids]
        bad = [i for i in ids if not 0 <= i < self.vocab_size]
        if bad:
            raise ValueError(f"unit id {bad[0]} outside 0..{self.vocab_size - 1} of {self.path}")
        return self.sp.decode([i for i in ids if i != 0])


def pieces_to_words(pieces: Iterable[str]) -> List[str]:
    """Words of a piece sequence: pieces joined, split before each ``\u2581``.

    ``['\u2581ca', 't', '\u2581s', 'at'] -> ['cat', 'sat']``; ``<blk>`` is dropped.
    Needs no model (the inverse of encoding for identity-normalised models).
    """
    return "".join(p for p in pieces if p != BLANK).replace(WORD_START, " ").split()


def write_vocab(coder: PieceCoder, path: PathLike) -> None:
    """Write sentencepiece's ``.vocab`` file (``piece<TAB>score``), atomically."""
    with atomic_open(path) as f:
        for i in range(coder.vocab_size):
            f.write(f"{coder.sp.id_to_piece(i)}\t{coder.sp.get_score(i):g}\n")


def encode_text_file(coder: PieceCoder, text: PathLike, out: PathLike) -> Tuple[int, int]:
    """Write a Kaldi text file with each transcript as pieces (``utt p1 p2 ...``),
    atomically; e.g. the training text of a piece n-gram LM (steps/train_lm.sh).

    Returns: (utterances, pieces).
    """
    n_utt = n_piece = 0
    with open(text, encoding="utf-8") as f, atomic_open(out) as g:
        for line in f:
            parts = line.split()
            if not parts:
                continue
            pieces = coder.encode_pieces(" ".join(parts[1:])) if len(parts) > 1 else []
            g.write(" ".join([parts[0]] + pieces) + "\n")
            n_utt, n_piece = n_utt + 1, n_piece + len(pieces)
    return n_utt, n_piece


def word_lexicon(coder: PieceCoder, words: Iterable[str]) -> Dict[str, List[str]]:
    """Each word's pieces (a lexicon for word decoding with a word LM)."""
    return {w: coder.encode_pieces(w) for w in words}
