"""CTC decoding (mtlasr.ctc_decode): greedy, lexicon-free and lexicon beam
search with KenLM inside flashlight-text, the LM-dictionary guard, the
mtlasr.bin.decode_ctc CLI and steps/decode_ctc.sh with steps/score.sh."""

import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from mtlasr import ctc_decode
from mtlasr.ctc_decode import (BeamOptions, CtcBeamSearch, check_lm_dictionary, ctc_collapse, greedy_decode,
                               read_arpa_unigrams, read_lexicon, units_to_words)
from mtlasr.units import read_units

ROOT = Path(__file__).resolve().parent.parent
ENV = dict(os.environ, PYTHONPATH=str(ROOT / "steps" / "libs"))
LN10 = math.log(10)


def write(path, text):
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def write_arpa(path, unigrams, bigrams):
    """A bigram ARPA file: unigrams (log10 prob, word[, backoff]), bigrams (log10 prob, 'w1 w2').
    KenLM wants tabs between the fields."""
    lines = ["\\data\\", f"ngram 1={len(unigrams)}", f"ngram 2={len(bigrams)}", "", "\\1-grams:"]
    lines += ["\t".join(map(str, u)) for u in unigrams]
    lines += ["", "\\2-grams:"] + ["\t".join(map(str, b)) for b in bigrams] + ["", "\\end\\", ""]
    return write(path, "\n".join(lines))


def logsoftmax(rows, floor=1e-4):
    a = np.log(np.asarray(rows, dtype=np.float64) + floor)
    return (a - np.logaddexp.reduce(a, axis=1, keepdims=True)).astype(np.float32)


def kenlm_ln(arpa, sentence):
    """ln P of a sentence with <s> and </s> by the kenlm module (log10 -> ln)."""
    import kenlm

    return kenlm.Model(str(arpa)).score(sentence, bos=True, eos=True) * LN10


UNITS = ["<blk>", "a", "b", "c"]


@pytest.fixture
def unit_lm(tmp_path):
    """A unit bigram LM that strongly prefers 'a b' to 'a c'."""
    return write_arpa(tmp_path / "unit.arpa",
                      [(-1.0, "</s>"), (-99, "<s>", -0.5), (-0.5, "a", -0.3), (-0.7, "b", -0.3), (-0.9, "c", -0.3)],
                      [(-0.1, "<s> a"), (-0.05, "a b"), (-2.0, "a c"), (-0.2, "b </s>"), (-0.2, "c </s>")])


# acoustics: 'a', then b or c with c slightly more likely, then blank
AMBIGUOUS = logsoftmax([[0.1, 0.9, 0, 0], [0.9, 0.1, 0, 0], [0.1, 0, 0.4, 0.5], [0.9, 0, 0.05, 0.05]])


# ---------------------------------------------------------------- inputs, greedy
def test_read_units_and_errors(tmp_path):
    assert read_units(write(tmp_path / "u", "<blk> 0\nb 2\na 1\n")) == ["<blk>", "a", "b"]
    for text, msg in [("a 0\n<blk> 1\n", "id 0 must be the CTC blank"), ("<blk> 0\na 2\n", "without gaps"),
                      ("<blk> 0\na 1\na 2\n", r"u:3: unit 'a' repeated"), ("<blk> 0\na\n", r"u:2: expected")]:
        with pytest.raises(ValueError, match=msg):
            read_units(write(tmp_path / "u", text))


def test_read_lexicon_errors(tmp_path):
    units = ["<blk>", "c", "a", "t"]
    assert read_lexicon(write(tmp_path / "l", "cat c a t\nat a t\n"), units) == [("cat", [1, 2, 3]), ("at", [2, 3])]
    with pytest.raises(ValueError, match=r"l:2: unit 'x' of word 'ax'"):
        read_lexicon(write(tmp_path / "l", "cat c a t\nax a x\n"), units)
    with pytest.raises(ValueError, match=r"l:1: word 'cat' has no units"):
        read_lexicon(write(tmp_path / "l", "cat\n"), units)


