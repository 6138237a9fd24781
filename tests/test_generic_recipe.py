"""A word recogniser built with the shared steps/ and utils/ alone.

The corpus is made here in plain Kaldi data-dir form from the TIMIT
sample's audio, with *word* transcripts (the .wrd files) and a word lexicon
(timitdic.txt, stress marks removed; words it lacks go to <unk>), not the
phone transcripts the TIMIT recipe uses. The scratch directory holds only
links to steps/, utils/ and path.sh and the test's own configs: no file
under any recipe's local/ or conf/ takes part. Stages: lang with optional
silence, word bigram LM and G.fst, MFCC + CMVN, monophone GMM, alignment, a
tiny LSTM, HCLG, decoding with LM weights and insertion penalties, WER.
Also: two identical runs of steps/train_mono.sh and of the LSTM training
give identical models and alignments, and an 8 kHz MFCC config works.
"""

import re
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parent.parent
from conftest import SAMPLE, sh  # noqa: E402

pytestmark = pytest.mark.skipif(not SAMPLE.is_dir(), reason=f"TIMIT sample not found at {SAMPLE} (set TIMIT_SAMPLE)")

TINY_LSTM = """\
model: {num_layers: 2, cell_dim: 32, proj_dim: 16}
chunk: {chunk: 20, left: 10, delay: 5}
features: {norm_vars: true, delta_order: 0}
train: {minibatch: 32, max_epochs: 2, lr_initial: 0.004, lr_final: 0.002, num_threads: 1, log_interval: 5, seed: 3}
"""
MFCC_CONF = "--use-energy=false\n--dither=0\n--sample-frequency=16000\n"



