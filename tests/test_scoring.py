"""Scoring (mtlasr.scoring), the paired bootstrap (mtlasr.significance), their
entry points and steps/score.sh."""

import json
import logging
import os
import subprocess
import sys

import numpy as np
import pytest

from mtlasr import scoring, significance
from mtlasr.scoring import ErrorCounts, align_and_count, normalize, read_token_map, score

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ENV = dict(os.environ, PYTHONPATH=os.path.join(REPO, "steps", "libs"))


def write(path, text):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return str(path)


def run_module(module, *args):
    return subprocess.run([sys.executable, "-m", module, *map(str, args)], env=ENV,
                          capture_output=True, text=True)


# ---------------------------------------------------------------- alignment

@pytest.mark.parametrize("ref,hyp,expect", [
    ("a b c d", "a x c d e", (4, 1, 0, 1)),
    ("a b c d", "a c d", (4, 0, 1, 0)),
    ("a b", "", (2, 0, 2, 0)),
    ("", "a b", (0, 0, 0, 2)),
    ("sil a sil", "sil a sil", (3, 0, 0, 0)),
    ("a b c", "x y z", (3, 3, 0, 0)),
])
def test_align_counts(ref, hyp, expect):
    c, pairs = align_and_count(ref.split(), hyp.split())
    assert (c.ref_len, c.sub, c.dele, c.ins) == expect
    assert [r for r, _ in pairs if r != "<eps>"] == ref.split()
    assert [h for _, h in pairs if h != "<eps>"] == hyp.split()


def test_error_counts_rate_and_add():
    c = ErrorCounts(4, 1, 0, 1) + ErrorCounts(6, 0, 2, 0)
    assert c == ErrorCounts(10, 1, 2, 1)
    assert c.errors == 4 and c.corr == 7 and c.rate == pytest.approx(40.0)
    assert ErrorCounts().rate != ErrorCounts().rate  # nan


def test_summary_line_per_metric():
    c = ErrorCounts(320, 50, 30, 20)
    assert scoring.summary_line(c, "x") == "%WER 31.25 [ 100 / 320, 20 ins, 30 del, 50 sub ] x"
    assert scoring.summary_line(c, "x", "per").startswith("%PER 31.25 [")
    assert scoring.summary_line(c, "x", "cer").startswith("%CER 31.25 [")
    with pytest.raises(ValueError, match="metric"):
        scoring.summary_line(c, "x", "ter")


# ------------------------------------------------------ map, ignore, CER

def test_read_token_map(tmp_path):
    p = write(tmp_path / "m", "ao aa\n\nq\naa aa\nao aa\n")
    assert read_token_map(p) == {"ao": "aa", "q": None, "aa": "aa"}
    p = write(tmp_path / "bad.map", "aa aa\nq\nao aa\nao ah\n")
    with pytest.raises(ValueError, match=r"bad\.map:4.*'ao'"):
        read_token_map(p)
    p = write(tmp_path / "bad2.map", "aa aa\nx y z\n")
    with pytest.raises(ValueError, match=r"bad2\.map:2"):
        read_token_map(p)


def test_map_merges_give_zero_errors():
    m = {"sil": "sil", "cl": "sil", "vcl": "sil", "epi": "sil", "k": "k", "ao": "aa",
         "aa": "aa", "ix": "ih", "ih": "ih", "el": "l", "l": "l", "zh": "sh", "sh": "sh"}
    ref = "sil cl k ao ix el zh epi sil".split()
    hyp = "vcl sil k aa ih l sh sil cl".split()
    assert align_and_count(ref, hyp)[0].errors > 0
    c, _ = align_and_count(normalize(ref, "r", "per", m), normalize(hyp, "h", "per", m))
    assert c == ErrorCounts(9, 0, 0, 0)


def test_normalize_map_and_ignore():
    m = {"a": "A", "b": "B", "q": None, "sil": "SIL"}
    assert normalize("a q b".split(), "u", "wer", m) == ["A", "B"]
    # ignored tokens need not be in the map; a map target can be ignored too
    assert normalize("<noise> a sil b".split(), "u", "wer", m, ["<noise>", "SIL"]) == ["A", "B"]
    assert normalize("a <unk> b".split(), "u", "wer", None, ["<unk>"]) == ["a", "b"]
    with pytest.raises(ValueError, match=r"hyp\.txt: utterance u7: token 'zz' is not in the token map m\.map"):
        normalize(["a", "zz"], "hyp.txt: utterance u7", "wer", m, (), "the token map m.map")


