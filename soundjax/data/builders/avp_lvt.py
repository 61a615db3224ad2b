"""`avp_lvt`: the AVP and LVT amateur vocal percussion sets (Zenodo record 5578744), per onset.

Read from a manual download in the published per-participant layout (see
`MANUAL_DOWNLOAD_INSTRUCTIONS`): AVP (Delgado et al., Audio Mostly 2019; its `Personal` subset,
28 participants) and LVT (Ramires et al. 2018, 20 participants), with the onset and phoneme
annotations of the AVP-LVT release used by Paper 2 (Delgado et al., SMC 2022).

Each record is one annotated onset, laid out like `synth_vocal_percussion`'s so one experiment
reads either:
- `audio [clip_samples]` float32: the take from the onset on, resampled to `sample_rate`
  (default 44.1 kHz, the published rate) and peak-normalised per file (`audio / max|audio|`, as
  the published code does), zero from the next onset of the take on (the published
  onset-to-next-onset segments; `stop_at_next_onset=False` keeps what follows) and zero-padded at
  the file's end. The onset's sample is `round(onset_seconds * sample_rate)`. The default 0.4 s
  holds the published 48 frames at an 8 ms hop.
- `dataset` ("avp", "lvt"); `user` (ClassLabel over `USERS`: "avp_<N>" is AVP's
  `Participant_<N>`; "lvt_<n>" the n-th LVT participant in sorted file order, so user index
  `n - 1` is the published LVT index: the held-out [0, 6, 7, 13] are lvt_1, lvt_7, lvt_8, lvt_14
  and AVP's [8, 10, 18, 23] are avp_9, avp_11, avp_19, avp_24); `participant` (the folder name or
  LVT file code); `take` (ClassLabel over `TAKES`), `position` (index in the take),
  `onset_seconds`, `filename` (the WAV, relative to the dataset folder).
- `instrument` (kd, sd, hhc, hho; LVT's "HH" is hhc, as published), `instrument_reduced`, the
  phoneme labels `phoneme_onset` (13), `phoneme_nucleus` (16) and their reduced sets, derived from
  the annotation strings by the published rules (`PHONEME_RULES`), `syllable` and
  `syllable_reduced` (onset x nucleus pairs, see `SYLLABLES`), `boxeme` (the published index:
  4 per AVP user, 3 per LVT user), and the annotation's own strings `label_text`,
  `phoneme_onset_text`, `phoneme_nucleus_text`. The label names and their order are
  `soundjax.data.synthetic.vocal_percussion`'s, so index `k` means the same in both sets.

Splits: `train` holds every isolated take (AVP's Kick, Snare, HHclosed and HHopened takes, LVT's
Frase phrase), `test` every improvised take (AVP's Improvisation, LVT's Improviso): the published
per-user protocol (fit on a user's `train` records, test on that user's `test` records) is a
filter on `user`. Records are stored by user, take and position.

With `augmentations=N` (published: 10) each `train` record is followed by N augmented copies
(`soundjax.data.augmentation.pitch_shift_and_stretch`: a pitch shift of U(-1.5, 1.5) semitones
and a time stretch of U(0.8, 1.2) in a random order, applied to the stored segment), records with
the original's every field but `audio` and `augmentation` (0 for an original, 1..N for its
copies); copy `k` depends only on `(seed, user, take, position, k)`. The `test` split is never
augmented. (The published code stretches whole takes and moves their onsets by the rate; a
segment here is stretched after it is cut, so it still stops at the next onset, moved alike.)

Every annotation is parsed and checked against its audio file's length before any audio is
decoded, so a malformed row fails within seconds, naming its file and line, and nothing is
written.
"""

import dataclasses
import os
import re
import unicodedata
from typing import Dict, Iterator, List, NamedTuple, Sequence, Tuple, Union

import numpy as np
import soundfile
import tensorflow_datasets as tfds

from soundjax import checks
from soundjax.data import audio, augmentation
from soundjax.data.builders import synth_vocal_percussion as svp
from soundjax.data.builders.manual import manual_folder
from soundjax.data.synthetic import vocal_percussion as vp

