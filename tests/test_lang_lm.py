"""Tests for the lang dir (mtlasr.lang, utils/prepare_lang.sh) and the LM step
(steps/train_lm.sh, utils/format_lm.sh, mtlasr.lm), down to a decoding graph."""
import math
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from conftest import ROOT, SAMPLE  # noqa: E402
from mtlasr.lang import Lang, add_disambig, prepare_lang
from mtlasr.lm import read_ppl_file

# A word lexicon with a prefix pronunciation (ab < abc), a homophone pair
# (cab, kab), a word with two pronunciations (the), and the OOV word.
WORD_LEXICON = """<unk> spn
ab a b
abc a b c
cab c a b
kab c a b
the d e
the d a
e e
"""
# LM text in which every bigram and trigram order has n-grams seen twice
# (else Kneser-Ney discounts are 1 and the LM is degenerate).
LM_TEXT = ["ab the e", "the abc cab", "kab the zz", "e e ab", "ab the e", "the e ab", "e ab"]


def run(args, check=True):
    """Run a script from the repository root; return the CompletedProcess."""
    env = dict(os.environ, PYTHONPATH=str(ROOT / "steps" / "libs"))
    res = subprocess.run([str(a) for a in args], cwd=ROOT, capture_output=True, text=True, timeout=120,
                         env=env)
    if check and res.returncode != 0:
        raise AssertionError(f"{args} failed ({res.returncode}):\n{res.stdout}\n{res.stderr}")
    return res


def write_dict(d: Path, lexicon: str, silence="sil spn", nonsilence="a b\nc d e", lexicon_name="lexicon.txt"):
    d.mkdir(parents=True, exist_ok=True)
    (d / "silence_phones.txt").write_text(silence.replace(" ", "\n") + "\n")
    (d / "nonsilence_phones.txt").write_text(nonsilence + "\n")
    (d / "optional_silence.txt").write_text("sil\n")
    (d / lexicon_name).write_text(lexicon)
    return d


def write_text(path: Path, lines, prefix="u"):
    path.write_text("".join(f"{prefix}{i:02d} {s}\n" for i, s in enumerate(lines)))
    return path


def best_path(lang: Lang, phones, disambig=False):
    """(words, cost) of the cheapest path of L that reads ``phones``, or None."""
    import kaldifst

    a = kaldifst.make_linear_acceptor([lang.phone2id[p] for p in phones])
    L = lang.lexicon_fst(disambig)
    kaldifst.arcsort(L, sort_type="ilabel")
    best = kaldifst.shortest_path(kaldifst.compose(a, L))
    if best.num_states == 0:
        return None
    ok, _, olabels, weight = kaldifst.get_linear_symbol_sequence(best)
    assert ok
    return [lang.id2word[o] for o in olabels], weight.value