def test_cer_counts_characters_not_spaces():
    assert normalize(["ab", "c"], "u", "cer") == ["a", "b", "c"]
    assert normalize(["héé", "<unk>"], "u", "cer", None, ["<unk>"]) == ["h", "é", "é"]
    ref, hyp = normalize("the cat".split(), "r", "cer"), normalize("the hat s".split(), "h", "cer")
    assert align_and_count(ref, hyp)[0] == ErrorCounts(6, 1, 0, 1)


def test_read_text(tmp_path):
    p = write(tmp_path / "text", "u1 a b\nu2\n\nu3 c\n")
    assert scoring.read_text(p) == {"u1": ["a", "b"], "u2": [], "u3": ["c"]}
    p = write(tmp_path / "dup", "u1 a\nu2 b\nu1 c\n")
    with pytest.raises(ValueError, match=r"dup:3.*u1"):
        scoring.read_text(p)


def test_score_files_errors_named(tmp_path):
    ref = write(tmp_path / "ref", "u1 a b\nu2 c\n")
    hyp = write(tmp_path / "hyp", "u1 a b\nu2 zz\n")
    mp = write(tmp_path / "tok.map", "a a\nb b\nc c\n")
    with pytest.raises(ValueError, match=r"hyp: utterance u2: token 'zz' is not in the token map .*tok\.map"):
        scoring.score_files(ref, hyp, "wer", mp)
    u2s = write(tmp_path / "utt2spk", "u1 s1\nu2 s1 s2\n")
    with pytest.raises(ValueError, match=r"utt2spk: utterance u2"):
        scoring.score_files(ref, hyp, "wer", utt2spk=u2s)
    eps = write(tmp_path / "eps", "u2 <eps>\n")
    with pytest.raises(ValueError, match="utterance u2"):
        scoring.score_files(ref, eps, "wer")


REFS = {"s1_u1": "a b c d".split(), "s1_u2": "a b".split(), "s2_u1": "c c c".split()}
U2S = {"s1_u1": "s1", "s1_u2": "s1", "s2_u1": "s2"}


def test_modes(caplog):
    hyps = {"s1_u1": "a x c d e".split(), "s2_u1": "c c".split()}
    with pytest.raises(KeyError, match="s1_u2"):
        score(REFS, hyps, U2S, mode="strict")
    r = score(REFS, hyps, U2S, mode="present")
    assert list(r.per_utt) == ["s1_u1", "s2_u1"]
    assert r.total == ErrorCounts(7, 1, 1, 1)
    with caplog.at_level(logging.WARNING):
        r = score(REFS, hyps, U2S, mode="all")
    assert "1 utterance" in caplog.text and "s1_u2" in caplog.text
    assert r.total == ErrorCounts(9, 1, 3, 1)
    with pytest.raises(KeyError, match="zz"):
        score(REFS, dict(hyps, zz=["a"]), U2S)
    with pytest.raises(ValueError):
        score(REFS, hyps, U2S, mode="bogus")


def test_per_speaker_sums_to_total():
    hyps = {"s1_u1": "a x c d e".split(), "s1_u2": ["b"], "s2_u1": "c d".split()}
    r = score(REFS, hyps, U2S)
    assert list(r.per_spk) == ["s1", "s2"] and r.spk_nutt == {"s1": 2, "s2": 1}
    assert r.per_spk["s1"] + r.per_spk["s2"] == r.total
    assert sum(score(REFS, hyps, None).per_spk.values(), ErrorCounts()) == r.total