def test_greedy_hand_made():
    # frame argmax: a a <blk> a b b <blk> <blk> c  ->  a a b c
    path = [1, 1, 0, 1, 2, 2, 0, 0, 3]
    lp = logsoftmax(np.eye(4)[path] * 0.9 + 0.025)
    h = greedy_decode(lp)
    assert h.units == [1, 1, 2, 3] and h.words is None
    assert h.am_score == pytest.approx(float(sum(lp[t, u] for t, u in enumerate(path))), abs=1e-5)
    assert greedy_decode(np.zeros((0, 4), np.float32)).units == []
    assert ctc_collapse([3, 3, 1, 0, 3], first=3) == [1, 3]  # a leading repeat of the start token is no unit


def test_units_to_words():
    assert units_to_words(["c", "a", "t", "|", "|", "s", "a", "t", "|"], "sep", "|") == ["cat", "sat"]
    assert units_to_words(["\u2581ca", "t", "\u2581s", "at"], "pieces") == ["cat", "sat"]
    assert units_to_words(["sil", "ah", "b"], "none") == ["sil", "ah", "b"]
    assert ctc_decode.join_mode(["<blk>", "\u2581a", "b"], "auto", None) == "pieces"
    assert ctc_decode.join_mode(["<blk>", "a", "|"], "auto", "|") == "sep"
    assert ctc_decode.join_mode(["<blk>", "aa", "b"], "auto", None) == "none"


def test_check_logprobs():
    with pytest.raises(ValueError, match="utterance u1: .*shape"):
        ctc_decode.check_logprobs(np.zeros((3, 5)), 4, "u1")
    with pytest.raises(ValueError, match="utterance u1: frame 0 is not a log-probability"):
        ctc_decode.check_logprobs(np.zeros((3, 4)), 4, "u1")  # logits, not log-softmax


# ---------------------------------------------------------------- lexicon-free beam search
def test_unit_lm_changes_best_path(unit_lm):
    assert greedy_decode(AMBIGUOUS).units == [1, 3]
    search = CtcBeamSearch(UNITS, BeamOptions(beam=10, beam_threshold=50), arpa=unit_lm)
    no_lm = search.decode(AMBIGUOUS, 0.0, 0.0)
    with_lm = search.decode(AMBIGUOUS, 1.0, 0.0)
    assert no_lm.units == [1, 3]            # acoustics alone: a c
    assert with_lm.units == [1, 2]          # the LM's a b wins
    assert with_lm.am_score < no_lm.am_score and with_lm.lm_score > no_lm.lm_score
    no_lm_search = CtcBeamSearch(UNITS, BeamOptions(beam=10, beam_threshold=50))
    h = no_lm_search.decode(AMBIGUOUS, 1.0, 0.0)
    assert h.units == [1, 3] and h.lm_score == 0.0


@pytest.mark.parametrize("lm_weight,ins", [(0.0, 0.0), (0.5, 0.0), (1.0, 0.0), (1.0, 0.7), (2.0, -1.5), (0.0, 2.0)])
def test_decoder_lm_score_is_kenlm(unit_lm, lm_weight, ins):
    """The decoder's LM score of its hypothesis is kenlm's (log10 -> ln), and
    its total is am + w * lm + ins * units, on random outputs of 40 frames."""
    rng = np.random.default_rng(int(lm_weight * 10 + ins * 3 + 7))
    lp = logsoftmax(rng.dirichlet(np.ones(4) * 0.5, size=40), floor=1e-6)
    search = CtcBeamSearch(UNITS, BeamOptions(beam=20, beam_threshold=100), arpa=unit_lm)
    h = search.decode(lp, lm_weight, ins)
    assert h.units
    sentence = " ".join(UNITS[u] for u in h.units)
    assert h.lm_score == pytest.approx(kenlm_ln(unit_lm, sentence), abs=1e-4)
    assert h.lm_score == pytest.approx(search.lm_score(h.units), abs=1e-4)
    assert h.score == pytest.approx(h.am_score + lm_weight * h.lm_score + ins * len(h.units), abs=1e-3)


