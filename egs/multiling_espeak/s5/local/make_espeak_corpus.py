#!/usr/bin/env python3
"""Synthetic multilingual speech corpus: fortunes read by espeak-ng voices.

Usage:
  local/make_espeak_corpus.py [options]

  e.g.: local/make_espeak_corpus.py --out-dir data/local/espeak --data-dir data
        local/make_espeak_corpus.py --hours 0.1 --languages en,de --nj 2 --seed 1

The corpus of the multilingual CTC phone recogniser with language- and
speaker-recognition sub-tasks (seed 004, Hayakawa et al.): every speaker
reads sentences in every language, so language and speaker are independent
factors of the audio.

Sentences. Sources: the Debian packages fortunes (English: the plain files
of /usr/share/games/fortunes, not its subfolders), fortunes-de, fortunes-es
and fortunes-it (its de/, es/, it/ subfolders). Entries are split on ``%``
lines; overstrike (``x<BS>``) is removed; an entry is cut at its first
attribution line (``-- Name``); the Italian ASCII accents (``perche'``,
``E'``) become accented letters. Sentences (split after ``.!?`` before an
upper-case letter) are kept when made of 3..20 words of the language's
letters and basic punctuation only: no digits, URLs, e-mail addresses,
code, ascii art, all-caps words or abbreviations. They are deduplicated and
shuffled with ``--seed``. ``text.words`` holds them normalised: lower case,
punctuation removed (hyphens and dashes become spaces), apostrophes kept
only inside words (``don't``, ``l'altra``), single spaces.

Speakers. ``s01`` .. ``sNN``: speaker k uses the (variant, pitch, speed) of
a fixed list: the k-th of 24 espeak-ng voice variants (12 female, 12 male,
alternating; no whisper, croak, klatt*, robosoft*, Demonic or announcer),
pitch ``-p`` (0..99, espeak-ng's scale, 50 = the variant's own) and speed
``-s`` (words per minute) from fixed cycles, so up to 120 speakers are
distinct. The seed does not change the speakers. Gender (spk2gender) is the
variant's. The last ``--test-speakers`` speakers are test, the
``--dev-speakers`` before them dev, the rest train.

Synthesis. Per utterance: ``espeak-ng -v <voice>+<variant> -p P -s S --ipa
--sep=' ' -w raw.wav`` with the sentence on stdin (espeak-ng writes 22050 Hz
audio and prints the IPA on stdout), then ``sox -D -R raw.wav -r 16000 -b 16
-c 1 -e signed-integer`` (16 kHz, 16-bit, mono; no dither, so reruns are
byte-identical). Voices: en -> en-us, de, es, it. The phone transcript
(``text``) is the IPA with stress marks (ˈ ˌ), boundary and linking marks
(| ‖ ‿ . _) and word boundaries removed: space-separated phones, one token per
espeak-ng phoneme, so affricates and diphthongs are one token (``tʃ``,
``aɪ``) and tie bars (U+0361, U+035C) are deleted inside them. Length marks
(ː ˑ) stay attached to their phone (``iː`` and ``i``, Italian ``tː`` and ``t``
are different tokens: length is phonemic in de and it; espeak-ng's Italian
``ss`` is written ``sː`` like its other geminates). The inventory is
shared: the same IPA token is the same phone in every language. An utterance
is dropped, and the speaker reads the next sentence instead, when espeak-ng
switches language inside it (``(en)`` in the IPA of a German sentence with an
English word) or has no IPA for one of its phonemes (espeak-ng 1.51 prints
``??`` for the German diphthong of ``kurz`` and ``1`` in ``aneinander``: a
token with an ASCII character other than a-z). ``--nj`` utterances are
synthesised at once, each by its own espeak-ng and sox processes.

Size. The audio is measured from the synthesised durations (samples / 16000
Hz). ``--hours`` is split evenly over the languages; each language is
synthesised in rounds of one utterance per speaker until its share is
reached (within a round: at the utterance that reaches it, in speaker
order). The first round is always whole, so every speaker has utterances
in every language and a tiny size gives one round per language (about 3 s
x speakers x languages of audio at least).

Outputs:
  <out-dir>/wav/<spk>/<utt>.wav   16 kHz 16-bit mono RIFF WAV
  <out-dir>/phone_inventory.txt   '#phone <lang>...' header, then one line per
                                  phone: the phone and its count per language
  <out-dir>/speakers.txt          spk set gender variant pitch speed
  <out-dir>/summary               utterances, hours, speakers, phones per
                                  language, synthesis wall time and real-time
                                  factor (wall seconds / audio seconds)
  <out-dir>/lm_text.<lang>        the language's usable sentences that were
                                  not synthesised (words as in text.words, one
                                  sentence per line): text for a word LM that
                                  shares no sentence with the corpus
  <data-dir>/{train,dev,test}/    wav.scp (absolute paths), text (IPA phones),
                                  text.words, utt2spk, spk2utt, utt2lang,
                                  spk2gender, utt2dur (seconds)
Utterance ids are ``<spk>_<lang>_<n>`` (``s01_en_000123``, n: the sentence's
index in its language's shuffled list). Output is a function of the options
and seed only (not of --nj). The corpus is built in ``<out-dir>.tmp`` and
moved into place when complete; the record ``<out-dir>/.make_espeak_corpus.record``
(options, code, tool versions, fortunes files) is written last, and a rerun
whose record matches and whose outputs are all present does nothing.

Errors (exit 1, one line): an unknown language (listing the supported ones;
exit 2 with usage), a missing fortunes folder (naming it and the Debian
package), espeak-ng or sox missing or failing (naming the utterance and the
command), too few sentences for the requested size.
"""

