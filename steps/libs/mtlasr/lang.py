"""The lang directory: phone and word symbol tables, HMM topology, lexicon FSTs.

Layout written by :func:`prepare_lang` (a subset of Kaldi's data/lang):

  phones.txt, words.txt     OpenFst symbol tables (<eps> = 0; phones then #0, #1, ...)
  topo                      Kaldi HMM topology (text)
  L.fst, L_disambig.fst     lexicon transducers (phones in, words out), OpenFst binary
  phones/silence.csl, phones/nonsilence.csl, phones/disambig.int,
  phones/optional_silence.txt

There are no word-position-dependent phones and no optional silence
between words (sil-prob 0), as in the Kaldi TIMIT recipe where the words
*are* the phones.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Dict, List, Sequence, Tuple

from .datadir import PathLike, atomic_open, read_int_list, read_symbol_table


def read_lexicon(path: PathLike) -> List[Tuple[str, List[str]]]:
    """Read ``word p1 p2 ...`` lines.

    Raises:
      ValueError: a word with no pronunciation, naming file and line.
    """
    lex = []
    for lineno, line in enumerate(Path(path).read_text().splitlines(), 1):
        parts = line.split()
        if not parts:
            continue
        if len(parts) < 2:
            raise ValueError(f"{path}:{lineno}: word '{parts[0]}' has no pronunciation")
        lex.append((parts[0], parts[1:]))
    return lex


def add_disambig(lexicon: Sequence[Tuple[str, List[str]]]) -> Tuple[List[Tuple[str, List[str]]], int]:
    """Append #1, #2, ... to pronunciations that are prefixes of, or equal to,
    other pronunciations, so that the lexicon FST is determinizable
    (Mohri et al., 2002, sec. 4.1). Returns (lexicon, highest disambig index).
    """
    prons = [tuple(p) for _, p in lexicon]
    count: Dict[tuple, int] = {}
    for p in prons:
        count[p] = count.get(p, 0) + 1
    prefixes = set()
    for p in prons:
        for i in range(1, len(p)):
            prefixes.add(p[:i])
    used: Dict[tuple, int] = {}
    out, max_disambig = [], 0
    for word, pron in lexicon:
        p = tuple(pron)
        if count[p] > 1 or p in prefixes:
            used[p] = used.get(p, 0) + 1
            max_disambig = max(max_disambig, used[p])
            out.append((word, list(pron) + [f"#{used[p]}"]))
        else:
            out.append((word, list(pron)))
    return out, max_disambig


def topology_text(phone_ids: Sequence[int], num_states: int) -> str:
    """Kaldi topology: a left-to-right HMM of ``num_states`` emitting states
    (self-loop 0.75, forward 0.25) plus a final non-emitting state, shared by
    ``phone_ids``."""
    lines = ["<Topology>", "<TopologyEntry>", "<ForPhones>", " ".join(map(str, phone_ids)), "</ForPhones>"]
    for s in range(num_states):
        lines.append(f"<State> {s} <PdfClass> {s} <Transition> {s} 0.75 <Transition> {s + 1} 0.25 </State>")
    lines += [f"<State> {num_states} </State>", "</TopologyEntry>", "</Topology>"]
    return "\n".join(lines) + "\n"


def _write_symbols(path: Path, symbols: Sequence[str]) -> None:
    with atomic_open(path) as f:
        for i, s in enumerate(symbols):
            f.write(f"{s} {i}\n")


def make_lexicon_fst(lexicon, phone2id: Dict[str, int], word2id: Dict[str, int],
                     add_disambig0_loop: bool):
    """Lexicon transducer L: phones in, words out, one loop state.

    Each pronunciation is a path from the loop state back to it whose first
    arc emits the word. ``add_disambig0_loop`` adds the ``#0:#0`` self-loop
    that lets G's backoff symbol through L_disambig.

    Returns: ``kaldifst.StdVectorFst``, olabel-sorted.
    """
    import kaldifst

    fst = kaldifst.StdVectorFst()
    loop = fst.add_state()
    fst.start = loop
    fst.set_final(loop, 0.0)
    for word, pron in lexicon:
        src = loop
        for i, ph in enumerate(pron):
            dst = loop if i == len(pron) - 1 else fst.add_state()
            olabel = word2id[word] if i == 0 else 0
            fst.add_arc(src, kaldifst.StdArc(phone2id[ph], olabel, 0.0, dst))
            src = dst
    if add_disambig0_loop:
        fst.add_arc(loop, kaldifst.StdArc(phone2id["#0"], word2id["#0"], 0.0, loop))
    kaldifst.arcsort(fst, sort_type="olabel")
    return fst


def prepare_lang(dict_dir: PathLike, lang_dir: PathLike, num_states: int = 3,
                 num_sil_states: int = 3) -> None:
    """Build a lang dir from a Kaldi dict dir.

    The dict dir holds lexicon.txt, nonsilence_phones.txt, silence_phones.txt
    and optional_silence.txt (one phone per line).

    Raises:
      ValueError: a lexicon phone that is not declared, naming it.
    """
    dict_dir, lang_dir = Path(dict_dir), Path(lang_dir)
    nonsil = (dict_dir / "nonsilence_phones.txt").read_text().split()
    sil = (dict_dir / "silence_phones.txt").read_text().split()
    optional_sil = (dict_dir / "optional_silence.txt").read_text().split()
    lexicon = read_lexicon(dict_dir / "lexicon.txt")
    declared = set(nonsil) | set(sil)
    for word, pron in lexicon:
        for ph in pron:
            if ph not in declared:
                raise ValueError(f"{dict_dir}/lexicon.txt: word '{word}' uses undeclared phone '{ph}'")
    lex_disambig, max_disambig = add_disambig(lexicon)
    phones = ["<eps>"] + sorted(set(sil) | set(nonsil)) + [f"#{i}" for i in range(max_disambig + 1)]
    words = ["<eps>"] + sorted({w for w, _ in lexicon}) + ["#0", "<s>", "</s>"]
    tmp = lang_dir.with_name(lang_dir.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    (tmp / "phones").mkdir(parents=True)
    _write_symbols(tmp / "phones.txt", phones)
    _write_symbols(tmp / "words.txt", words)
    phone2id = {p: i for i, p in enumerate(phones)}
    word2id = {w: i for i, w in enumerate(words)}
    sil_ids = sorted(phone2id[p] for p in sil)
    nonsil_ids = sorted(phone2id[p] for p in nonsil)
    topo = topology_text(nonsil_ids, num_states)
    if num_sil_states == num_states:
        topo = topology_text(sorted(sil_ids + nonsil_ids), num_states)
    else:
        sil_entry = topology_text(sil_ids, num_sil_states).split("\n")[1:-2]
        topo = topo.replace("</Topology>\n", "\n".join(sil_entry) + "\n</Topology>\n")
    (tmp / "topo").write_text(topo)
    (tmp / "phones/silence.csl").write_text(":".join(map(str, sil_ids)) + "\n")
    (tmp / "phones/nonsilence.csl").write_text(":".join(map(str, nonsil_ids)) + "\n")
    (tmp / "phones/disambig.int").write_text(
        "\n".join(str(phone2id[f"#{i}"]) for i in range(max_disambig + 1)) + "\n")
    (tmp / "phones/optional_silence.txt").write_text(" ".join(optional_sil) + "\n")
    make_lexicon_fst(lexicon, phone2id, word2id, False).write(str(tmp / "L.fst"))
    make_lexicon_fst(lex_disambig, phone2id, word2id, True).write(str(tmp / "L_disambig.fst"))
    shutil.copy(dict_dir / "lexicon.txt", tmp / "lexicon.txt")
    shutil.rmtree(lang_dir, ignore_errors=True)
    tmp.rename(lang_dir)


class Lang:
    """A lang dir loaded for training and decoding.

    Attributes: phone2id, id2phone, word2id, id2word, silence_ids (list of int),
    disambig_ids (list of int), topo (``kaldi_hmm_gmm.HmmTopology``).
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

    def topology(self):
        import kaldi_hmm_gmm as khg

        topo = khg.HmmTopology()
        topo.read((self.dir / "topo").read_text())
        return topo

    def lexicon_fst(self, disambig: bool = False):
        import kaldifst

        return kaldifst.StdVectorFst.read(str(self.dir / ("L_disambig.fst" if disambig else "L.fst")))

    def words_to_ids(self, words: Sequence[str], utt: str = "?") -> List[int]:
        """Map a transcript to word ids.

        Raises:
          KeyError: a word not in words.txt, naming the utterance.
        """
        try:
            return [self.word2id[w] for w in words]
        except KeyError as e:
            raise KeyError(f"utterance {utt}: word {e.args[0]!r} is not in {self.dir}/words.txt") from None