def make_corpus(root: Path) -> None:
    """data/{train,test} (dialect regions 1-6 / 7-8) with word transcripts,
    and data/local/dict from timitdic.txt."""
    sets = {"train": {}, "test": {}}
    for spk_dir in sorted(SAMPLE.iterdir()):
        m = re.fullmatch(r"dr(\d)-(\w+)", spk_dir.name)
        if not m:
            continue
        spk = m.group(2)
        part = "train" if int(m.group(1)) <= 6 else "test"
        for wrd in sorted(spk_dir.glob("*.wrd")):
            words = [line.split()[2] for line in wrd.read_text().splitlines() if line.strip()]
            sets[part][f"{spk}-{wrd.stem}"] = (spk, spk_dir / f"{wrd.stem}.wav", words)
    for part, utts in sets.items():
        d = root / "data" / part
        d.mkdir(parents=True)
        keys = sorted(utts)
        (d / "wav.scp").write_text("".join(f"{u} {utts[u][1]}\n" for u in keys))
        (d / "text").write_text("".join(f"{u} {' '.join(utts[u][2])}\n" for u in keys))
        (d / "utt2spk").write_text("".join(f"{u} {utts[u][0]}\n" for u in keys))
    lexicon = {}
    for line in (SAMPLE / "timitdic.txt").read_text(encoding="latin-1").splitlines():
        if not line.strip() or line.startswith(";"):
            continue
        word, pron = line.split(None, 1)
        phones = [re.sub(r"\d", "", p) for p in pron.strip().strip("/").split()]
        lexicon.setdefault(word, phones)
    d = root / "data/local/dict"
    d.mkdir(parents=True)
    nonsil = sorted({p for pr in lexicon.values() for p in pr})
    (d / "lexicon.txt").write_text("<sil> sil\n<unk> spn\n" + "".join(
        f"{w} {' '.join(p)}\n" for w, p in sorted(lexicon.items())))
    (d / "silence_phones.txt").write_text("sil\nspn\n")
    (d / "optional_silence.txt").write_text("sil\n")
    (d / "nonsilence_phones.txt").write_text("".join(f"{p}\n" for p in nonsil))


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    d = tmp_path_factory.mktemp("generic")
    for name in ("steps", "utils", "path.sh"):
        (d / name).symlink_to(ROOT / name)
    (d / "conf").mkdir()
    (d / "conf/mfcc.conf").write_text(MFCC_CONF)
    (d / "conf/tiny.yaml").write_text(TINY_LSTM)
    make_corpus(d)
    for part in ("train", "test"):
        sh(f"utils/utt2spk_to_spk2utt.sh data/{part}/utt2spk > data/{part}/spk2utt", d)
        sh(f"utils/validate_data_dir.sh --no-feats data/{part}", d)
    sh("utils/prepare_lang.sh --sil-prob 0.5 data/local/dict '<unk>' data/local/lang_tmp data/lang", d)
    sh("steps/train_lm.sh --order 2 --dev-text data/test/text data/train/text data/local/lm", d)
    sh("utils/format_lm.sh data/lang data/local/lm/lm.arpa data/lang_test", d)
    for part in ("train", "test"):
        sh(f"steps/make_mfcc.sh --nj 2 data/{part} exp/make_mfcc/{part} mfcc", d)
        sh(f"steps/compute_cmvn_stats.sh data/{part} exp/make_mfcc/{part} mfcc", d)
        sh(f"utils/validate_data_dir.sh data/{part}", d)
    mono = "--num-iters 12 --max-iter-inc 8 --totgauss 400"
    sh(f"steps/train_mono.sh {mono} data/train data/lang exp/mono", d)
    sh(f"steps/train_mono.sh {mono} data/train data/lang exp/mono_again", d)
    sh("steps/align_si.sh --nj 2 data/train data/lang exp/mono exp/mono_ali", d)
    sh("steps/align_si.sh --nj 2 data/test data/lang exp/mono exp/mono_ali_test", d)
    nnet = "steps/nnet/train.sh --nnet-config conf/tiny.yaml --device cpu data/train exp/mono_ali data/test exp/mono_ali_test"
    sh(f"{nnet} exp/lstm", d)
    sh(f"{nnet} exp/lstm_again", d)
    sh("steps/mkgraph.sh data/lang_test exp/mono exp/mono/graph", d)
    for system in ("mono", "lstm"):
        # The 2-epoch LSTM's posteriors are nearly flat: a narrow search keeps
        # its word-graph decoding to seconds (the default beams take minutes).
        beams = "--beam 8 --max-active 500" if system == "lstm" else ""
        sh(f"steps/decode.sh --nj 2 --lmwts '6 10' --word-ins-penalties '0.0 1.0' {beams} "
           f"exp/mono/graph data/test exp/{system}/decode_test", d)
        sh(f"steps/score.sh --metric wer data/test exp/{system}/decode_test", d)
    return d


def wer_of(decode_dir: Path) -> float:
    line = (decode_dir / "wer").read_text()
    assert line.startswith("%WER "), line
    return float(line.split()[1])


def test_no_recipe_file_is_used(corpus):
    assert sorted(p.name for p in corpus.iterdir()) == ["conf", "data", "exp", "mfcc", "path.sh", "steps", "utils"]
    assert not (corpus / "steps" / "local").exists() and not (corpus / "utils" / "local").exists()


def test_lang_has_words_optional_silence_and_oov(corpus):
    words = (corpus / "data/lang/words.txt").read_text().split()[::2]
    assert "greasy" in words and "<unk>" in words and "#0" in words
    assert (corpus / "data/lang/oov.txt").read_text().strip() == "<unk>"
    assert (corpus / "data/lang_test/G.fst").stat().st_size > 0
    assert (corpus / "data/local/lm/ppl_dev").read_text().strip()


def test_word_error_rates(corpus):
    for system in ("mono", "lstm"):
        dec = corpus / "exp" / system / "decode_test"
        wer = wer_of(dec)
        assert 0.0 <= wer <= 100.0, (system, wer)
        lmwt, wip = (dec / "lmwt").read_text().strip(), (dec / "wip").read_text().strip()
        assert lmwt in ("6", "10") and wip in ("0.0", "1.0")
        assert (dec / f"scoring/{lmwt}_{wip}/wer").read_text() == (dec / "wer").read_text()
        # per-speaker table: header, the 4 test speakers, SUM
        assert len((dec / "wer_spk").read_text().strip().splitlines()) == 6
    # A monophone GMM with a word bigram of the shared sentences is far from
    # deleting everything (100%): the pipeline really recognises words.
    assert wer_of(corpus / "exp/mono/decode_test") < 90.0