from __future__ import annotations

import argparse
import logging
import math
import os
import random
import re
import shlex
import shutil
import subprocess
import sys
import time
import wave
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

ROOT = Path(__file__).resolve().parents[4]
sys.path.insert(0, str(ROOT / "steps" / "libs"))
from mtlasr.cli import make_parser, program  # noqa: E402
from mtlasr.datadir import atomic_open, replace_dir, read_table, write_data_dir  # noqa: E402
from mtlasr.provenance import make_record  # noqa: E402

logger = logging.getLogger("make_espeak_corpus")

SAMPLE_RATE = 16000  # Hz, of the corpus audio
SETS = ("train", "dev", "test")
DATA_FILES = ("wav.scp", "text", "text.words", "utt2spk", "utt2lang", "spk2gender", "utt2dur")  # + spk2utt
RECORD = ".make_espeak_corpus.record"
MIN_WORDS, MAX_WORDS = 3, 20
FORTUNES_ROOT = "/usr/share/games/fortunes"


@dataclass(frozen=True)
class Language:
    voice: str      # espeak-ng voice
    subdir: str     # folder under the fortunes root ("" = the root's own files)
    package: str    # the Debian package that installs it
    letters: str    # lower-case letters of the language besides a-z


LANGUAGES: Dict[str, Language] = {
    "en": Language("en-us", "", "fortunes", ""),
    "de": Language("de", "de", "fortunes-de", "äöüß"),
    "es": Language("es", "es", "fortunes-es", "áéíóúüñ"),
    "it": Language("it", "it", "fortunes-it", "àèéìíîòóù"),
}
SKIP_FILES = {"ascii-art", "asciiart", "banner"}

# espeak-ng voice variants (voices/!v/<name>), gender as in their files.
VARIANTS: Tuple[Tuple[str, str], ...] = (
    ("f1", "f"), ("m1", "m"), ("f2", "f"), ("m2", "m"), ("f3", "f"), ("m3", "m"),
    ("f4", "f"), ("m4", "m"), ("f5", "f"), ("m5", "m"), ("steph", "f"), ("m6", "m"),
    ("steph2", "f"), ("m7", "m"), ("steph3", "f"), ("m8", "m"), ("linda", "f"), ("michel", "m"),
    ("belinda", "f"), ("miguel", "m"), ("Annie", "f"), ("Marco", "m"), ("Andrea", "f"), ("antonio", "m"),
)
PITCHES = (50, 35, 65, 42, 58)      # espeak-ng -p, 0..99
SPEEDS = (165, 145, 185, 155)       # espeak-ng -s, words per minute
MAX_SPEAKERS = 120                  # lcm(24, 5, 4): distinct (variant, pitch, speed)

SINGLE_LETTER_WORDS = "aeiouyàèéìíòóùáú"  # vowels that are words (a, I, y, o, è, ...)
PUNCT = ".,;:!?'\"()¿¡«»„“”‘’‚-–—…"
STRIP_IPA = str.maketrans("", "", "ˈˌ|‖‿._\u0361\u035c")
LENGTH_MARKS = "ːˑ"
SWITCH_RE = re.compile(r"\([a-z]{2,3}(?:-[a-z0-9]+)*\)")
ABBREV_END = re.compile(r"(?:^|\s)(?:\w|Mr|Mrs|Ms|Dr|St|Sr|Sra|Jr|Prof|vs|etc|ca|Nr|Hr|Fr|Sig)\.$", re.I)