DATASETS = ("avp", "lvt")
# The folder the Zenodo archive unpacks to; the manual folder may be it or hold it.
ARCHIVE_FOLDER = "AVP-LVT_Dataset"
AVP_FOLDER = "AVP_Dataset/Personal"
LVT_FOLDER = "LVT_Dataset"
NUM_AVP_USERS, NUM_LVT_USERS = 28, 20
USERS = (tuple(f"avp_{n}" for n in range(1, NUM_AVP_USERS + 1))
         + tuple(f"lvt_{n}" for n in range(1, NUM_LVT_USERS + 1)))
# The synthetic set's takes, plus LVT's training phrase (it holds all three sounds, in sequence).
TAKES = svp.TAKES + ("phrase",)
# AVP file `P<N>_<name>_Personal.wav` -> take. Sorted by name, the 3rd of the 5 is the published
# test take (`list_wav[2::5]` in generate_interim_datasets.py): the improvisation.
AVP_TAKES = {"HHclosed": "isolated_hhc", "HHopened": "isolated_hho",
             "Improvisation": "improvised", "Kick": "isolated_kd", "Snare": "isolated_sd"}
# LVT folder -> (take, the letter ending its files' names: `<code>P.csv`, `<code>P3.wav`).
LVT_TAKES = {"Frase": ("phrase", "P"), "Improviso": ("improvised", "I")}
# One participant's Improviso files carry a different code from their Frase files.
LVT_CODE_ALIASES = {"JSo": "JoS"}
# Annotation label -> instrument (matched case-insensitively). LVT has one hi-hat, which the
# published code counts as closed (`load_classes_instrument` in src/utils.py).
LABELS = {"avp": {"kd": vp.KD, "sd": vp.SD, "hhc": vp.HHC, "hho": vp.HHO},
          "lvt": {"Kick": vp.KD, "Snare": vp.SD, "HH": vp.HHC}}
INSTRUMENT_OF = {dataset: {label.lower(): index for label, index in labels.items()}
                 for dataset, labels in LABELS.items()}
LVT_BOXEMES = ("kd", "sd", "hh")
BOXEMES = (tuple(f"{user}_{name}" for user in USERS[:NUM_AVP_USERS] for name in vp.INSTRUMENTS)
           + tuple(f"{user}_{name}" for user in USERS[NUM_AVP_USERS:] for name in LVT_BOXEMES))
# The published `Create_Phoneme_Labels` (src/utils.py): the first rule that matches the
# annotation's string wins, "in" matching a substring and "==" the whole string. An onset no rule
# matches gets label 0 ("ts") as published (the release has a few glottal stops "ʔ"); a nucleus
# no rule matches is "other" (the release writes "x" for none).
PHONEME_RULES = {
    "onset": (("ts", "in"), ("tʃ", "in"), ("tɕ", "in"), ("kg", "in"), ("tʒ", "in"),
              ("ʡʢ", "in"), ("dʒ", "in"), ("kʃ", "in"), ("t", "=="), ("p", "=="), ("k", "=="),
              ("s", "=="), ("!", "==")),
    "nucleus": tuple((name, "in") for name in ("a", "e", "i", "o", "u", "æ", "œ", "ə", "ʊ", "ɯ",
                                                "y", "ɪ", "ɐ", "ʌ", "h")),
}
PHONEME_DEFAULT = {"onset": "ts", "nucleus": "other"}
# The reduced labels are the groups of the full ones (`vp.ONSET_REDUCTION`, ...): what the
# published code's separate substring rules give for every single-symbol string, as in the
# release's label figures; for a string of several vowels ("uæ") those rules could disagree.
# Syllables: every onset x nucleus pair (the set found in the data depends on the data; the
# published code numbers them in order of appearance), index `onset * len(NUCLEI) + nucleus`.
SYLLABLES = tuple(f"{o}_{n}" for o in vp.ONSETS for n in vp.NUCLEI)
SYLLABLES_REDUCED = tuple(f"{o}_{n}" for o in vp.ONSETS_REDUCED for n in vp.NUCLEI_REDUCED)
FIELDS = "onset_seconds,instrument,onset_phoneme,nucleus_phoneme"

