"""Sentencepiece units (mtlasr.pieces, mtlasr.bin.train_sentencepiece,
steps/train_sentencepiece.sh): round trips, determinism, the units table."""

import subprocess
from pathlib import Path

import numpy as np
import pytest

from mtlasr import ctc_decode, pieces
from mtlasr.units import UnitTable, read_units

ROOT = Path(__file__).resolve().parent.parent
WORDS = ("the cat sat on a mat while her dark suit got greasy wash water all year "
         "don't ask me to carry an oily rag like that").split()


def corpus(path, n=300, seed=0):
    """A Kaldi text file of n random sentences over WORDS."""
    rng = np.random.default_rng(seed)
    lines = [f"utt{i:04d} " + " ".join(rng.choice(WORDS, size=rng.integers(3, 12))) for i in range(n)]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n")
    return path


def sh(cmd):
    return subprocess.run(["bash", "-c", f". ./path.sh && {cmd}"], cwd=ROOT, capture_output=True, text=True,
                          timeout=120)


@pytest.mark.parametrize("model_type", pieces.MODEL_TYPES)
def test_round_trip_and_units(tmp_path, model_type):
    text = corpus(tmp_path / "text")
    out = tmp_path / "sp"
    p = sh(f"steps/train_sentencepiece.sh --model-type {model_type} --vocab-size 40 {text} {out}")
    assert p.returncode == 0, p.stderr
    units = read_units(out / "units.txt")   # <blk> = 0, ids 0..V-1
    assert len(units) == 40 and units[:2] == ["<blk>", "<unk>"]
    coder = pieces.PieceCoder(out / "sp.model")
    assert coder.units() == units
    table = UnitTable(out)  # what the CTC trainer reads: pieces, encoded by sp.model
    assert table.unit_type == "piece" and table.units == units
    assert [line.split("\t")[0] for line in (out / "sp.vocab").read_text().splitlines()] == units
    for line in text.read_text().splitlines()[:50] + ["that cat ate"]:
        sentence = line.split(maxsplit=1)[1] if line.startswith("utt") else line
        ids = coder.encode(sentence)
        assert ids and min(ids) >= 1 and max(ids) < 40
        assert coder.decode(ids) == sentence
        assert coder.decode([0] + ids + [0]) == sentence                   # blanks are dropped
        assert pieces.pieces_to_words([units[i] for i in ids]) == sentence.split()
    with pytest.raises(ValueError, match="unit id 40 outside"):
        coder.decode([40])
    first = (out / "text").read_text().splitlines()[0].split()
    assert first[0] == "utt0000" and pieces.pieces_to_words(first[1:]) == text.read_text().split("\n")[0].split()[1:]
    lexicon = dict(line.split(maxsplit=1) for line in (out / "lexicon.txt").read_text().splitlines())
    assert sorted(lexicon) == sorted(set(WORDS)) and lexicon["cat"].split() == coder.encode_pieces("cat")


def test_deterministic(tmp_path):
    text = corpus(tmp_path / "text")
    for d in ("a", "b"):
        p = sh(f"steps/train_sentencepiece.sh --model-type unigram --vocab-size 45 --seed 3 {text} {tmp_path / d}")
        assert p.returncode == 0, p.stderr
    for f in ("sp.model", "sp.vocab", "units.txt", "text", "lexicon.txt"):
        assert (tmp_path / "a" / f).read_bytes() == (tmp_path / "b" / f).read_bytes(), f
    model = pieces.train_model(pieces.read_transcripts(text), "bpe", 45, 1, 1.0)
    assert model == pieces.train_model(pieces.read_transcripts(text), "bpe", 45, 1, 1.0)
    p = sh(f"steps/train_sentencepiece.sh --model-type unigram --vocab-size 45 --seed 3 {text} {tmp_path / 'a'}")
    assert p.returncode == 0 and "is up to date; skipping" in p.stderr


def test_greedy_ctc_on_pieces(tmp_path):
    """A one-hot CTC output over piece ids decodes back to the words (join=pieces)."""
    text = corpus(tmp_path / "text")
    out = tmp_path / "sp"
    assert sh(f"steps/train_sentencepiece.sh --vocab-size 40 {text} {out}").returncode == 0
    coder = pieces.PieceCoder(out / "sp.model")
    units = read_units(out / "units.txt")
    ids = coder.encode("a cat sat on that mat")
    path = [x for i in ids for x in (i, i, 0)]
    lp = np.log(np.eye(len(units))[path] * 0.97 + 0.03 / len(units)).astype(np.float32)
    h = ctc_decode.greedy_decode(lp)
    mode = ctc_decode.join_mode(units, "auto", None)
    assert mode == "pieces" and h.units == ids
    assert ctc_decode.units_to_words([units[i] for i in h.units], mode) == "a cat sat on that mat".split()


def test_errors(tmp_path):
    text = corpus(tmp_path / "text", n=20)
    p = sh(f"steps/train_sentencepiece.sh --vocab-size 5000 {text} {tmp_path / 'sp'}")
    assert p.returncode == 1 and "Vocabulary size too high" in p.stderr and "train.log" in p.stderr
    assert not (tmp_path / "sp" / "sp.model").exists()
    p = sh(f"steps/train_sentencepiece.sh --model-type word {text} {tmp_path / 'sp'}")
    assert p.returncode == 1 and "--model-type must be bpe or unigram" in p.stderr
    p = sh("steps/train_sentencepiece.sh --help")
    assert p.returncode == 0 and "Usage:" in p.stderr and "e.g.:" in p.stderr
    import sentencepiece as spm

    plain = tmp_path / "plain"
    spm.SentencePieceTrainer.Train(input=str(text), model_prefix=str(plain), vocab_size=40, num_threads=1,
                                   minloglevel=2)
    with pytest.raises(ValueError, match="id 0 is not the CTC blank"):
        pieces.PieceCoder(f"{plain}.model")
    empty = tmp_path / "empty"
    empty.write_text("utt1\n")
    with pytest.raises(ValueError, match="no transcript"):
        pieces.read_transcripts(empty)