class SynthesisError(OSError):
    """espeak-ng or sox failed on an utterance (the message names both)."""


# ---------------------------------------------------------------- sentences

def fortune_files(root: Path, lang: str) -> List[Path]:
    """The fortunes files of ``lang`` (regular files, no links, no .dat/.u8,
    no ascii art), sorted by name.

    Raises:
      FileNotFoundError: no such folder, or no files in it, naming the path
        and the Debian package.
    """
    spec = LANGUAGES[lang]
    folder = root / spec.subdir if spec.subdir else root
    hint = f"the {lang} fortunes come from the Debian package {spec.package} (apt-get install {spec.package})"
    if not folder.is_dir():
        raise FileNotFoundError(f"{folder}: no such directory; {hint}")
    files = sorted(f for f in folder.iterdir() if f.is_file() and not f.is_symlink()
                   and not f.name.startswith(".") and f.suffix not in (".dat", ".u8")
                   and f.name not in SKIP_FILES)
    if not files:
        raise FileNotFoundError(f"{folder}: no fortunes files; {hint}")
    return files


def fortune_entries(path: Path) -> List[str]:
    """The entries of one fortunes file (split on ``%`` lines), overstrike
    removed, each cut before its attribution line (``-- Name``)."""
    text = path.read_text(encoding="utf-8", errors="replace")
    while re.search(r"[^\x08]\x08", text):  # "x<BS>y" prints y over x: keep y
        text = re.sub(r"[^\x08]\x08", "", text)
    text = text.replace("\x08", "")
    entries = []
    for entry in re.split(r"^%[ \t]*$", text, flags=re.M):
        lines = []
        for line in entry.splitlines():
            if line.lstrip().startswith(("--", "—", "―")):
                break
            lines.append(line)
        entries.append("\n".join(lines))
    return entries


def italian_accents(text: str) -> str:
    """The ASCII accent convention of the Italian fortunes: a vowel followed
    by an apostrophe at the end of a word is an accented vowel (``e'`` ->
    ``è``, ``perche'`` -> ``perchè``, ``E'`` -> ``È``)."""
    grave = dict(zip("aeiouAEIOU", "àèìòùÀÈÌÒÙ"))
    return re.sub(r"([aeiouAEIOU])'(?!\w)", lambda m: grave[m.group(1)], text)


def split_sentences(text: str) -> List[str]:
    """Whitespace-normalised sentences of an entry: a break after ``.``,
    ``!``, ``?`` or ``…`` (and closing quotes) before a word that starts
    with an upper-case letter or an opening quote, not after an
    abbreviation (``Mr.``, ``Dr.``, a single letter)."""
    words = text.split()
    out, cur = [], []
    for i, w in enumerate(words):
        cur.append(w)
        nxt = words[i + 1] if i + 1 < len(words) else None
        if nxt is None:
            break
        if (re.search(r"[.!?…][\"'»”’)]*$", w) and re.match(r"[\"'«„“‘(¿¡]*[^\W\d_]", nxt)
                and nxt.lstrip("\"'«„“‘(¿¡")[:1].isupper() and not ABBREV_END.search(" ".join(cur[-2:]))):
            out.append(" ".join(cur))
            cur = []
    if cur:
        out.append(" ".join(cur))
    return out


def normalise_words(sentence: str) -> List[str]:
    """Lower-case words without punctuation: hyphens and dashes separate
    words, apostrophes are kept inside words only."""
    s = sentence.replace("’", "'").replace("‘", "'").lower()
    s = re.sub(r"[-–—]", " ", s)
    words = []
    for tok in s.split():
        tok = re.sub(r"[^\w']", "", tok).strip("'")
        if tok:
            words.append(tok)
    return words