def test_unit_insertion_score_changes_length(unit_lm):
    rng = np.random.default_rng(3)
    lp = logsoftmax(rng.dirichlet(np.ones(4) * 0.5, size=40), floor=1e-6)
    search = CtcBeamSearch(UNITS, BeamOptions(beam=20, beam_threshold=100), arpa=unit_lm)
    lengths = [len(search.decode(lp, 1.0, s).units) for s in (-5.0, 0.0, 5.0)]
    assert lengths[0] < lengths[1] < lengths[2]


# ---------------------------------------------------------------- lexicon decoding
LETTERS = ["<blk>", "c", "a", "u", "t", "h", "e", "|"]


def letters(s):
    return [LETTERS.index(ch) for ch in s]


@pytest.fixture
def word_lm(tmp_path):
    return write_arpa(tmp_path / "word.arpa",
                      [(-1.0, "</s>"), (-99, "<s>", -0.5), (-0.6, "cat", -0.3), (-1.5, "cut", -0.3),
                       (-0.5, "the", -0.3)],
                      [(-0.1, "the cat"), (-0.2, "cat </s>"), (-0.1, "<s> the")])


def the_c_x_t():
    """'t h e | c', then a or u (u a little more likely), then 't'."""
    rows = []
    for ch in "the|c":
        rows += [np.eye(8)[LETTERS.index(ch)] * 0.9, np.eye(8)[0] * 0.9]
    rows += [[0.2, 0, 0.35, 0.45, 0, 0, 0, 0], np.eye(8)[4] * 0.9, np.eye(8)[0] * 0.9]
    return logsoftmax(rows)


def test_lexicon_decoding_word_lm_picks_the_word(word_lm):
    lexicon = [("cat", letters("cat")), ("cut", letters("cut")), ("the", letters("the"))]
    lp = the_c_x_t()
    assert units_to_words([LETTERS[u] for u in greedy_decode(lp).units], "sep", "|") == ["the", "cut"]
    opts = BeamOptions(beam=20, beam_threshold=50, word_sep="|")
    no_lm = CtcBeamSearch(LETTERS, opts, lexicon=lexicon).decode(lp, 1.0, 0.0)
    assert no_lm.words == ["the", "cut"]
    search = CtcBeamSearch(LETTERS, opts, arpa=word_lm, lexicon=lexicon)
    h = search.decode(lp, 1.0, 0.0)
    assert h.words == ["the", "cat"]
    assert units_to_words([LETTERS[u] for u in h.units], "sep", "|") == ["the", "cat"]
    assert h.lm_score == pytest.approx(kenlm_ln(word_lm, "the cat"), abs=1e-4)
    h2 = search.decode(lp, 1.0, 1.5)
    assert h2.score == pytest.approx(h2.am_score + h2.lm_score + 1.5 * len(h2.words), abs=1e-3)
    assert search.decode(lp, 0.0, 0.0).words == ["the", "cut"]


def test_lexicon_constrains_to_words(word_lm):
    """'c a t' acoustics with only 'cut' and 'the' in the lexicon: 'cut'."""
    lexicon = [("cut", letters("cut")), ("the", letters("the"))]
    rows = [np.eye(8)[LETTERS.index(ch)] * 0.9 for ch in "cat"]
    h = CtcBeamSearch(LETTERS, BeamOptions(beam=20, beam_threshold=50, word_sep="|"), lexicon=lexicon) \
        .decode(logsoftmax(rows), 0.0, 0.0)
    assert h.words == ["cut"]


# ---------------------------------------------------------------- the dictionary pitfall
def test_word_lm_in_lexicon_free_mode_raises(word_lm):
    with pytest.raises(ValueError, match=r"lacks 7 of the 7 non-blank units .*same units as units.txt"):
        CtcBeamSearch(LETTERS, BeamOptions(beam=10, beam_threshold=50), arpa=word_lm)