def test_monophone_training_and_alignment_are_reproducible(corpus):
    a, b = corpus / "exp/mono", corpus / "exp/mono_again"
    assert (a / "final.mdl").read_bytes() == (b / "final.mdl").read_bytes()
    assert (a / "ali.1.gz").read_bytes() == (b / "ali.1.gz").read_bytes()
    # the aligner is deterministic too: realign with the second model and compare
    sh("steps/align_si.sh --nj 2 data/train data/lang exp/mono_again exp/mono_again_ali", corpus)
    for f in sorted((corpus / "exp/mono_ali").glob("ali.*.gz")):
        assert f.read_bytes() == (corpus / "exp/mono_again_ali" / f.name).read_bytes(), f.name


def test_lstm_training_is_reproducible(corpus):
    import torch

    a = torch.load(corpus / "exp/lstm/final.pt", weights_only=False)["model"]
    b = torch.load(corpus / "exp/lstm_again/final.pt", weights_only=False)["model"]
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k


def test_mfcc_at_8khz(corpus, tmp_path):
    """A per-recipe MFCC config for 8 kHz audio: the frame rate stays 100/s."""
    import soundfile as sf
    from scipy.signal import resample_poly

    d = tmp_path / "data8k"
    d.mkdir()
    utts = (corpus / "data/test/wav.scp").read_text().splitlines()[:3]
    lines = []
    for line in utts:
        utt, path = line.split()
        x, sr = sf.read(path, dtype="int16")
        y = np.clip(resample_poly(x.astype(np.float64), 1, 2), -32768, 32767).astype(np.int16)
        sf.write(tmp_path / f"{utt}.wav", y, sr // 2, subtype="PCM_16")
        lines.append(f"{utt} {tmp_path / f'{utt}.wav'}")
    (d / "wav.scp").write_text("\n".join(lines) + "\n")
    (d / "utt2spk").write_text("".join(f"{l.split()[0]} {l.split()[0].split('-')[0]}\n" for l in lines))
    sh(f"utils/utt2spk_to_spk2utt.sh {d}/utt2spk > {d}/spk2utt", corpus)
    conf8 = tmp_path / "mfcc_8k.conf"
    conf8.write_text("--use-energy=false\n--dither=0\n--sample-frequency=8000\n--num-mel-bins=15\n--high-freq=3700\n")
    sh(f"steps/make_mfcc.sh --nj 1 --mfcc-config {conf8} {d} {tmp_path}/log {tmp_path}/mfcc", corpus)
    frames8 = dict(l.split() for l in (d / "utt2num_frames").read_text().splitlines())
    frames16 = dict(l.split() for l in (corpus / "data/test/utt2num_frames").read_text().splitlines())
    for utt, n in frames8.items():
        assert abs(int(n) - int(frames16[utt])) <= 1, utt
    # 16 kHz audio with the 8 kHz config: an error naming the utterance
    bad = tmp_path / "bad"
    bad.mkdir()
    first = utts[0].split()[0]
    (bad / "wav.scp").write_text(utts[0] + "\n")
    (bad / "utt2spk").write_text(f"{first} {first.split('-')[0]}\n")
    sh(f"utils/utt2spk_to_spk2utt.sh {bad}/utt2spk > {bad}/spk2utt", corpus)
    p = sh(f"steps/make_mfcc.sh --nj 1 --mfcc-config {conf8} {bad} {tmp_path}/log_bad {tmp_path}/mfcc_bad",
           corpus, check=False)
    assert p.returncode != 0
    log = "".join(f.read_text() for f in (tmp_path / "log_bad").glob("*.log"))
    assert first in log and "16000" in log and "8000" in log