def keep_sentence(sentence: str, lang: str) -> bool:
    """Whether a sentence is usable: only the language's letters, spaces and
    basic punctuation; every word made of letters (apostrophes and hyphens
    inside); no all-caps word of 2+ letters, no single consonant
    letter as a word; a period only at the end (or
    in ``...``); 3..20 words."""
    letters = "a-z" + LANGUAGES[lang].letters
    letters += letters.upper().replace("SS", "")  # ß has no single upper case
    if re.search(f"[^{letters} {re.escape(PUNCT)}]", sentence):
        return False
    body = re.sub(r"\.\.\.|…", " ", sentence).rstrip(PUNCT + " ")
    if "." in body:
        return False
    word_re = re.compile(f"[{letters}]+(?:['’][{letters}]+)*")
    n = 0
    for tok in re.sub(r"[-–—]", " ", sentence).split():
        tok = tok.strip(PUNCT)
        if not tok:
            continue
        if not word_re.fullmatch(tok) or (len(tok) > 1 and tok.isupper()):
            return False
        if len(tok) == 1 and tok.lower() not in SINGLE_LETTER_WORDS:
            return False  # a letter name ("n: a noun", "Plan B"): espeak-ng spells it
        n += 1
    return MIN_WORDS <= n <= MAX_WORDS and n == len(normalise_words(sentence))


def load_sentences(root: Path, lang: str, seed: int) -> List[str]:
    """The usable sentences of ``lang``, deduplicated (first occurrence, on
    the normalised words), in an order shuffled with ``seed``."""
    seen, out = set(), []
    for f in fortune_files(root, lang):
        for entry in fortune_entries(f):
            if lang == "it":
                entry = italian_accents(entry)
            for s in split_sentences(entry):
                key = " ".join(normalise_words(s))
                if key not in seen and keep_sentence(s, lang):
                    seen.add(key)
                    out.append(s.replace("’", "'").replace("‘", "'"))
    random.Random(f"{seed}:{lang}").shuffle(out)
    return out


# ---------------------------------------------------------------- speakers

@dataclass(frozen=True)
class Speaker:
    id: str
    variant: str
    gender: str
    pitch: int
    speed: int
    set: str


def make_speakers(num: int, dev: int, test: int) -> List[Speaker]:
    """Speakers ``s01``..: speaker k (0-based) has variant k mod 24, pitch
    k mod 5 and speed k mod 4 of the fixed lists; the last ``test`` are the
    test set, the ``dev`` before them dev, the others train."""
    width = max(2, len(str(num)))
    out = []
    for k in range(num):
        variant, gender = VARIANTS[k % len(VARIANTS)]
        part = "test" if k >= num - test else "dev" if k >= num - test - dev else "train"
        out.append(Speaker(f"s{k + 1:0{width}d}", variant, gender, PITCHES[k % len(PITCHES)],
                           SPEEDS[k % len(SPEEDS)], part))
    return out


# ---------------------------------------------------------------- synthesis

@dataclass
class Job:
    utt: str
    lang: str
    spk: Speaker
    sentence: str
    # filled by synthesise():
    phones: List[str] = field(default_factory=list)
    samples: int = 0
    drop: str = ""  # why the utterance is dropped: "switch", "no-ipa" or ""


def ipa_to_phones(ipa: str) -> Tuple[List[str], str]:
    """Phones of espeak-ng's ``--ipa --sep=' '`` output (see the module
    docstring), and why they are unusable: ``switch`` (a language switch,
    ``(en)``), ``no-ipa`` (a phoneme without IPA, ``??``) or ``""``."""
    drop = "switch" if SWITCH_RE.search(ipa) else ""
    phones: List[str] = []
    for tok in SWITCH_RE.sub(" ", ipa).split():
        tok = tok.translate(STRIP_IPA)
        if re.search(r"[\x00-\x60\x7b-\x7f]", tok):
            drop = drop or "no-ipa"
        if len(tok) == 2 and tok[0] == tok[1] and tok[0] not in LENGTH_MARKS:
            tok = tok[0] + "ː"  # Italian geminate s is printed "ss", the others "kː", "tː"
        if tok and all(c in LENGTH_MARKS for c in tok) and phones:
            phones[-1] += tok  # a length mark printed apart from its phone
        elif tok:
            phones.append(tok)
    return phones, drop