def test_cli_per_with_token_map(tmp_path):
    mp = write(tmp_path / "map", "aa aa\nao aa\nvcl sil\ncl sil\nsil sil\nk k\nzh sh\nsh sh\n")
    ref = write(tmp_path / "ref", "spkA_1 sil k ao cl k zh sil\nspkA_2 aa k\nspkB_1 sil aa sil\n")
    hyp = write(tmp_path / "hyp", "spkA_1 sil k aa k zh sil\nspkA_2 k aa sh\nspkB_1 vcl aa\n")
    u2s = write(tmp_path / "utt2spk", "spkA_1 A\nspkA_2 A\nspkB_1 B\n")
    out = tmp_path / "out"
    args = ["--metric", "per", "--token-map", mp, "--utt2spk", u2s]
    p = run_module("mtlasr.bin.compute_error_rate", *args, ref, hyp, out)
    assert p.returncode == 0, p.stderr
    # mapped refs: 7 + 2 + 3 = 12 phones; utt1: 1 del (sil <- cl);
    # utt2: 1 ins + 1 sub; utt3: 1 del. 4 errors.
    expect = f"%PER 33.33 [ 4 / 12, 1 ins, 2 del, 1 sub ] {hyp}"
    assert p.stdout.strip() == expect
    assert (out / "per").read_text().strip() == expect
    spk = (out / "per_spk").read_text().splitlines()
    assert spk[0].split() == ["speaker", "#utt", "#phones", "corr", "sub", "del", "ins", "err", "PER"]
    assert spk[-1].split() == ["SUM", "3", "12", "9", "1", "2", "1", "4", "33.33"]
    assert len({len(line) for line in spk}) == 1  # aligned columns
    utt = (out / "per_utt").read_text().splitlines()
    assert len(utt) == 12 and utt[3] == "spkA_1 #csid 6 0 1 0"
    assert utt[4:8] == ["spkA_2 ref  *** aa k", "spkA_2 hyp  k   aa sh",
                        "spkA_2 op   I   C  S", "spkA_2 #csid 1 1 0 1"]
    assert not list(out.glob("*.tmp"))
    p = run_module("mtlasr.bin.compute_error_rate", *args, "--mode", "strict", ref,
                   tmp_path / "nope", out)
    assert p.returncode == 1 and "nope" in p.stderr and "Traceback" not in p.stderr


def test_cli_wer_ignore_and_cer(tmp_path):
    ref = write(tmp_path / "ref", "u1 the cat <noise> sat\nu2 a dog\n")
    hyp = write(tmp_path / "hyp", "u1 the hat sat <noise> <noise>\nu2 a dog\n")
    p = run_module("mtlasr.bin.compute_error_rate", "--ignore", "<noise> <unk>", ref, hyp,
                   tmp_path / "w")
    assert p.returncode == 0, p.stderr
    assert p.stdout.startswith("%WER 20.00 [ 1 / 5, 0 ins, 0 del, 1 sub ]")
    assert sorted(os.listdir(tmp_path / "w")) == ["wer", "wer_spk", "wer_utt"]
    p = run_module("mtlasr.bin.compute_error_rate", "--metric", "cer", "--ignore", "<noise>",
                   ref, hyp, tmp_path / "c")
    assert p.returncode == 0, p.stderr
    # "thecatsat" + "adog" = 13 characters, c -> h: 1 substitution
    assert p.stdout.startswith("%CER 7.69 [ 1 / 13, 0 ins, 0 del, 1 sub ]")
    assert (tmp_path / "c" / "cer_spk").read_text().split()[2] == "#chars"


# ----------------------------------------------------------- significance

def utt_counts(errors, ref_len):
    return {f"u{i:03d}": ErrorCounts(n, e, 0, 0) for i, (e, n) in enumerate(zip(errors, ref_len))}


RNG = np.random.default_rng(1)
LENS = RNG.integers(5, 30, size=60)
ERR_A = np.minimum(RNG.integers(0, 8, size=60), LENS)


def test_read_utt_counts_round_trip(tmp_path):
    r = score(REFS, {"s1_u1": "a x c d e".split(), "s2_u1": ["c"]}, U2S)
    scoring.write_report(r, tmp_path, "sys", "wer")
    counts = significance.read_utt_counts(tmp_path / "wer_utt")
    assert counts == {u: c for u, (c, _) in r.per_utt.items()}
    bad = write(tmp_path / "bad_utt", "u1 ref a\nu1 #csid 1 0 0 0\nu2 #csid 1 x 0 0\n")
    with pytest.raises(ValueError, match=r"bad_utt:3"):
        significance.read_utt_counts(bad)
    dup = write(tmp_path / "dup_utt", "u1 #csid 1 0 0 0\nu1 #csid 1 0 0 0\n")
    with pytest.raises(ValueError, match=r"dup_utt:2.*u1"):
        significance.read_utt_counts(dup)


def test_pair_systems_errors():
    a = utt_counts([1, 2, 3], [5, 5, 5])
    b = dict(a)
    del b["u001"]
    with pytest.raises(ValueError, match=r"utterance u001 is scored in sysA but not in sysB"):
        significance.pair_systems(a, b, "sysA", "sysB")
    with pytest.raises(ValueError, match=r"utterance u001 is scored in sysB but not in sysA"):
        significance.pair_systems(b, a, "sysA", "sysB")
    c = dict(a, u002=ErrorCounts(6, 0, 0, 0))
    with pytest.raises(ValueError, match="u002.*same references"):
        significance.compare(a, c)