def test_lm_lacking_some_units(tmp_path, unit_lm, caplog):
    """A unit LM without 'c' (a BPE piece that never occurs in the LM text):
    an error, unless missing units are allowed; an LM with none of the units
    is an error either way."""
    lm = write_arpa(tmp_path / "ab.arpa", [(-1.0, "</s>"), (-99, "<s>", -0.5), (-0.3, "a", -0.3), (-0.4, "b", -0.3)],
                    [(-0.1, "<s> a"), (-0.05, "a b")])
    opts = BeamOptions(beam=10, beam_threshold=50)
    with pytest.raises(ValueError, match=r"lacks 1 of the 3 non-blank units \(c\).*allow missing units"):
        CtcBeamSearch(UNITS, opts, arpa=lm)
    search = CtcBeamSearch(UNITS, opts, arpa=lm, allow_missing_units=True)
    assert "1 of the 3 non-blank units are not in the LM" in caplog.text
    assert search.decode(AMBIGUOUS, 1.0, 0.0).units == [1, 2]
    with pytest.raises(ValueError, match="lacks 3 of the 3"):
        CtcBeamSearch(UNITS, opts, arpa=write_arpa(tmp_path / "xy.arpa", [(-1, "</s>"), (-99, "<s>"), (-0.3, "x")],
                                                   [(-0.1, "<s> x")]), allow_missing_units=True)


def test_unit_lm_in_lexicon_mode_raises(unit_lm):
    with pytest.raises(ValueError, match="knows none of the lexicon's 1 words"):
        CtcBeamSearch(UNITS, BeamOptions(beam=10, beam_threshold=50), arpa=unit_lm, lexicon=[("ab", [1, 2])])


def test_wrong_kenlm_dictionary_is_caught(unit_lm):
    """flashlight's KenLM given a dictionary other than the decoder's tokens
    scores every unit as <unk>, silently; the check sees it."""
    from flashlight.lib.text.decoder.kenlm import KenLM
    from flashlight.lib.text.dictionary import Dictionary

    unigrams = read_arpa_unigrams(unit_lm)
    good = KenLM(str(unit_lm), Dictionary(UNITS))
    check_lm_dictionary(good, UNITS, unigrams, unit_lm)
    bad = KenLM(str(unit_lm), Dictionary(["<blk>", "x", "y", "z"]))
    start = bad.start(True)
    assert len({bad.score(start, i)[1] for i in (1, 2, 3)}) == 1  # all <unk>: the silent failure
    with pytest.raises(ValueError, match=r"scores 'a' \(index 1\).*does not map"):
        check_lm_dictionary(bad, UNITS, unigrams, unit_lm)


def test_beam_option_errors(unit_lm):
    with pytest.raises(ValueError, match="word separator '<space>' is not"):
        CtcBeamSearch(UNITS, BeamOptions(beam=10, beam_threshold=50, word_sep="<space>"))
    with pytest.raises(ValueError, match="needs a word separator"):
        CtcBeamSearch(UNITS, BeamOptions(beam=10, beam_threshold=50, sil_score=1.0))
    with pytest.raises(ValueError, match="LM weight must be >= 0"):
        CtcBeamSearch(UNITS, BeamOptions(beam=10, beam_threshold=50), arpa=unit_lm).decode(AMBIGUOUS, -1.0, 0.0)


# ---------------------------------------------------------------- the CLI and the shell step
def write_forward_dir(d, mats):
    import kaldiio

    d.mkdir(parents=True, exist_ok=True)
    write(d / "units.txt", "".join(f"{u} {i}\n" for i, u in enumerate(UNITS)))
    with kaldiio.WriteHelper(f"ark,scp:{d}/logprobs.ark,{d}/logprobs.scp") as w:
        for utt, m in mats.items():
            w(utt, m)
    return d


def decode_cli(*args):
    return subprocess.run([sys.executable, "-m", "mtlasr.bin.decode_ctc", *map(str, args)], env=ENV,
                          capture_output=True, text=True, timeout=60)


@pytest.fixture
def forward_dir(tmp_path):
    greedy_ab = logsoftmax([[0.1, 0.9, 0, 0], [0.9, 0, 0.1, 0], [0.1, 0, 0.9, 0]])
    return write_forward_dir(tmp_path / "fwd", {"s1_u1": AMBIGUOUS, "s1_u2": greedy_ab, "s2_u1": AMBIGUOUS[:0]})