MANUAL_DOWNLOAD_INSTRUCTIONS = f"""
Download AVP-LVT_Dataset.zip (Zenodo record 5578744, "AVP-LVT Vocal Percussion Dataset",
CC BY 4.0) and unzip it into the manual folder (the `manual_dir` setting, by default
`<data_dir>/downloads/manual/`), so that it (or its {ARCHIVE_FOLDER}/ subfolder) holds:
  {AVP_FOLDER}/Participant_<N>/P<N>_<take>_Personal.wav and .csv
      N = 1..28; take = Kick, Snare, HHclosed, HHopened (isolated: the train split) and
      Improvisation (the test split); instruments kd, sd, hhc, hho
  {LVT_FOLDER}/Frase/<code>P.csv (train) and {LVT_FOLDER}/Improviso/<code>I.csv (test)
      20 participants, each a 3-letter code; instruments Kick, Snare, HH (read as hhc)
  {LVT_FOLDER}/.../<code>P3.wav and <code>I3.wav
      The LVT audio is not in the Zenodo archive: copy the WAVs of the original LVT release
      (Ramires et al. 2018, its DataSet_Wav_Annotation folder) anywhere below {LVT_FOLDER}/, e.g.
      next to the CSVs. Each take comes as <code>P1/2/3.wav; the digit read is the
      `lvt_recording` setting (3, as the published code). Without them, prepare with
      datasets=("avp",).
Every CSV has one row per onset, in time order, no header: "{FIELDS}", e.g.
"1.2345,kd,p,u" (the AVP-LVT release's CSVs; the original AVP record's 2-column CSVs lack the
phonemes). AVP_Dataset/Fixed is not read.
"""


class Onset(NamedTuple):
  """One annotation row: its line, onset (seconds), instrument index and the raw strings."""
  line: int
  seconds: float
  instrument: int
  label: str
  onset_phoneme: str
  nucleus_phoneme: str


class Take(NamedTuple):
  """One recording: its dataset, `USERS` and `TAKES` indices, participant name and files."""
  dataset: str
  user: int
  take: int
  participant: str
  wav: str
  csv: str


@dataclasses.dataclass
class AvpLvtConfig(tfds.core.BuilderConfig):
  """What is read and how each onset's segment is cut; the name encodes every field."""
  sample_rate: int = 44100
  clip_seconds: float = 0.4
  stop_at_next_onset: bool = True
  datasets: Tuple[str, ...] = DATASETS
  lvt_recording: int = 3
  augmentations: int = 0
  seed: int = 0


def avp_lvt_config(*, sample_rate=44100, clip_seconds=0.4, stop_at_next_onset=True,
                   datasets: Union[str, Sequence[str]] = DATASETS,
                   lvt_recording=3, augmentations=0, seed=0) -> AvpLvtConfig:
  """Returns a validated config named after its settings.

  Args:
    sample_rate: in Hz, the rate the takes are resampled to (the files' own: 44.1 kHz).
    clip_seconds: the segment stored per onset. 0.4 s holds 48 frames at an 8 ms hop.
    stop_at_next_onset: zero each segment from the take's next onset on, as published.
    datasets: "avp", "lvt" or both (LVT's audio comes from another archive).
    lvt_recording: which of LVT's recordings of a take is read, `<code>P<k>.wav`.
    augmentations: augmented copies stored after each `train` record (published: 10); the name
      ends in `_aug<N>` when it is not 0.
    seed: the seed of the augmentations; the name ends in `-seed<S>` when augmenting with a
      seed other than 0 (without augmentations the seed changes nothing).

  Example:
    >>> avp_lvt_config(datasets="avp", clip_seconds=0.2).name
    'sr44100_len0.2s_avp'
  """
  checks.integer("avp_lvt: sample_rate", sample_rate, 1)
  if round(sample_rate * checks.positive("avp_lvt: clip_seconds", clip_seconds)) < 1:
    raise ValueError(f"avp_lvt: clip_seconds {clip_seconds!r} holds no sample at {sample_rate} Hz")
  if not isinstance(stop_at_next_onset, bool):
    raise ValueError(f"avp_lvt: stop_at_next_onset must be a bool, got {stop_at_next_onset!r}")
  chosen = checks.names("avp_lvt: datasets", (datasets,) if isinstance(datasets, str)
                        else tuple(datasets), DATASETS)
  chosen = tuple(name for name in DATASETS if name in chosen)
  checks.integer("avp_lvt: lvt_recording", lvt_recording, 1)
  checks.integer("avp_lvt: augmentations", augmentations, 0)
  checks.integer("avp_lvt: seed", seed, 0)
  name = f"sr{sample_rate}_len{clip_seconds:g}s_{'-'.join(chosen)}"
  name += f"_rec{lvt_recording}" if "lvt" in chosen else ""
  name += "" if stop_at_next_onset else "_through"
  name += f"_aug{augmentations}" if augmentations else ""
  name += f"-seed{seed}" if augmentations and seed else ""
  return AvpLvtConfig(name=name, sample_rate=int(sample_rate), clip_seconds=float(clip_seconds),
                      stop_at_next_onset=stop_at_next_onset, datasets=chosen,
                      lvt_recording=int(lvt_recording), augmentations=int(augmentations),
                      seed=int(seed))