def synthesise(job: Job, wav: Path, tmp: Path) -> Job:
    """Write ``wav`` (16 kHz) for ``job`` and fill in its phones and length.

    Raises:
      SynthesisError: espeak-ng or sox failed or wrote no audio, naming the
        utterance and the command.
    """
    raw = tmp / f"{job.utt}.raw.wav"
    voice = LANGUAGES[job.lang].voice
    cmd = ["espeak-ng", "-v", f"{voice}+{job.spk.variant}", "-p", str(job.spk.pitch),
           "-s", str(job.spk.speed), "--ipa", "--sep= ", "-w", str(raw)]
    p = subprocess.run(cmd, input=job.sentence, capture_output=True, encoding="utf-8")
    if p.returncode != 0 or not raw.is_file() or raw.stat().st_size <= 44:
        raise SynthesisError(f"utterance {job.utt}: espeak-ng failed (exit {p.returncode}): "
                             f"{shlex.join(cmd)} <<< {job.sentence!r}: {p.stderr.strip()}")
    job.phones, job.drop = ipa_to_phones(p.stdout)
    cmd = ["sox", "-D", "-R", "-V1", str(raw), "-r", str(SAMPLE_RATE), "-b", "16", "-c", "1",
           "-e", "signed-integer", str(wav)]
    p = subprocess.run(cmd, capture_output=True, encoding="utf-8")
    raw.unlink()
    if p.returncode != 0:
        raise SynthesisError(f"utterance {job.utt}: sox failed (exit {p.returncode}): {shlex.join(cmd)}: "
                             f"{p.stderr.strip()}")
    with wave.open(str(wav)) as w:
        if (w.getframerate(), w.getnchannels(), w.getsampwidth()) != (SAMPLE_RATE, 1, 2):
            raise SynthesisError(f"utterance {job.utt}: {wav} is not 16 kHz 16-bit mono ({shlex.join(cmd)})")
        job.samples = w.getnframes()
    if not job.phones:
        raise SynthesisError(f"utterance {job.utt}: espeak-ng printed no phones for {job.sentence!r}")
    return job


class Synthesiser:
    """Runs jobs ``nj`` at a time in deterministic batches and logs progress
    (utterances done / estimated total, audio, elapsed seconds) on stderr."""

    def __init__(self, out: Path, nj: int):
        self.out, self.nj = out, nj
        self.tmp = out / "raw"
        self.done, self.total, self.audio_s, self.wall_s = 0, 0, 0.0, 0.0
        self.start = time.monotonic()
        self.last_log = 0.0

    def wav(self, job: Job) -> Path:
        return self.out / "wav" / job.spk.id / f"{job.utt}.wav"

    def run(self, jobs: Sequence[Job]) -> List[Job]:
        self.tmp.mkdir(parents=True, exist_ok=True)
        for job in jobs:
            self.wav(job).parent.mkdir(parents=True, exist_ok=True)
        with ThreadPoolExecutor(self.nj) as pool:
            futures = [pool.submit(synthesise, job, self.wav(job), self.tmp) for job in jobs]
            try:
                for f in as_completed(futures):
                    job = f.result()
                    self.done += 1
                    self.audio_s += job.samples / SAMPLE_RATE
                    self.progress()
            except BaseException:
                for f in futures:
                    f.cancel()
                raise
        self.wall_s = time.monotonic() - self.start
        return list(jobs)

    def progress(self, force: bool = False) -> None:
        now = time.monotonic()
        if force or now - self.last_log >= 5.0:
            self.last_log = now
            logger.info("synthesised %d/~%d utterances, %.3f h of audio, %.1f s elapsed",
                        self.done, max(self.total, self.done), self.audio_s / 3600, now - self.start)