def test_cli_greedy_and_lm_grid(tmp_path, forward_dir, unit_lm):
    fwd, out = forward_dir, tmp_path / "dec"
    base = ["--join", "auto", "--frame-shift", "0.01", "--subsampling", "4"]
    p = decode_cli(*base, fwd / "logprobs.scp", fwd / "units.txt", out, 1)
    assert p.returncode == 0, p.stderr
    assert (out / "scoring/0_0/hyp.1.tra").read_text() == "s1_u1 a c\ns1_u2 a b\ns2_u1\n"
    assert "(7 frames, 0.28 s of audio)" in p.stderr and "real-time factor" in p.stderr

    beam = ["--beam", "10", "--beam-threshold", "50", "--beam-size-token", "0", "--sil-score", "0"]
    p = decode_cli(*base, *beam, "--lm", unit_lm, "--lm-weights", "0 1", "--word-scores", "0 0.5",
                   "--utts", write(tmp_path / "utts", "s1_u1 s1\ns1_u2 s1\n"),
                   fwd / "logprobs.scp", fwd / "units.txt", out, 2)
    assert p.returncode == 0, p.stderr
    dirs = sorted(d.name for d in (out / "scoring").iterdir() if (d / "hyp.2.tra").exists())
    assert dirs == ["0_0", "0_0.5", "1_0", "1_0.5"]
    assert (out / "scoring/0_0/hyp.2.tra").read_text() == "s1_u1 a c\ns1_u2 a b\n"
    assert (out / "scoring/1_0/hyp.2.tra").read_text() == "s1_u1 a b\ns1_u2 a b\n"
    assert p.stderr.count(" RTF ") == 4 and "x 4 settings" in p.stderr


def test_cli_errors(tmp_path, forward_dir, word_lm):
    fwd, out = forward_dir, tmp_path / "dec"
    base = ["--join", "auto", "--frame-shift", "0.01", "--subsampling", "1"]
    p = decode_cli(*base, "--utts", write(tmp_path / "utts", "s9_u9 s9\n"), fwd / "logprobs.scp",
                   fwd / "units.txt", out, 1)
    assert p.returncode == 1 and "ERROR" in p.stderr and "no log-probabilities for utterance s9_u9" in p.stderr
    p = decode_cli(*base, "--lm", word_lm, "--lm-weights", "1", "--word-scores", "0", "--beam", "5",
                   "--beam-threshold", "10", "--beam-size-token", "0", "--sil-score", "0",
                   fwd / "logprobs.scp", fwd / "units.txt", out, 1)
    assert p.returncode == 1 and "lacks 3 of the 3 non-blank units" in p.stderr and "Traceback" not in p.stderr
    p = decode_cli(*base, "--lm", word_lm, fwd / "logprobs.scp", fwd / "units.txt", out, 1)
    assert p.returncode == 1 and "--lm-weights is required" in p.stderr
    assert not (out / "scoring").exists()


def sh(cmd):
    return subprocess.run(["bash", "-c", f". ./path.sh && {cmd}"], cwd=ROOT, capture_output=True, text=True,
                          timeout=120)