def num_samples(config: AvpLvtConfig) -> int:
  """Samples per stored segment."""
  return int(round(config.sample_rate * config.clip_seconds))


def phoneme_label(kind: str, text: str) -> int:
  """The published label index of an annotation's onset or nucleus string (`PHONEME_RULES`).

  Example:
    >>> vp.ONSETS[phoneme_label("onset", "kʃ")], vp.NUCLEI[phoneme_label("nucleus", "x")]
    ('kʃ', 'other')
  """
  names = vp.ONSETS if kind == "onset" else vp.NUCLEI
  for name, how in PHONEME_RULES[kind]:
    if (name in text) if how == "in" else (text == name):
      return names.index(name)
  return names.index(PHONEME_DEFAULT[kind])


def read_annotation(path: str, dataset: str) -> List[Onset]:
  """Parses a take's CSV: rows `FIELDS`, no header, onsets in seconds, strictly increasing.

  Fields are stripped and NFC-normalised; blank lines are skipped.

  Raises:
    ValueError: naming `path:line` for a row without exactly four fields, an onset that is not a
      finite number >= 0 or not after the previous row's, or an instrument the dataset lacks;
      naming `path` for a file that is not UTF-8 or holds no row.
  """
  instruments = INSTRUMENT_OF[dataset]
  onsets: List[Onset] = []
  try:
    with open(path, encoding="utf-8-sig") as file:
      lines = file.read().splitlines()
  except UnicodeDecodeError as error:
    raise ValueError(f"{path}: not UTF-8 text ({error})") from None
  for number, line in enumerate(lines, 1):
    if not line.strip():
      continue
    where = f"{path}:{number}"
    fields = [unicodedata.normalize("NFC", field.strip()) for field in line.split(",")]
    if len(fields) != 4:
      raise ValueError(f"{where}: expected 4 fields '{FIELDS}', got {len(fields)}: "
                       f"{line.strip()!r}")
    try:
      seconds = float(fields[0])
    except ValueError:
      raise ValueError(f"{where}: the onset must be a number of seconds, got {fields[0]!r}"
                       ) from None
    if not np.isfinite(seconds) or seconds < 0:
      raise ValueError(f"{where}: the onset must be finite and >= 0, got {fields[0]!r}")
    if onsets and seconds <= onsets[-1].seconds:
      # Segments end at the next row's onset, so the rows must be in time order.
      raise ValueError(f"{where}: onset {seconds:g} s is not after the previous row's "
                       f"{onsets[-1].seconds:g} s (line {onsets[-1].line}); rows must be in "
                       f"time order")
    label = fields[1]
    if label.lower() not in instruments:
      names = list(LABELS[dataset])
      raise ValueError(f"{where}: unknown instrument {label!r}{checks.closest(label, names)}; "
                       f"{dataset} annotations use {names}")
    onsets.append(Onset(number, seconds, instruments[label.lower()], label, fields[2],
                        fields[3]))
  if not onsets:
    raise ValueError(f"{path}: no annotated onset; expected rows '{FIELDS}'")
  return onsets


def dataset_root(manual_dir: str) -> str:
  """The folder holding AVP_Dataset/ and LVT_Dataset/: `manual_dir` or its `ARCHIVE_FOLDER`."""
  nested = os.path.join(manual_dir, ARCHIVE_FOLDER)
  here = any(os.path.isdir(os.path.join(manual_dir, name)) for name in ("AVP_Dataset",
                                                                          LVT_FOLDER))
  return nested if not here and os.path.isdir(nested) else manual_dir


def _missing(what: str, folder: str, names: Sequence[str]) -> FileNotFoundError:
  more = " ..." if len(names) > 5 else ""
  return FileNotFoundError(f"avp_lvt: {what} {folder} lacks {len(names)} files: "
                           f"{', '.join(names[:5])}{more}\n" + MANUAL_DOWNLOAD_INSTRUCTIONS)