def build(args: argparse.Namespace, speakers: List[Speaker], sentences: Dict[str, List[str]],
          tmp_out: Path) -> Tuple[List[Job], Synthesiser, Dict[str, int]]:
    """Synthesise rounds (one utterance per speaker and active language)
    until every language has ``--hours / #languages`` of audio. The first
    round is always complete (every speaker reads every language); in a
    later one a language stops at the utterance that reaches its share, in
    speaker order, and the rest of its round is discarded. A dropped
    utterance (language switch) is replaced by the speaker's next sentence.

    Returns: the kept jobs, the synthesiser (times), language -> reason ->
      number of utterances dropped, language -> index of its first sentence
      not taken (synthesised or dropped).

    Raises:
      ValueError: a language runs out of sentences before its share.
    """
    langs = list(sentences)
    target_s = args.hours * 3600 / len(langs)
    audio = {lang: 0.0 for lang in langs}
    nxt = {lang: 0 for lang in langs}
    dropped = {lang: {"switch": 0, "no-ipa": 0} for lang in langs}
    width = max(6, len(str(max(len(v) for v in sentences.values()))))
    syn = Synthesiser(tmp_out, args.nj)
    syn.total = int(args.hours * 3600 / 3.0) + len(speakers) * len(langs)  # first guess: 3 s each
    kept: List[Job] = []
    rounds = 0

    def take(lang: str, spk: Speaker) -> Job:
        i = nxt[lang]
        if i >= len(sentences[lang]):
            raise ValueError(f"{lang}: all {len(sentences[lang])} usable sentences of the fortunes are used up "
                             f"after {audio[lang] / 3600:.3f} h of {lang} audio (target {target_s / 3600:.3f} h); "
                             f"lower --hours")
        nxt[lang] += 1
        return Job(f"{spk.id}_{lang}_{i:0{width}d}", lang, spk, sentences[lang][i])

    active = list(langs)
    while active:
        rounds += 1
        todo = [take(lang, spk) for lang in active for spk in speakers]
        while todo:
            redo = []
            for job in syn.run(todo):  # in the order of todo, whatever order they finished in
                if rounds > 1 and audio[job.lang] >= target_s:  # share reached within this round
                    syn.wav(job).unlink()
                elif job.drop:
                    syn.wav(job).unlink()
                    dropped[job.lang][job.drop] += 1
                    redo.append(take(job.lang, job.spk))
                else:
                    kept.append(job)
                    audio[job.lang] += job.samples / SAMPLE_RATE
            todo = redo
        active = [lang for lang in active if audio[lang] < target_s]
        per_round = {lang: audio[lang] / rounds for lang in active}
        syn.total = len(kept) + sum(math.ceil((target_s - audio[lang]) / per_round[lang]) * len(speakers)
                                    for lang in active)
    syn.progress(force=True)
    shutil.rmtree(syn.tmp, ignore_errors=True)
    return kept, syn, dropped, nxt


# ---------------------------------------------------------------- outputs

def write_outputs(args, speakers: List[Speaker], jobs: List[Job], syn: Synthesiser,
                  dropped: Dict[str, Dict[str, int]], sentences: Dict[str, List[str]], tmp_out: Path,
                  versions: str, taken: Dict[str, int]) -> Dict[str, dict]:
    """Inventory, speaker list, summary and LM texts (the sentences from
    index ``taken[lang]`` on) into ``tmp_out``; returns the data-dir tables
    per set, with wav paths under the final ``--out-dir``."""
    langs = list(sentences)
    final = Path(args.out_dir).resolve()
    tables = {s: {n: {} for n in DATA_FILES} for s in SETS}
    counts: Dict[str, Dict[str, int]] = {}
    per_lang = {lang: [0, 0] for lang in langs}  # utterances, samples
    per_set = {s: [0, 0] for s in SETS}
    for job in jobs:
        t = tables[job.spk.set]
        t["wav.scp"][job.utt] = str(final / "wav" / job.spk.id / f"{job.utt}.wav")
        t["text"][job.utt] = job.phones
        t["text.words"][job.utt] = normalise_words(job.sentence)
        t["utt2spk"][job.utt] = job.spk.id
        t["utt2lang"][job.utt] = job.lang
        t["spk2gender"][job.spk.id] = job.spk.gender
        t["utt2dur"][job.utt] = f"{job.samples / SAMPLE_RATE:.4f}"
        for ph in job.phones:
            counts.setdefault(ph, {lang: 0 for lang in langs})[job.lang] += 1
        for acc, key in ((per_lang, job.lang), (per_set, job.spk.set)):
            acc[key][0] += 1
            acc[key][1] += job.samples
    for s in SETS:
        if not tables[s]["utt2spk"]:
            raise ValueError(f"the {s} set has no utterances; check --dev-speakers and --test-speakers")
    order = sorted(counts, key=lambda p: p.encode("utf-8"))
    with atomic_open(tmp_out / "phone_inventory.txt") as f:
        f.write("#phone " + " ".join(langs) + "\n")
        for ph in order:
            f.write(ph + " " + " ".join(str(counts[ph][lang]) for lang in langs) + "\n")
    for lang in langs:
        with atomic_open(tmp_out / f"lm_text.{lang}") as f:
            for sentence in sentences[lang][taken[lang]:]:
                f.write(" ".join(normalise_words(sentence)) + "\n")
    with atomic_open(tmp_out / "speakers.txt") as f:
        for spk in speakers:
            f.write(f"{spk.id} {spk.set} {spk.gender} {spk.variant} {spk.pitch} {spk.speed}\n")
    total_s = sum(j.samples for j in jobs) / SAMPLE_RATE
    shared = [p for p in order if all(counts[p][lang] for lang in langs)]
    lines = [f"espeak-ng corpus: {len(jobs)} utterances, {total_s / 3600:.3f} h ({total_s:.1f} s) of "
             f"{SAMPLE_RATE} Hz audio, {len(speakers)} speakers, languages {' '.join(langs)}, seed {args.seed}",
             f"tools: {versions}", "",
             "set    utterances  hours  speakers"]
    for s in SETS:
        n_spk = len(set(tables[s]["utt2spk"].values()))
        lines.append(f"{s:<6} {per_set[s][0]:>10} {per_set[s][1] / SAMPLE_RATE / 3600:6.3f} {n_spk:>9}")
    lines += ["", "lang   utterances  hours  phones  dropped(switch,no-ipa)  sentences(available)  lm_text"]
    for lang in langs:
        n_ph = sum(1 for p in order if counts[p][lang])
        lines.append(f"{lang:<6} {per_lang[lang][0]:>10} {per_lang[lang][1] / SAMPLE_RATE / 3600:6.3f} "
                     f"{n_ph:>7} {dropped[lang]['switch']:>15},{dropped[lang]['no-ipa']:<7} "
                     f"{len(sentences[lang]):>21}  {len(sentences[lang]) - taken[lang]:>7}")
    lines += ["", f"phones: {len(order)} in all, {len(shared)} shared by all languages: {' '.join(shared)}",
              f"synthesis: {syn.wall_s:.1f} s wall time with --nj {args.nj} for {total_s:.1f} s of audio: "
              f"real-time factor {syn.wall_s / max(total_s, 1e-9):.4f}"]
    with atomic_open(tmp_out / "summary") as f:
        f.write("\n".join(lines) + "\n")
    return tables