def test_identical_systems():
    a = utt_counts(ERR_A, LENS)
    r = significance.compare(a, a, num_samples=500, seed=3)
    assert r.diff == 0.0 and r.ci_diff == (0.0, 0.0)
    assert r.prob_improvement == pytest.approx(0.5) and r.p_value == 1.0
    assert r.ci_a == r.ci_b and r.ci_a[0] < r.rate_a < r.ci_a[1]


def test_better_on_every_utterance():
    a = utt_counts(ERR_A + 2, LENS + 2)
    b = utt_counts(ERR_A + 1, LENS + 2)
    r = significance.compare(a, b, num_samples=2000, seed=0)
    assert r.p_value < 0.01 and r.prob_improvement == 1.0
    assert r.diff < 0 and r.ci_diff[1] < 0
    worse = significance.compare(b, a, num_samples=2000, seed=0)
    assert worse.prob_improvement == 0.0 and worse.p_value < 0.01 and worse.diff == -r.diff


def test_seed_reproducible_and_interval_contains_diff(monkeypatch):
    a = utt_counts(ERR_A, LENS)
    b = utt_counts(np.maximum(ERR_A + RNG.integers(-2, 2, size=60), 0), LENS)
    r1 = significance.compare(a, b, num_samples=1000, seed=7)
    r2 = significance.compare(a, b, num_samples=1000, seed=7)
    assert r1 == r2
    assert significance.compare(a, b, num_samples=1000, seed=8) != r1
    assert r1.ci_diff[0] <= r1.diff <= r1.ci_diff[1]
    assert r1.ci_a[0] <= r1.rate_a <= r1.ci_a[1] and r1.ci_b[0] <= r1.rate_b <= r1.ci_b[1]
    assert 0.0 < r1.p_value <= 1.0 and 0.0 <= r1.prob_improvement <= 1.0
    monkeypatch.setattr(significance, "_BLOCK_INDICES", 7 * 60)  # blocks of 7 resamples
    assert significance.compare(a, b, num_samples=1000, seed=7) == r1
    with pytest.raises(ValueError, match="num_samples"):
        significance.compare(a, b, num_samples=0)


def test_compare_systems_cli(tmp_path):
    for name, hyps in (("A", {"s1_u1": "a x c d e".split(), "s2_u1": ["c"]}),
                       ("B", {"s1_u1": "a b c d".split(), "s2_u1": "c c".split()})):
        scoring.write_report(score(REFS, hyps, U2S), tmp_path / name, name, "per")
    js = tmp_path / "out" / "cmp.json"
    p = run_module("mtlasr.bin.compare_systems", "--metric", "per", "--num-samples", "200",
                   "--json", js, tmp_path / "A", tmp_path / "B")
    assert p.returncode == 0, p.stderr
    assert "%PER A" in p.stdout and "p-value" in p.stdout
    rec = json.loads(js.read_text())
    assert rec["metric"] == "per" and rec["num_samples"] == 200 and rec["num_utts"] == 3
    assert rec["rate_a"] == pytest.approx(100 * 6 / 9) and len(rec["ci_diff"]) == 2
    p = run_module("mtlasr.bin.compare_systems", tmp_path / "A", tmp_path / "B")
    assert p.returncode == 1 and "wer_utt" in p.stderr and "Traceback" not in p.stderr


# ------------------------------------------------------------- score.sh

def score_sh(*args):
    cmd = ". ./path.sh && steps/score.sh " + " ".join(f"'{a}'" for a in args)
    return subprocess.run(["bash", "-c", cmd], cwd=REPO, capture_output=True, text=True)


def make_decode_dir(path, hyps_by_pair):
    """A decode dir with scoring/<w>_<p>/hyp.{1,2}.tra (the utterances split over 2 jobs)."""
    for pair, hyps in hyps_by_pair.items():
        lines = [f"{u} {h}\n" for u, h in hyps.items()]
        write(path / "scoring" / pair / "hyp.1.tra", "".join(lines[1::2]))
        write(path / "scoring" / pair / "hyp.2.tra", "".join(lines[0::2]))
    write(path / ".decode.record", "code x\noptions \n")
    return path


DATA_TEXT = {"s1_u1": "the cat sat", "s1_u2": "a dog", "s2_u1": "on the mat <noise>"}