def avp_takes(root: str) -> List[Take]:
  """Every AVP Personal take, five per `Participant_<N>` folder.

  Raises:
    FileNotFoundError: no Personal folder or participant folder, or a folder lacking a take's
      WAV or CSV (naming the folder and the files).
    ValueError: a participant number outside 1-28.
  """
  folder = os.path.join(root, AVP_FOLDER)
  if not os.path.isdir(folder):
    raise FileNotFoundError(f"avp_lvt: {AVP_FOLDER} not found in {root}.\n"
                            + MANUAL_DOWNLOAD_INSTRUCTIONS)
  participants = {int(match.group(1)): match.group(0) for match in (
      re.fullmatch(r"Participant_(\d+)", name) for name in os.listdir(folder)) if match}
  if not participants:
    raise FileNotFoundError(f"avp_lvt: no Participant_<N> folders in {folder}.\n"
                            + MANUAL_DOWNLOAD_INSTRUCTIONS)
  takes = []
  for number, name in sorted(participants.items()):
    path = os.path.join(folder, name)
    if not 1 <= number <= NUM_AVP_USERS:
      raise ValueError(f"avp_lvt: {path}: AVP has participants 1-{NUM_AVP_USERS}")
    present = set(os.listdir(path))
    stems = {take: f"P{number}_{take}_Personal" for take in AVP_TAKES}
    missing = [stem + ext for stem in stems.values() for ext in (".wav", ".csv")
               if stem + ext not in present]
    if missing:
      raise _missing("the AVP participant folder", path, missing)
    takes += [Take("avp", number - 1, TAKES.index(AVP_TAKES[take]), name,
                   os.path.join(path, stem + ".wav"), os.path.join(path, stem + ".csv"))
              for take, stem in stems.items()]
  return takes


def lvt_takes(root: str, recording: int) -> List[Take]:
  """Every LVT take: `Frase/<code>P.csv` and `Improviso/<code>I.csv` with their WAVs.

  A participant's number is the position of their Frase file in sorted order (the published
  index + 1); their Improviso take is matched by code (`LVT_CODE_ALIASES` for the one that
  differs), not by position. A WAV is looked for next to its CSV, then anywhere below LVT_Dataset/.

  Raises:
    FileNotFoundError: a missing folder, a participant without both takes, or missing WAVs.
    ValueError: a CSV named otherwise, or more than 20 participants.
  """
  base = os.path.join(root, LVT_FOLDER)
  missing = [name for name in LVT_TAKES if not os.path.isdir(os.path.join(base, name))]
  if missing:
    raise FileNotFoundError(f"avp_lvt: {', '.join(f'{LVT_FOLDER}/{m}' for m in missing)} not "
                            f"found in {root}.\n" + MANUAL_DOWNLOAD_INSTRUCTIONS)
  wavs: Dict[str, List[str]] = {}
  for folder, _, files in os.walk(base):
    for name in files:
      wavs.setdefault(name, []).append(os.path.join(folder, name))
  found: Dict[str, Dict[str, Tuple[str, str]]] = {}  # folder -> code -> (csv, wav name)
  for folder, (_, letter) in LVT_TAKES.items():
    found[folder] = {}
    for name in sorted(os.listdir(os.path.join(base, folder))):
      if not name.endswith(".csv"):
        continue
      path = os.path.join(base, folder, name)
      if not name[:-4].endswith(letter) or len(name) < 6:
        raise ValueError(f"avp_lvt: {path}: LVT {folder} annotations are named "
                         f"<code>{letter}.csv")
      code = name[:-5]
      found[folder][LVT_CODE_ALIASES.get(code, code)] = (path, f"{name[:-4]}{recording}.wav")
  codes = list(found["Frase"])  # Sorted by file name, as the published code's lists.
  if not codes:
    raise FileNotFoundError(f"avp_lvt: no <code>P.csv annotations in {base}/Frase.\n"
                            + MANUAL_DOWNLOAD_INSTRUCTIONS)
  if len(codes) > NUM_LVT_USERS:
    raise ValueError(f"avp_lvt: {base}/Frase holds {len(codes)} participants' takes; LVT has "
                     f"{NUM_LVT_USERS}")
  for folder, (_, letter) in LVT_TAKES.items():
    lacking = [f"{code}{letter}.csv" for code in found["Frase"].keys() - found[folder].keys()]
    strays = sorted(set(found[folder]) - set(codes))
    if lacking:
      raise _missing("the LVT folder", os.path.join(base, folder), sorted(lacking))
    if strays:
      raise FileNotFoundError(f"avp_lvt: {found[folder][strays[0]][0]} has no Frase take "
                              f"{os.path.join(base, 'Frase', strays[0] + 'P.csv')}")
  takes, lacking = [], []
  for folder, (take, _) in LVT_TAKES.items():
    for user, code in enumerate(codes):
      csv, wav = found[folder][code]
      beside = os.path.join(os.path.dirname(csv), wav)
      candidates = [beside] if os.path.isfile(beside) else wavs.get(wav, [])
      if len(candidates) != 1:
        lacking.append(wav if not candidates else f"{wav} (found {len(candidates)} times)")
        continue
      takes.append(Take("lvt", NUM_AVP_USERS + user, TAKES.index(take), code, candidates[0],
                        csv))
  if lacking:
    raise _missing("the LVT audio folder", base, lacking)
  return takes