def tool_versions() -> Tuple[str, Optional[Path]]:
    """``espeak-ng <version>, sox <version>`` and espeak-ng's data folder.

    Raises:
      FileNotFoundError: espeak-ng or sox is not on PATH (naming the package).
    """
    for tool in ("espeak-ng", "sox"):
        if shutil.which(tool) is None:
            raise FileNotFoundError(f"{tool} not found on PATH; install the Debian package {tool}")
    e = subprocess.run(["espeak-ng", "--version"], capture_output=True, encoding="utf-8", check=True).stdout
    s = subprocess.run(["sox", "--version"], capture_output=True, encoding="utf-8", check=True).stdout
    m = re.search(r"Data at:\s*(\S+)", e)
    ev = re.search(r"eSpeak NG text-to-speech:\s*(\S+)", e)
    sv = re.search(r"SoX v?(\S+)", s)
    text = f"espeak-ng {ev.group(1) if ev else '?'}, sox {sv.group(1) if sv else '?'}"
    return text, Path(m.group(1)) if m else None


def outputs_complete(out_dir: Path, data_dir: Path, langs: Sequence[str]) -> bool:
    """Whether every output file is present (the wavs of each wav.scp too)."""
    if not all((out_dir / f).is_file() for f in ("summary", "phone_inventory.txt", "speakers.txt",
                                                 *(f"lm_text.{lang}" for lang in langs))):
        return False
    for s in SETS:
        d = data_dir / s
        if not all((d / n).is_file() for n in (*DATA_FILES, "spk2utt")):
            return False
        if not all(os.path.isfile(p) for p in read_table(d / "wav.scp").values()):
            return False
    return True


# ---------------------------------------------------------------- main

def parse_languages(value: str) -> List[str]:
    langs = [x.strip() for x in value.split(",") if x.strip()]
    bad = [x for x in langs if x not in LANGUAGES]
    if bad or not langs or len(set(langs)) != len(langs):
        what = f"unknown language(s) {', '.join(bad)}" if bad else f"a bad list {value!r}"
        raise argparse.ArgumentTypeError(f"{what}; supported: {', '.join(LANGUAGES)} (comma-separated, "
                                         f"each once)")
    return langs