@pytest.fixture
def data_dir(tmp_path):
    write(tmp_path / "data" / "text", "".join(f"{u} {t}\n" for u, t in DATA_TEXT.items()))
    write(tmp_path / "data" / "utt2spk", "s1_u1 s1\ns1_u2 s1\ns2_u1 s2\n")
    return tmp_path / "data"


def test_score_sh_picks_best_and_lmwt_from(tmp_path, data_dir):
    bad = {"s1_u1": "the cat", "s1_u2": "a dog dog", "s2_u1": "on the mat"}
    good = dict(bad, s1_u2="a dog")
    dev = make_decode_dir(tmp_path / "decode_dev", {"2_0.0": bad, "2_1.0": bad,
                                                    "10_0.0": bad, "10_1.0": good})
    p = score_sh("--ignore", "<noise>", data_dir, dev)
    assert p.returncode == 0, p.stderr
    assert (dev / "lmwt").read_text() == "10\n" and (dev / "wip").read_text() == "1.0\n"
    best = dev / "scoring" / "10_1.0"
    for f in ("wer", "wer_spk", "wer_utt"):
        assert (dev / f).read_text() == (best / f).read_text()
    assert (dev / "wer").read_text().startswith("%WER 12.50 [ 1 / 8, 0 ins, 1 del, 0 sub ]")
    assert (best / "hyp.txt").read_text().splitlines()[0].startswith("s1_u1 ")
    assert (dev / "scoring" / "2_0.0" / "score.log").is_file()
    assert "%WER 12.50" in p.stderr and "LM weight 10, penalty 1.0" in p.stderr
    assert not list(dev.glob("*.tmp"))

    # the test set is best at another pair, but --lmwt-from takes dev's
    test = make_decode_dir(tmp_path / "decode_test", {"2_0.0": good, "10_1.0": bad})
    p = score_sh("--lmwt-from", dev, data_dir, test)
    assert p.returncode == 0, p.stderr
    assert (test / "lmwt").read_text() == "10\n" and (test / "wip").read_text() == "1.0\n"
    assert (test / "wer").read_text().startswith("%WER 33.33 [ 3 / 9,")  # <noise> scored
    p = score_sh(data_dir, test)
    assert p.returncode == 0 and (test / "lmwt").read_text() == "2\n"

    other = make_decode_dir(tmp_path / "decode_other", {"2_0.0": good})
    p = score_sh("--lmwt-from", dev, data_dir, other)
    assert p.returncode != 0
    assert "LM weight 10, penalty 1.0" in p.stderr and str(dev) in p.stderr


def test_score_sh_ties_cer_and_errors(tmp_path, data_dir):
    same = {"s1_u1": "the cat sat", "s1_u2": "a dig", "s2_u1": "on the mat"}
    d = make_decode_dir(tmp_path / "decode", {"10_0.0": same, "2_1.0": same, "2_0.5": same})
    p = score_sh("--metric", "cer", "--ignore", "<noise>", data_dir, d)
    assert p.returncode == 0, p.stderr
    # ties: the smaller LM weight (numerically), then the smaller penalty
    assert (d / "lmwt").read_text() == "2\n" and (d / "wip").read_text() == "0.5\n"
    assert (d / "cer").read_text().startswith("%CER 4.76 [ 1 / 21,")
    assert sorted(f.name for f in d.iterdir() if f.is_file() and not f.name.startswith(".")) == \
        ["cer", "cer_spk", "cer_utt", "lmwt", "wip"]

    mp = write(tmp_path / "words.map", "the the\ncat cat\nsat sat\na a\ndog dog\non on\nmat mat\n")
    p = score_sh("--token-map", mp, data_dir, d)
    assert p.returncode != 0
    log = d / "scoring" / "10_0.0" / "score.log"
    assert f"see {log}" in p.stderr
    assert "token '<noise>' is not in the token map" in log.read_text()

    (d / ".decode.record").unlink()
    p = score_sh(data_dir, d)
    assert p.returncode != 0 and ".decode.record" in p.stderr


def test_read_summary_reads_what_summary_line_writes(tmp_path):
    from mtlasr.scoring import read_summary, summary_line

    c = ErrorCounts(320, 50, 30, 20)
    for metric in ("wer", "per", "cer"):
        f = tmp_path / metric
        f.write_text(summary_line(c, "exp/x/hyp.txt", metric) + "\n")
        assert read_summary(f) == (100, 320)
    assert read_summary(tmp_path / "absent") is None
    (tmp_path / "bad").write_text("WER is 3\n")
    with pytest.raises(ValueError, match="bad: not an error-rate summary line"):
        read_summary(tmp_path / "bad")