@pytest.fixture(scope="module")
def word_lang(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("word")
    write_dict(tmp / "dict", WORD_LEXICON)
    prepare_lang(tmp / "dict", tmp / "lang", "<unk>", sil_prob=0.5, tmp_dir=tmp / "lang_tmp")
    return tmp


# ------------------------------------------------------------ (a) TIMIT style
def test_phone_lexicon_without_optional_silence(tmp_path):
    import kaldifst

    phones = ["aa", "b", "iy", "sil", "z"]
    write_dict(tmp_path / "dict", "".join(f"{p} {p}\n" for p in phones), silence="sil",
               nonsilence="aa b iy z")
    run([ROOT / "utils/prepare_lang.sh", "--sil-prob", "0", "--num-sil-states", "3", tmp_path / "dict",
         "sil", tmp_path / "tmp", tmp_path / "lang"])
    lang = Lang(tmp_path / "lang")
    assert [p for p in lang.phone2id if p.startswith("#")] == ["#0"]
    assert lang.oov_word == "sil" and lang.oov_id == lang.word2id["sil"]
    L = lang.lexicon_fst()
    assert L.num_states == 1 and L.start == 0 and L.final(0).value == 0.0
    arcs = sorted((a.ilabel, a.olabel, a.weight.value, a.nextstate) for a in kaldifst.ArcIterator(L, 0))
    assert arcs == sorted((lang.phone2id[p], lang.word2id[p], 0.0, 0) for p in phones)
    Ld = lang.lexicon_fst(disambig=True)
    assert Ld.num_states == 1
    loops = [(a.ilabel, a.olabel) for a in kaldifst.ArcIterator(Ld, 0) if a.ilabel == lang.phone2id["#0"]]
    assert loops == [(lang.phone2id["#0"], lang.word2id["#0"])]
    topo = lang.topology()
    assert sorted(topo.phones) == sorted(lang.phone2id[p] for p in phones)
    assert (tmp_path / "lang/topo").read_text().count("<TopologyEntry>") == 1  # 3 states for all


def test_position_dependent_phones_are_refused(tmp_path):
    write_dict(tmp_path / "dict", WORD_LEXICON)
    r = run([ROOT / "utils/prepare_lang.sh", "--position-dependent-phones", "true", tmp_path / "dict",
             "<unk>", tmp_path / "tmp", tmp_path / "lang"], check=False)
    assert r.returncode != 0 and "not supported" in r.stderr
    assert not (tmp_path / "lang").exists()


# ------------------------------------------------------------ (b) word lexicon
def test_disambiguation_symbols(word_lang):
    lines = (word_lang / "lang_tmp/lexiconp_disambig.txt").read_text().splitlines()
    assert lines == (word_lang / "lang/lexiconp_disambig.txt").read_text().splitlines()
    entries = {(f[0], " ".join(f[2:])) for f in map(str.split, lines)}
    assert entries == {("<unk>", "spn"), ("ab", "a b #1"), ("abc", "a b c"), ("cab", "c a b #1"),
                       ("kab", "c a b #2"), ("the", "d e"), ("the", "d a"), ("e", "e")}
    phones = (word_lang / "lang/phones.txt").read_text().split()[::2]
    # #1, #2 for the lexicon, #3 after the optional silence in L_disambig
    assert phones[-4:] == ["#0", "#1", "#2", "#3"]
    lang = Lang(word_lang / "lang")
    assert lang.disambig_ids == [lang.phone2id[f"#{i}"] for i in range(4)]
    assert (word_lang / "lang/phones/wdisambig_phones.int").read_text().split() == [str(lang.phone2id["#0"])]
    assert (word_lang / "lang/phones/wdisambig_words.int").read_text().split() == [str(lang.word2id["#0"])]
    words = (word_lang / "lang/words.txt").read_text().split()[::2]
    assert words[0] == "<eps>" and words[-3:] == ["#0", "<s>", "</s>"]
    assert (word_lang / "lang/oov.int").read_text().split() == [str(lang.word2id["<unk>"])]
    for name in ("silence", "nonsilence", "optional_silence", "disambig"):
        for ext in ("txt", "int", "csl"):
            assert (word_lang / f"lang/phones/{name}.{ext}").is_file()
    assert (word_lang / "lang/phones/optional_silence.txt").read_text() == "sil\n"
    # L_disambig keeps ab apart from the start of abc, and cab from kab.
    assert best_path(lang, ["a", "b", "#1"], disambig=True)[0] == ["ab"]
    assert best_path(lang, ["c", "a", "b", "#2"], disambig=True)[0] == ["kab"]


def test_add_disambig_duplicates_and_prefixes():
    out, n = add_disambig([["a"], ["a"], ["a", "b"], ["b"], ["a", "b", "c"]])
    assert out == [["a", "#1"], ["a", "#2"], ["a", "b", "#1"], ["b"], ["a", "b", "c"]] and n == 2


@pytest.mark.parametrize("sil_prob", [0.5, 0.2])
def test_optional_silence_costs(tmp_path, sil_prob):
    write_dict(tmp_path / "dict", WORD_LEXICON)
    prepare_lang(tmp_path / "dict", tmp_path / "lang", "<unk>", sil_prob=sil_prob)
    lang = Lang(tmp_path / "lang")
    no_sil, sil = -math.log(1 - sil_prob), -math.log(sil_prob)
    cases = {  # phones -> (words, cost: before the first word, then after each word)
        ("a", "b", "d", "e"): (["ab", "the"], 3 * no_sil),
        ("a", "b", "sil", "d", "e"): (["ab", "the"], 2 * no_sil + sil),
        ("sil", "a", "b", "c", "sil"): (["abc"], sil + sil),
        ("d", "a", "sil", "e", "sil", "e"): (["the", "e", "e"], 2 * no_sil + 2 * sil),
    }
    for phones, (words, cost) in cases.items():
        got = best_path(lang, phones)
        assert got is not None and got[0] == words and got[1] == pytest.approx(cost, abs=1e-4), phones
    assert best_path(lang, ["a", "sil", "b"]) is None  # no silence inside a word
    assert best_path(lang, ["c", "a", "b"])[0] in (["cab"], ["kab"])


def test_pronunciation_probabilities(tmp_path):
    lexp = "<unk> 1.0 spn\nthe 0.5 d e\nthe 0.25 d a\ne 0.8 e\n"
    write_dict(tmp_path / "dict", lexp, lexicon_name="lexiconp.txt")
    prepare_lang(tmp_path / "dict", tmp_path / "lang", "<unk>", sil_prob=0.0)
    lang = Lang(tmp_path / "lang")
    assert (tmp_path / "lang/lexiconp.txt").read_text() == lexp
    assert best_path(lang, ["d", "e"])[1] == pytest.approx(0.0, abs=1e-5)  # scaled to 1
    assert best_path(lang, ["d", "a"])[1] == pytest.approx(math.log(2), abs=1e-5)  # 0.25 / 0.5
    assert best_path(lang, ["e"])[1] == pytest.approx(0.0, abs=1e-5)


def test_oov_mapping_is_counted(word_lang, tmp_path):
    lang = Lang(word_lang / "lang")
    ids = lang.words_to_ids(["ab", "zz", "the", "yy"], "u1")
    lang.words_to_ids(["the", "e"], "u2")
    assert ids == [lang.word2id["ab"], lang.oov_id, lang.word2id["the"], lang.oov_id]
    assert (lang.oov.oov_tokens, lang.oov.oov_utts, lang.oov.tokens, lang.oov.utts) == (2, 1, 6, 2)
    assert lang.oov_summary().startswith("2 OOV tokens (33.33% of 6) in 1 of 2 utterances, mapped to <unk>")
    with pytest.raises(KeyError, match="utterance u3: '#0' is a reserved symbol"):
        lang.words_to_ids(["#0"], "u3")
    write_dict(tmp_path / "dict", WORD_LEXICON)
    prepare_lang(tmp_path / "dict", tmp_path / "lang", None, sil_prob=0.0)
    lang = Lang(tmp_path / "lang")
    assert lang.oov_word is None and lang.oov_id is None and not (tmp_path / "lang/oov.txt").exists()
    with pytest.raises(KeyError, match="utterance u9: word 'zz' is not in"):
        lang.words_to_ids(["ab", "zz"], "u9")


@pytest.mark.parametrize("change, oov, msg", [
    ({"lexicon.txt": WORD_LEXICON + "foo a x\n"}, "<unk>", r"lexicon.txt:9: word 'foo' uses phone 'x'"),
    ({"nonsilence_phones.txt": "a b\nc d e\nb\n"}, "<unk>",
     r"nonsilence_phones.txt:3: phone 'b' is declared twice \(also at .*nonsilence_phones.txt:1\)"),
    ({"silence_phones.txt": "sil\nspn a\n"}, "<unk>", r"nonsilence_phones.txt:1: phone 'a' is declared twice"),
    ({"lexicon.txt": WORD_LEXICON + "foo\n"}, "<unk>", r"lexicon.txt:9: word 'foo' has an empty pronunciation"),
    ({"nonsilence_phones.txt": "a b #1\nc d e\n"}, "<unk>", r"nonsilence_phones.txt:1: phone '#1' is reserved"),
    ({"lexicon.txt": "<s> sil\n" + WORD_LEXICON}, "<unk>", r"lexicon.txt:1: word '<s>' is reserved"),
    ({"lexicon.txt": WORD_LEXICON + "</s> sil\n"}, "<unk>", r"lexicon.txt:9: word '</s>' is reserved"),
    ({"lexicon.txt": WORD_LEXICON + "#0 sil\n"}, "<unk>", r"lexicon.txt:9: word '#0' is reserved"),
    ({"lexicon.txt": WORD_LEXICON + "ab a b\n"}, "<unk>", r"lexicon.txt:9: .* already at .*lexicon.txt:2"),
    ({}, "<oov>", r"lexicon.txt: the OOV word '<oov>' is not in the lexicon"),
    ({"optional_silence.txt": "a\n"}, "<unk>", r"optional_silence.txt: must hold one phone of silence"),
    ({"lexiconp.txt": "<unk> 1.0 spn\nab 1.5 a b\n"}, "<unk>", r"lexiconp.txt:2: .*must be in \(0, 1\]"),
    ({"lexiconp.txt": "<unk> 1.0 spn\nab a b\n"}, "<unk>", r"lexiconp.txt:2: .*'a' is not a number"),
])
def test_dict_errors_name_file_and_line(tmp_path, change, oov, msg):
    d = write_dict(tmp_path / "dict", WORD_LEXICON)
    for name, text in change.items():
        (d / name).write_text(text)
    (tmp_path / "lang").mkdir()
    (tmp_path / "lang/old").write_text("x")
    with pytest.raises(ValueError, match=msg):
        prepare_lang(d, tmp_path / "lang", oov, sil_prob=0.5)
    assert (tmp_path / "lang/old").is_file()  # the previous lang dir is untouched
    assert sorted(p.name for p in tmp_path.iterdir()) == ["dict", "lang"]  # no temp dir left


def test_prepare_lang_script_reports_dict_errors(tmp_path):
    write_dict(tmp_path / "dict", WORD_LEXICON + "foo\n")
    r = run([ROOT / "utils/prepare_lang.sh", tmp_path / "dict", "<unk>", tmp_path / "tmp",
             tmp_path / "lang"], check=False)
    assert r.returncode == 1 and "lexicon.txt:9: word 'foo' has an empty pronunciation" in r.stderr


# ------------------------------------------------------------ (c) LM and graph
def test_word_lm_format_lm_and_graph(word_lang, tmp_path):
    from mtlasr import gmm
    from mtlasr.graph import make_hclg

    text = write_text(tmp_path / "text", LM_TEXT)
    dev = write_text(tmp_path / "dev", ["ab the e", "the qq e ab"], prefix="d")
    lm = tmp_path / "lm"
    run([ROOT / "steps/train_lm.sh", "--order", "3", "--dev-text", dev, "--vocab", word_lang / "lang/words.txt",
         "--oov-word", "<unk>", text, lm])
    assert "kab the <unk>" in (lm / "train.txt").read_text().splitlines()
    arpa = (lm / "lm.arpa").read_text()
    assert re.search(r"^ngram 3=\d+$", arpa, re.M) and "\t<unk>\t" in arpa
    ppl = read_ppl_file(lm / "ppl_dev")
    assert ppl["sentences"] == 2 and ppl["tokens"] == 7 and ppl["oov_tokens"] == 1
    assert ppl["oov_rate"] == pytest.approx(1 / 7, abs=1e-4) and 1 < ppl["ppl"] < 20
    summary = (lm / "summary").read_text()
    assert "1-grams" in summary and "3-grams" in summary and "oov_rate=0.1429" in summary
    assert {"text.log", "train.log", "ppl_dev.log"} <= {p.name for p in (lm / "log").iterdir()}

    run([ROOT / "utils/format_lm.sh", word_lang / "lang", lm / "lm.arpa", tmp_path / "lang_test"])
    assert (tmp_path / "lang_test/G.fst").is_file() and (tmp_path / "lang_test/L_disambig.fst").is_file()
    assert "all 9 ARPA words are in" in (tmp_path / "lang_test/format_lm.log").read_text()

    lang = Lang(tmp_path / "lang_test")
    feats = [np.random.default_rng(0).standard_normal((50, 13)).astype(np.float32)]
    tm, tree, _ = gmm.init_mono(lang.topology(), feats)
    hclg = make_hclg(lang, tm, tree)
    assert hclg.num_states > 0
    # training graphs (L.fst with optional silence) for a transcript with an OOV word
    compiler = gmm.graph_compiler(tm, tree, lang.lexicon_fst())
    assert compiler.compile_graph_from_text(lang.words_to_ids(["ab", "zz", "the"], "u1")).num_states > 0


def test_format_lm_reports_arpa_words_missing_from_words_txt(word_lang, tmp_path):
    import gzip

    lm = tmp_path / "lm"
    run([ROOT / "steps/train_lm.sh", "--order", "2", write_text(tmp_path / "text", LM_TEXT), lm])
    with gzip.open(tmp_path / "lm.arpa.gz", "wt") as f:  # gzipped input works too
        f.write((lm / "lm.arpa").read_text())
    r = run([ROOT / "utils/format_lm.sh", word_lang / "lang", tmp_path / "lm.arpa.gz", tmp_path / "lang_test"])
    assert "1 of 9 ARPA words are not in" in r.stderr and "(zz)" in r.stderr
    assert (tmp_path / "lang_test/G.fst").is_file()
    r = run([sys.executable, "-m", "mtlasr.bin.arpa_to_g", "--oov-policy", "error", tmp_path / "lm.arpa.gz",
             word_lang / "lang/words.txt", tmp_path / "G.fst"], check=False)
    assert r.returncode == 1 and "ARPA words are not in" in r.stderr and not (tmp_path / "G.fst").exists()


def test_char_lm(tmp_path):
    text = write_text(tmp_path / "text", LM_TEXT)
    dev = write_text(tmp_path / "dev", ["ab the", "bad cab"], prefix="d")
    lm = tmp_path / "lm"
    run([ROOT / "steps/train_lm.sh", "--unit", "char", "--order", "4", "--dev-text", dev, text, lm])
    assert (lm / "train.txt").read_text().splitlines()[0] == "a b <space> t h e <space> e"
    ppl = read_ppl_file(lm / "ppl_dev")
    assert ppl["tokens"] == len("ab the".replace(" ", "")) + 1 + len("bad cab".replace(" ", "")) + 1
    # 'd' is not in the training text: without an OOV word its sentence is left out
    assert ppl["oov_tokens"] == 1 and ppl["skipped_sentences"] == 1 and 1 < ppl["ppl"] < 20
    r = run([ROOT / "steps/train_lm.sh", "--unit", "char", "--order", "4", "--dev-text", dev, text, lm])
    assert "up to date; skipping" in r.stderr  # same inputs and options
    r = run([ROOT / "steps/train_lm.sh", "--oov-word", "<unk>", text, lm], check=False)
    assert r.returncode == 1 and "--oov-word needs --vocab" in r.stderr


# ------------------------------------------------------------ (d) TIMIT lexicon
def test_timit_word_lexicon(tmp_path):
    timitdic = SAMPLE / "timitdic.txt"
    if not timitdic.is_file():
        pytest.skip(f"{timitdic} is absent")
    lexicon, phones = ["<unk> spn\n"], set()
    for line in timitdic.read_text(encoding="latin-1").splitlines():
        m = re.match(r"(\S+)\s+/(.*)/\s*$", line)
        if m and not line.startswith(";"):
            pron = [re.sub(r"\d", "", p) for p in m.group(2).split()]  # drop stress digits
            phones.update(pron)
            lexicon.append(f"{m.group(1)} {' '.join(pron)}\n")
    write_dict(tmp_path / "dict", "".join(lexicon), nonsilence="\n".join(sorted(phones)))
    n = prepare_lang(tmp_path / "dict", tmp_path / "lang", "<unk>", sil_prob=0.5)
    assert n["words"] == len(lexicon) and n["disambig"] >= 2
    lang = Lang(tmp_path / "lang")
    assert best_path(lang, ["sil", "jh", "ow", "k", "s", "sil"])[0] == ["jokes"]
