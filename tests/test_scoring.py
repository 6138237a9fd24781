import logging
import os
import subprocess
import sys

import pytest

from mtlasr import scoring
from mtlasr.scoring import ErrorCounts, align_and_count, fold, read_phone_map, score

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
REAL_MAP = os.path.join(REPO, "conf", "phones.60-48-39.map")  # the recipe's copy of the standard map
needs_map = pytest.mark.skipif(not os.path.exists(REAL_MAP), reason="TIMIT phone map not found")


def write(path, text):
    path.write_text(text)
    return str(path)


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


@needs_map
def test_fold_real_map():
    m48 = read_phone_map(REAL_MAP, 1, 2)
    assert fold("cl vcl epi sil".split(), m48, "u1") == ["sil"] * 4
    assert fold(["ao", "zh", "ix", "el", "en"], m48, "u1") == ["aa", "sh", "ih", "l", "n"]
    assert len(set(m48.values())) == 39 and len(m48) == 48
    m60 = read_phone_map(REAL_MAP, 0, 2)
    assert fold(["h#", "q", "bcl", "b", "ax-h"], m60, "u1") == ["sil", "sil", "b", "ah"]
    with pytest.raises(ValueError, match=r"utt7.*'xyz'"):
        fold(["aa", "xyz"], m48, "utt7")


@needs_map
def test_fold_merged_phones_give_zero_errors():
    m = read_phone_map(REAL_MAP, 1, 2)
    ref = "sil cl k ao ix el zh epi sil".split()
    hyp = "vcl sil k aa ih l sh sil cl".split()
    assert align_and_count(ref, hyp)[0].errors > 0
    c, _ = align_and_count(fold(ref, m, "r"), fold(hyp, m, "h"))
    assert c == ErrorCounts(9, 0, 0, 0)


def test_malformed_map(tmp_path):
    p = write(tmp_path / "bad.map", "aa aa aa\nq\nbcl vcl\n")
    with pytest.raises(ValueError, match=r"bad\.map:3"):
        read_phone_map(p, 1, 2)
    p = write(tmp_path / "bad2.map", "aa aa aa\nx y z w\n")
    with pytest.raises(ValueError, match=r"bad2\.map:2"):
        read_phone_map(p, 0, 2)


def test_read_text(tmp_path):
    p = write(tmp_path / "text", "u1 a b\nu2\n\nu3 c\n")
    assert scoring.read_text(p) == {"u1": ["a", "b"], "u2": [], "u3": ["c"]}
    p = write(tmp_path / "dup", "u1 a\nu2 b\nu1 c\n")
    with pytest.raises(ValueError, match=r"dup:3.*u1"):
        scoring.read_text(p)


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


def test_cli_end_to_end(tmp_path):
    mp = write(tmp_path / "map", "aa aa aa\nao ao aa\nbcl vcl sil\nkcl cl sil\nh# sil sil\n"
               "k k k\nzh zh sh\nsh sh sh\nq\n")
    ref = write(tmp_path / "ref", "spkA_1 sil k ao cl k zh sil\nspkA_2 aa k\nspkB_1 sil aa sil\n")
    hyp = write(tmp_path / "hyp", "spkA_1 sil k aa k zh sil\nspkA_2 k aa sh\nspkB_1 vcl aa\n")
    u2s = write(tmp_path / "utt2spk", "spkA_1 A\nspkA_2 A\nspkB_1 B\n")
    out = tmp_path / "out"
    env = dict(os.environ, PYTHONPATH=os.path.join(REPO, "steps", "libs"))
    cmd = [sys.executable, "-m", "mtlasr.bin.compute_per", "--phone-map", mp,
           "--utt2spk", u2s, ref, hyp, str(out)]
    p = subprocess.run(cmd, env=env, capture_output=True, text=True)
    assert p.returncode == 0, p.stderr
    # folded refs: 7 + 2 + 3 = 12 phones; utt1: 1 del (sil <- cl);
    # utt2: 1 ins + 1 sub; utt3: 1 del. 4 errors.
    expect = f"%PER 33.33 [ 4 / 12, 1 ins, 2 del, 1 sub ] {hyp}"
    assert p.stdout.strip() == expect
    assert (out / "per").read_text().strip() == expect
    spk = (out / "per_spk").read_text().splitlines()
    assert spk[0].split() == ["speaker", "#utt", "#phones", "corr", "sub", "del", "ins", "err", "PER"]
    assert spk[-1].split() == ["SUM", "3", "12", "9", "1", "2", "1", "4", "33.33"]
    assert len({len(l) for l in spk}) == 1  # aligned columns
    utt = (out / "per_utt").read_text().splitlines()
    assert len(utt) == 12 and utt[3] == "spkA_1 #csid 6 0 1 0"
    assert utt[4:8] == ["spkA_2 ref  *** aa k", "spkA_2 hyp  k   aa sh",
                        "spkA_2 op   I   C  S", "spkA_2 #csid 1 1 0 1"]
    assert not list(out.glob("*.tmp"))
    p = subprocess.run(cmd[:-3] + ["--mode", "strict", ref, str(tmp_path / "nope"), str(out)],
                       env=env, capture_output=True, text=True)
    assert p.returncode == 1 and "nope" in p.stderr and "Traceback" not in p.stderr