def check_lengths(take: Take, onsets: Sequence[Onset]) -> None:
  """Checks from the WAV's header that every onset lies inside the recording.

  Raises:
    audio.AudioError: an unreadable file.
    ValueError: naming `csv:line` for an onset at or after the recording's end.
  """
  try:
    info = soundfile.info(take.wav)
  except (soundfile.LibsndfileError, RuntimeError) as error:
    raise audio.AudioError(f"{take.wav}: unreadable audio file ({error}).") from error
  seconds = info.frames / info.samplerate
  if onsets[-1].seconds >= seconds:
    raise ValueError(f"{take.csv}:{onsets[-1].line}: onset {onsets[-1].seconds:g} s is at or "
                     f"after the end of {take.wav} ({seconds:g} s)")


def segments(waveform: np.ndarray, onsets: Sequence[Onset],
             config: AvpLvtConfig) -> Iterator[np.ndarray]:
  """Each onset's `num_samples(config)` segment of a peak-normalised take (module docstring)."""
  length = num_samples(config)
  starts = [int(round(onset.seconds * config.sample_rate)) for onset in onsets]
  for position, start in enumerate(starts):
    stop = start + length
    if config.stop_at_next_onset and position + 1 < len(starts):
      stop = min(stop, starts[position + 1])
    yield audio.fit_length(waveform[start:stop], length)


def take_records(take: Take, onsets: Sequence[Onset], root: str,
                 config: AvpLvtConfig) -> Iterator[Tuple[str, Dict[str, object]]]:
  """The `(key, record)` of each onset of a take, in order: what the builder stores."""
  waveform = audio.load_audio(take.wav, config.sample_rate)
  peak = np.max(np.abs(waveform))
  if peak == 0:
    raise audio.AudioError(f"{take.wav}: the audio is silent (all zeros).")
  waveform = waveform / peak
  filename = os.path.relpath(take.wav, root).replace(os.sep, "/")
  for position, (onset, segment) in enumerate(zip(onsets, segments(waveform, onsets, config))):
    phoneme_onset = phoneme_label("onset", onset.onset_phoneme)
    phoneme_nucleus = phoneme_label("nucleus", onset.nucleus_phoneme)
    reduced_onset = vp.ONSET_REDUCTION[phoneme_onset]
    reduced_nucleus = vp.NUCLEUS_REDUCTION[phoneme_nucleus]
    if take.dataset == "avp":
      boxeme = take.user * len(vp.INSTRUMENTS) + onset.instrument
    else:
      boxeme = (NUM_AVP_USERS * len(vp.INSTRUMENTS)
                + (take.user - NUM_AVP_USERS) * len(LVT_BOXEMES) + onset.instrument)
    yield f"{filename}:{position}", {
        "audio": segment.astype(np.float32), "dataset": take.dataset, "user": take.user,
        "participant": take.participant, "take": take.take, "position": position,
        "onset_seconds": np.float32(onset.seconds), "filename": filename, "augmentation": 0,
        "instrument": onset.instrument,
        "instrument_reduced": vp.INSTRUMENT_REDUCTION[onset.instrument],
        "phoneme_onset": phoneme_onset, "phoneme_nucleus": phoneme_nucleus,
        "phoneme_onset_reduced": reduced_onset, "phoneme_nucleus_reduced": reduced_nucleus,
        "syllable": phoneme_onset * len(vp.NUCLEI) + phoneme_nucleus,
        "syllable_reduced": reduced_onset * len(vp.NUCLEI_REDUCED) + reduced_nucleus,
        "boxeme": boxeme, "label_text": onset.label,
        "phoneme_onset_text": onset.onset_phoneme, "phoneme_nucleus_text": onset.nucleus_phoneme,
    }