def get_parser() -> argparse.ArgumentParser:
    p = make_parser(__doc__)
    p.add_argument("--out-dir", default="data/local/espeak",
                   help="corpus folder: wav/, phone_inventory.txt, speakers.txt, summary (default: %(default)s)")
    p.add_argument("--data-dir", default="data", help="where the train, dev and test data dirs go "
                   "(default: %(default)s)")
    p.add_argument("--languages", type=parse_languages, default=parse_languages(",".join(LANGUAGES)),
                   help=f"comma-separated languages, of {','.join(LANGUAGES)} (default: all)")
    p.add_argument("--hours", type=float, default=5.0,
                   help="total hours of audio, split evenly over the languages (default: %(default)s)")
    p.add_argument("--num-speakers", type=int, default=20, help="speakers (default: %(default)s)")
    p.add_argument("--dev-speakers", type=int, default=3, help="of them in dev (default: %(default)s)")
    p.add_argument("--test-speakers", type=int, default=3, help="of them in test (default: %(default)s)")
    p.add_argument("--seed", type=int, default=0, help="seed of the sentence order (default: %(default)s)")
    p.add_argument("--nj", type=int, default=2, help="utterances synthesised at once (default: %(default)s)")
    p.add_argument("--fortunes-root", default=FORTUNES_ROOT,
                   help="fortunes folder (English files; de/ es/ it/ in it) (default: %(default)s)")
    return p


def run(args: argparse.Namespace) -> int:
    if args.hours <= 0:
        raise ValueError(f"--hours must be positive, not {args.hours}")
    if args.nj < 1:
        raise ValueError(f"--nj must be at least 1, not {args.nj}")
    if not 3 <= args.num_speakers <= MAX_SPEAKERS:
        raise ValueError(f"--num-speakers must be 3..{MAX_SPEAKERS}, not {args.num_speakers}")
    if min(args.dev_speakers, args.test_speakers) < 1 or args.dev_speakers + args.test_speakers >= args.num_speakers:
        raise ValueError(f"--dev-speakers {args.dev_speakers} and --test-speakers {args.test_speakers} must be at "
                         f"least 1 each and leave train speakers of --num-speakers {args.num_speakers}")
    out_dir, data_dir = Path(args.out_dir), Path(args.data_dir)
    root = Path(args.fortunes_root)
    folders = [fortune_files(root, lang)[0].parent for lang in args.languages]  # errors before anything else
    versions, data_path = tool_versions()
    if data_path is not None:
        for variant, _ in VARIANTS:
            if not (data_path / "voices" / "!v" / variant).is_file():
                raise FileNotFoundError(f"espeak-ng voice variant {variant} is not in {data_path}/voices/!v")
    options = (f"languages={','.join(args.languages)} hours={args.hours!r} num_speakers={args.num_speakers} "
               f"dev_speakers={args.dev_speakers} test_speakers={args.test_speakers} seed={args.seed} "
               f"out_dir={out_dir.resolve()} data_dir={data_dir.resolve()} tools={versions}")
    record = make_record(__file__, ROOT, options, trees=sorted(set(folders)))
    if (out_dir / RECORD).is_file() and (out_dir / RECORD).read_text() == record \
            and outputs_complete(out_dir, data_dir, args.languages):
        logger.info("%s and %s/{%s} are complete for these options; nothing to do", out_dir, data_dir,
                    ",".join(SETS))
        return 0
    speakers = make_speakers(args.num_speakers, args.dev_speakers, args.test_speakers)
    t0 = time.monotonic()
    sentences = {lang: load_sentences(root, lang, args.seed) for lang in args.languages}
    logger.info("usable sentences: %s (%.1f s)", ", ".join(f"{k} {len(v)}" for k, v in sentences.items()),
                time.monotonic() - t0)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp_out = out_dir.with_name(out_dir.name + ".tmp")
    shutil.rmtree(tmp_out, ignore_errors=True)  # left by a run that was killed
    tmp_out.mkdir()
    try:
        jobs, syn, dropped, taken = build(args, speakers, sentences, tmp_out)
        tables = write_outputs(args, speakers, jobs, syn, dropped, sentences, tmp_out, versions, taken)
        (out_dir / RECORD).unlink(missing_ok=True)
        replace_dir(tmp_out, out_dir)
    except BaseException:
        shutil.rmtree(tmp_out, ignore_errors=True)
        raise
    for s in SETS:
        write_data_dir(data_dir / s, tables[s])
    with atomic_open(out_dir / RECORD) as f:
        f.write(record)
    for line in (out_dir / "summary").read_text().splitlines():
        logger.info("%s", line)
    return 0


def main(argv: Optional[Sequence[str]] = None) -> int:
    return program(get_parser(), run, argv, logger)


if __name__ == "__main__":
    sys.exit(main())