def test_decode_ctc_sh_then_score_sh(tmp_path, forward_dir, unit_lm):
    data = tmp_path / "data"
    write(data / "text", "s1_u1 a b\ns1_u2 a b\ns2_u1 c\n")
    write(data / "utt2spk", "s1_u1 s1\ns1_u2 s1\ns2_u1 s2\n")
    write(data / "spk2utt", "s1 s1_u1 s1_u2\ns2 s2_u1\n")
    dec = tmp_path / "decode_dev"
    cmd = (f"steps/decode_ctc.sh --nj 2 --lm {unit_lm} --lm-weights '0 1' --word-scores '0 -0.5' "
           f"{forward_dir} {data} {dec}")
    p = sh(cmd)
    assert p.returncode == 0, p.stderr
    assert "real-time factor" in p.stderr
    assert sorted(d.name for d in (dec / "scoring").iterdir()) == ["0_-0.5", "0_0", "1_-0.5", "1_0"]
    assert (dec / "num_jobs").read_text().strip() == "2" and (dec / ".decode.record").exists()
    assert not (dec / ".next").exists()
    p = sh(f"steps/score.sh --metric per {data} {dec}")
    assert p.returncode == 0, p.stderr
    assert (dec / "lmwt").read_text().strip() == "1" and (dec / "wip").read_text().strip() == "-0.5"
    assert (dec / "per").read_text().startswith("%PER 20.00 [ 1 / 5, 0 ins, 1 del, 0 sub ]")
    p = sh(cmd)
    assert p.returncode == 0 and "already decoded with these inputs and options; skipping" in p.stderr
    # decoded into the forward dir itself, the test set scored at the weights chosen on dev
    p = sh(f"steps/decode_ctc.sh --nj 1 --lm {unit_lm} --lm-weights '0 1' --word-scores '0 -0.5' "
           f"{forward_dir} {data} {forward_dir}")
    assert p.returncode == 0, p.stderr
    assert (forward_dir / "logprobs.scp").exists() and (forward_dir / "scoring/1_-0.5/hyp.1.tra").exists()
    p = sh(f"steps/score.sh --metric per --lmwt-from {dec} {data} {forward_dir}")
    assert p.returncode == 0, p.stderr
    assert (forward_dir / "per").read_text() == (dec / "per").read_text().replace(str(dec), str(forward_dir))


def test_decode_ctc_sh_usage():
    p = sh("steps/decode_ctc.sh --help")
    assert p.returncode == 0 and "Usage:" in p.stderr and "e.g.:" in p.stderr
    p = sh("steps/decode_ctc.sh a b")
    assert p.returncode == 1 and "Usage:" in p.stderr


def test_decode_ctc_sh_missing_lm_is_a_clear_error(tmp_path, forward_dir):
    data = tmp_path / "data"
    write(data / "utt2spk", "s1_u1 s1\n")
    write(data / "spk2utt", "s1 s1_u1\n")
    dec = tmp_path / "dec"
    p = sh(f"steps/decode_ctc.sh --nj 1 --lm {tmp_path}/no_lm.arpa {forward_dir} {data} {dec}")
    assert p.returncode != 0 and "no_lm.arpa" in p.stderr and "Traceback" not in p.stderr
    assert not dec.exists() or not any(dec.rglob("hyp.*"))


def test_prepare_units_letters_and_lexicon(tmp_path):
    write(tmp_path / "train" / "text", "u1 the cat\nu2 a dog's day\n")
    write(tmp_path / "dev" / "text", "u3 the zoo\n")
    write(tmp_path / "lm.txt", "the cat and the zoo\nthe dog's day\nthe café\n")
    lang = tmp_path / "lang"
    p = sh(f"utils/prepare_units.sh --unit-type letter --allow-new true --lexicon-text {tmp_path}/lm.txt "
           f"{tmp_path}/train/text {tmp_path}/dev/text {lang}")
    assert p.returncode == 0, p.stderr
    units = [l.split()[0] for l in (lang / "units.txt").read_text().splitlines()]
    assert units[0] == "<blk>" and "<space>" in units and "'" in units and "z" in units  # z: from dev
    lex = (lang / "lexicon.txt").read_text(encoding="utf-8").splitlines()
    # the LM words spelt with the units; 'and' (no n in the texts) and 'café' (é) are left out
    assert "the t h e" in lex and "dog's d o g ' s" in lex and "zoo z o o" in lex
    assert not any(l.startswith(("café ", "and ")) for l in lex) and lex == sorted(lex)
    assert "2 left out" in p.stderr
    p = sh(f"utils/prepare_units.sh --lexicon-text {tmp_path}/lm.txt {tmp_path}/train/text {tmp_path}/lang2")
    assert p.returncode != 0 and "needs --unit-type letter" in p.stderr