def augmented_records(key: str, record: Dict[str, object],
                      config: AvpLvtConfig) -> Iterator[Tuple[str, Dict[str, object]]]:
  """The `(key, record)` of copies 1..`config.augmentations` of a record, audio augmented."""
  identity = (record["user"], record["take"], record["position"])
  for copy in range(1, config.augmentations + 1):
    rng = np.random.default_rng([config.seed, *identity, copy])
    audio_copy = augmentation.pitch_shift_and_stretch(record["audio"], config.sample_rate, rng)
    yield f"{key}:aug{copy}", {**record, "audio": audio_copy, "augmentation": copy}


class AvpLvt(tfds.core.GeneratorBasedBuilder):
  """AVP and LVT vocal percussion, one record per annotated onset; splits train/test."""

  VERSION = tfds.core.Version("1.1.0")
  RELEASE_NOTES = {"1.1.0": "The `augmentation` feature and the `augmentations` setting."}
  BUILDER_CONFIGS = [avp_lvt_config()]
  MANUAL_DOWNLOAD_INSTRUCTIONS = MANUAL_DOWNLOAD_INSTRUCTIONS

  def _info(self) -> tfds.core.DatasetInfo:
    label = tfds.features.ClassLabel
    return tfds.core.DatasetInfo(
        builder=self,
        description=__doc__,
        features=tfds.features.FeaturesDict({
            # Raw bytes: faster to write than a protobuf float list, read back the same.
            "audio": tfds.features.Tensor(shape=(num_samples(self.builder_config),),
                                          dtype=np.float32,
                                          encoding=tfds.features.Encoding.BYTES),
            "dataset": label(names=DATASETS),
            "user": label(names=USERS),
            "participant": tfds.features.Text(),
            "take": label(names=TAKES),
            "position": tfds.features.Scalar(dtype=np.int32),
            "onset_seconds": tfds.features.Scalar(dtype=np.float32),
            "filename": tfds.features.Text(),
            "augmentation": tfds.features.Scalar(dtype=np.int32),
            **svp.label_features(syllables=SYLLABLES, syllables_reduced=SYLLABLES_REDUCED,
                                 boxemes=BOXEMES),
            "label_text": tfds.features.Text(),
            "phoneme_onset_text": tfds.features.Text(),
            "phoneme_nucleus_text": tfds.features.Text(),
        }),
        supervised_keys=("audio", "instrument"),
        # Records in generation order, so a take's onsets are consecutive and in sequence;
        # training shuffles at read time.
        disable_shuffling=True,
    )

  def _split_generators(self, dl_manager):
    config = self.builder_config
    root = dataset_root(manual_folder(dl_manager, "avp_lvt"))
    takes = avp_takes(root) if "avp" in config.datasets else []
    takes += lvt_takes(root, config.lvt_recording) if "lvt" in config.datasets else []
    # Parse every annotation and check it against its file's length before decoding any audio:
    # a bad row fails fast, writing nothing.
    annotations = {take: read_annotation(take.csv, take.dataset) for take in takes}
    for take, onsets in annotations.items():
      check_lengths(take, onsets)
    ordered = sorted(annotations.items(), key=lambda item: (item[0].user, item[0].take))
    test = [item[0].take == TAKES.index("improvised") for item in ordered]
    return {split: self._generate_examples(root, [item for item, is_test in zip(ordered, test)
                                                  if is_test == (split == "test")],
                                           augment=split == "train")
            for split in ("train", "test")}

  def _generate_examples(self, root: str, takes: List[Tuple[Take, List[Onset]]], augment: bool):
    config = self.builder_config
    for take, onsets in takes:
      for key, record in take_records(take, onsets, root, config):
        yield key, record
        if augment:
          yield from augmented_records(key, record, config)
