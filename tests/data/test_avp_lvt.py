"""The AVP-LVT builder on a tiny set in the published layout, and its bad-input errors."""

import glob
import os

import numpy as np
import pytest
import soundfile

from soundjax import data
from soundjax.data import augmentation
from soundjax.data.builders import avp_lvt

RATE, SECONDS, CLIP = 16000, 0.5, 0.05  # A 0.05 s clip is 800 samples.
CLIP_SAMPLES = 800
# AVP take -> rows (onset sample, instrument, onset phoneme, nucleus phoneme), the same for every
# participant. Kick's onsets are 400 samples apart (its first segment stops early), the
# improvisation's last onset is 300 samples before the end (its segment is padded).
AVP_ROWS = {
    "Kick": [(800, "kd", "p", "u"), (1200, "kd", "pf", "x")],
    "Snare": [(1000, "sd", "tʃ", "a"), (5000, "sd", "ts", "æ")],
    "HHclosed": [(500, "hhc", "ts", "i")],
    "HHopened": [(2000, "hho", "s", "h")],
    "Improvisation": [(400, "kd", "p", "u"), (3000, "sd", "k", "a"), (7700, "hhc", "t", "x")],
}
AVP_PARTICIPANTS = (9, 11)
# LVT folder -> rows. "JoS" is "JSo" in Improviso, as in the release; sorted, the Improviso files
# (JSoI, JabI) are not in the Frase files' order (JabP, JoSP), so pairing by position would mix
# two participants up.
LVT_ROWS = {
    "Frase": [(800, "Kick", "p", "x"), (3000, "Snare", "k", "a"), (6000, "HH", "ts", "x")],
    "Improviso": [(1000, "HH", "tʃ", "i"), (2000, "Kick", "p", "u")],
}
LVT_CODES = ("Bea", "Jab", "JoS")  # lvt_1, lvt_2, lvt_3.
# Published label indices (`Create_Phoneme_Labels`, `load_classes_instrument`), written out.
INSTRUMENT = {"kd": 0, "sd": 1, "hhc": 2, "hho": 3, "Kick": 0, "Snare": 1, "HH": 2}
ONSET = {"p": 9, "pf": 0, "tʃ": 1, "ts": 0, "s": 11, "k": 10, "t": 8}
NUCLEUS = {"u": 4, "x": 15, "a": 0, "æ": 5, "i": 2, "h": 14}
ONSET_REDUCED = {"p": 3, "pf": 0, "tʃ": 1, "ts": 0, "s": 0, "k": 2, "t": 4}
NUCLEUS_REDUCED = {"u": 4, "x": 6, "a": 0, "æ": 0, "i": 2, "h": 5}


def write_wav(path, seed):
  os.makedirs(os.path.dirname(path), exist_ok=True)
  signal = 0.3 * np.random.default_rng(seed).standard_normal(int(SECONDS * RATE))
  soundfile.write(path, signal.astype(np.float32), RATE, subtype="FLOAT")


def write_csv(path, rows):
  with open(path, "w", encoding="utf-8") as file:
    file.writelines(f"{sample / RATE!r},{label},{onset},{nucleus}\n"
                    for sample, label, onset, nucleus in rows)


def lvt_stem(code, folder):
  """`<code>P` in Frase, `<code>I` in Improviso, with the release's one inconsistent code."""
  return ("JSo" if code == "JoS" and folder == "Improviso" else code) + {"Frase": "P",
                                                                          "Improviso": "I"}[folder]


def write_avp_lvt(root, participants=AVP_PARTICIPANTS, codes=LVT_CODES):
  """The unzipped archive's layout (with the LVT audio added) under `root`."""
  seed = 0
  for number in participants:
    folder = os.path.join(root, "AVP_Dataset", "Personal", f"Participant_{number}")
    for take, rows in AVP_ROWS.items():
      stem = os.path.join(folder, f"P{number}_{take}_Personal")
      write_wav(stem + ".wav", seed := seed + 1)
      write_csv(stem + ".csv", rows)
  lvt = os.path.join(root, "LVT_Dataset")
  for folder, rows in LVT_ROWS.items():
    os.makedirs(os.path.join(lvt, folder), exist_ok=True)
    for code in codes:
      stem = lvt_stem(code, folder)
      write_csv(os.path.join(lvt, folder, stem + ".csv"), rows)
      # Phrase audio beside its CSV, improvisations in a folder of their own.
      audio_folder = os.path.join(lvt, folder) if folder == "Frase" else os.path.join(
          lvt, "DataSet_Wav_Annotation", folder)
      write_wav(os.path.join(audio_folder, stem + "3.wav"), seed := seed + 1)
      write_wav(os.path.join(audio_folder, stem + "1.wav"), seed := seed + 1)


def prepare(tmp_path, manual, **settings):
  settings = {"sample_rate": RATE, "clip_seconds": CLIP, **settings}
  return data.prepare("avp_lvt", data_dir=str(tmp_path / "tfds"), manual_dir=str(manual),
                      **settings)


def assert_nothing_written(tmp_path):
  assert not glob.glob(str(tmp_path / "tfds" / "**" / "*array_record*"), recursive=True)
  assert not glob.glob(str(tmp_path / "tfds" / "avp_lvt" / "*" / "*" / "dataset_info.json"))


def records(builder, split):
  source = data.split_source(builder, split)
  return [source[index] for index in range(len(source))]


def text(value):
  return value.decode() if isinstance(value, bytes) else value


@pytest.fixture(scope="module")
def root(tmp_path_factory):
  root = tmp_path_factory.mktemp("avp_lvt")
  write_avp_lvt(str(root / "manual" / avp_lvt.ARCHIVE_FOLDER))  # As the archive unzips.
  return root


@pytest.fixture(scope="module")
def builder(root):
  return prepare(root, root / "manual")


def expected_segment(wav, start, stop):
  """The file's samples from `start` to `stop` over its peak, zero after, `CLIP_SAMPLES` long."""
  signal, _ = soundfile.read(wav, dtype="float32")
  segment = np.zeros(CLIP_SAMPLES, np.float32)
  part = signal[start:min(stop, start + CLIP_SAMPLES)]
  segment[:len(part)] = part / np.max(np.abs(signal))
  return segment


def test_records_match_the_annotations(builder, root):
  base = root / "manual" / avp_lvt.ARCHIVE_FOLDER
  features = builder.info.features
  assert features["instrument"].names == ["kd", "sd", "hhc", "hho"]
  for split, avp_takes, lvt_takes in (
      ("train", ["Kick", "Snare", "HHclosed", "HHopened"], ["Frase"]),
      ("test", ["Improvisation"], ["Improviso"])):
    got = records(builder, split)
    expected = []  # (user, take, filename, rows), in the stored order: user, then take.
    for number in AVP_PARTICIPANTS:
      ordered = sorted(avp_takes, key=lambda t: avp_lvt.TAKES.index(avp_lvt.AVP_TAKES[t]))
      expected += [(f"avp_{number}", avp_lvt.AVP_TAKES[take],
                    f"AVP_Dataset/Personal/Participant_{number}/P{number}_{take}_Personal.wav",
                    AVP_ROWS[take]) for take in ordered]
    for index, code in enumerate(LVT_CODES):
      for folder in lvt_takes:
        stem = lvt_stem(code, folder)
        subfolder = folder if folder == "Frase" else f"DataSet_Wav_Annotation/{folder}"
        expected.append((f"lvt_{index + 1}", avp_lvt.LVT_TAKES[folder][0],
                         f"LVT_Dataset/{subfolder}/{stem}3.wav", LVT_ROWS[folder]))
    assert len(got) == sum(len(rows) for *_, rows in expected)
    flat = [(user, take, name, position, row, rows) for user, take, name, rows in expected
            for position, row in enumerate(rows)]
    for record, (user, take, name, position, row, rows) in zip(got, flat):
      sample, label, onset, nucleus = row
      assert features["user"].int2str(record["user"]) == user
      assert features["take"].int2str(record["take"]) == take
      assert features["dataset"].int2str(record["dataset"]) == user[:3]
      assert text(record["filename"]) == name and record["position"] == position
      assert record["onset_seconds"] == np.float32(sample / RATE)
      assert record["instrument"] == INSTRUMENT[label] and text(record["label_text"]) == label
      assert (record["phoneme_onset"], record["phoneme_nucleus"]) == (ONSET[onset],
                                                                      NUCLEUS[nucleus])
      assert (record["phoneme_onset_reduced"], record["phoneme_nucleus_reduced"]) == (
          ONSET_REDUCED[onset], NUCLEUS_REDUCED[nucleus])
      assert features["syllable"].int2str(record["syllable"]) == (
          f"{features['phoneme_onset'].int2str(ONSET[onset])}_"
          f"{features['phoneme_nucleus'].int2str(NUCLEUS[nucleus])}")
      assert text(record["phoneme_onset_text"]) == onset
      stop = rows[position + 1][0] if position + 1 < len(rows) else 10**9
      np.testing.assert_array_equal(record["audio"],
                                    expected_segment(str(base / name), sample, stop))


def test_segments_stop_at_the_next_onset_and_are_padded_at_the_end(builder):
  by_name = {(text(r["filename"]), r["position"]): r["audio"] for r in records(builder, "train")
             + records(builder, "test")}
  kick = by_name[("AVP_Dataset/Personal/Participant_9/P9_Kick_Personal.wav", 0)]
  assert np.all(kick[:400] != 0) and np.all(kick[400:] == 0)  # The next onset is 400 later.
  last = by_name[("AVP_Dataset/Personal/Participant_9/P9_Improvisation_Personal.wav", 2)]
  assert np.all(last[:300] != 0) and np.all(last[300:] == 0)  # The file ends 300 later.
  assert max(np.max(np.abs(a)) for a in by_name.values()) <= 1.0


def test_keeping_what_follows_the_next_onset(tmp_path):
  manual = tmp_path / "manual"
  write_avp_lvt(str(manual), participants=(9,), codes=())
  builder = prepare(tmp_path, manual, datasets="avp", stop_at_next_onset=False)
  kick = records(builder, "train")[0]
  assert text(kick["filename"]).endswith("P9_Kick_Personal.wav")
  np.testing.assert_array_equal(kick["audio"], expected_segment(
      str(manual / "AVP_Dataset/Personal/Participant_9/P9_Kick_Personal.wav"), 800, 10**9))
  assert builder.info.splits["train"].num_examples == 6  # Only AVP: LVT was not asked for.


def test_train_records_are_followed_by_their_augmented_copies(builder, root, tmp_path):
  augmented = prepare(tmp_path, root / "manual", augmentations=2, seed=3)
  assert augmented.builder_config.name.endswith("_aug2-seed3")
  train, originals = records(augmented, "train"), records(builder, "train")
  assert len(train) == 3 * len(originals)
  for original, stored in zip(originals, train[::3], strict=True):
    assert stored["augmentation"] == 0 and set(stored) == set(original)
    for field in original:  # The unaugmented build's record, unchanged.
      np.testing.assert_array_equal(stored[field], original[field])
  for index in range(0, len(train), 3):
    original = train[index]
    for copy in (1, 2):
      record = train[index + copy]
      assert record["augmentation"] == copy
      for field in set(original) - {"audio", "augmentation"}:
        np.testing.assert_array_equal(record[field], original[field])
      assert record["audio"].shape == (CLIP_SAMPLES,) and record["audio"].dtype == np.float32
      assert not np.allclose(record["audio"], original["audio"], atol=1e-3)
      # Copy k is the augmentation drawn from (seed, user, take, position, k) alone.
      rng = np.random.default_rng([3, original["user"], original["take"], original["position"],
                                   copy])
      np.testing.assert_array_equal(record["audio"], augmentation.pitch_shift_and_stretch(
          original["audio"], RATE, rng))
  # The test split is never augmented.
  for stored, original in zip(records(augmented, "test"), records(builder, "test"),
                              strict=True):
    for field in original:
      np.testing.assert_array_equal(stored[field], original[field])
  assert all(r["augmentation"] == 0 for split in ("train", "test")
             for r in records(builder, split))


def test_takes_and_users_as_published(builder):
  features = builder.info.features
  test_takes = {features["take"].int2str(r["take"]) for r in records(builder, "test")}
  assert test_takes == {"improvised"}
  # The 3rd of each AVP participant's 5 sorted recordings is the published test take.
  assert sorted(avp_lvt.AVP_TAKES)[2] == "Improvisation"
  users = {}
  for split in ("train", "test"):
    for record in records(builder, split):
      users.setdefault(features["user"].int2str(record["user"]), set()).add(
          text(record["participant"]))
  # LVT users are numbered in sorted file order; JSo's improvisation is JoS's.
  assert users == {"avp_9": {"Participant_9"}, "avp_11": {"Participant_11"},
                   "lvt_1": {"Bea"}, "lvt_2": {"Jab"}, "lvt_3": {"JoS"}}
  assert features["user"].names[8] == "avp_9" and features["user"].names[28] == "lvt_1"


def test_lvt_hh_is_a_closed_hihat_and_boxemes_are_published(builder):
  features = builder.info.features
  lvt = [r for r in records(builder, "train") if features["dataset"].int2str(r["dataset"])
         == "lvt"]
  hats = [r for r in lvt if text(r["label_text"]) == "HH"]
  assert hats and all(features["instrument"].int2str(r["instrument"]) == "hhc" for r in hats)
  assert all(features["instrument_reduced"].int2str(r["instrument_reduced"]) == "hihat"
             for r in hats)
  first = lvt[:3]  # lvt_1's phrase: Kick, Snare, HH.
  assert [r["boxeme"] for r in first] == [112, 113, 114]  # 28 * 4 + 0 * 3 + instrument.
  assert features["boxeme"].int2str(114) == "lvt_1_hh"
  avp = records(builder, "train")[0]  # avp_9's kick: user index 8.
  assert avp["boxeme"] == 8 * 4 and features["boxeme"].int2str(32) == "avp_9_kd"
  assert features["boxeme"].num_classes == 172


@pytest.mark.parametrize("kind, text_, name", [
    ("onset", "tsʰ", "ts"), ("onset", "tʃ", "tʃ"), ("onset", "kʃ", "kʃ"), ("onset", "dʒ", "dʒ"),
    ("onset", "ʡʢ", "ʡʢ"), ("onset", "t", "t"), ("onset", "!", "!"),
    ("onset", "ʔ", "ts"),  # Matches no rule: 0, as published.
    ("nucleus", "a", "a"), ("nucleus", "ui", "i"), ("nucleus", "ʌ", "ʌ"), ("nucleus", "x", "other"),
    ("nucleus", "ɘ", "other"),
])
def test_phoneme_labels_follow_the_published_rules(kind, text_, name):
  names = avp_lvt.vp.ONSETS if kind == "onset" else avp_lvt.vp.NUCLEI
  assert names[avp_lvt.phoneme_label(kind, text_)] == name


def test_config_names_and_checks():
  assert avp_lvt.avp_lvt_config().name == "sr44100_len0.4s_avp-lvt_rec3"
  config = avp_lvt.avp_lvt_config(datasets=("lvt", "avp"), stop_at_next_onset=False)
  assert config.datasets == ("avp", "lvt") and config.name.endswith("_through")
  assert avp_lvt.avp_lvt_config(augmentations=10).name == "sr44100_len0.4s_avp-lvt_rec3_aug10"
  assert avp_lvt.avp_lvt_config(seed=4).name == "sr44100_len0.4s_avp-lvt_rec3"  # Nothing drawn.
  assert avp_lvt.num_samples(avp_lvt.avp_lvt_config()) == 17640  # 48 frames at 8 ms, and more.
  for bad in ({"datasets": "avp_lvt"}, {"datasets": ()}, {"clip_seconds": 0},
              {"sample_rate": 0}, {"lvt_recording": 0}, {"stop_at_next_onset": 1},
              {"augmentations": -1}, {"augmentations": 2.0}, {"seed": -1}):
    with pytest.raises(ValueError):
      avp_lvt.avp_lvt_config(**bad)


def test_missing_files_say_what_to_put_where(tmp_path):
  manual = tmp_path / "manual"
  manual.mkdir()
  (manual / "readme.txt").write_text("")  # TFDS itself rejects an empty folder.
  with pytest.raises(FileNotFoundError) as error:
    prepare(tmp_path, manual)
  message = str(error.value)
  assert f"AVP_Dataset/Personal not found in {manual}" in message
  assert "Participant_<N>/P<N>_<take>_Personal.wav" in message and "LVT_Dataset/Frase" in message
  with pytest.raises(FileNotFoundError, match="no <code>P.csv annotations in .*LVT_Dataset/Frase"):
    write_avp_lvt(str(manual), participants=(9,), codes=())
    prepare(tmp_path, manual)
  with pytest.raises(FileNotFoundError, match="avp_lvt.*does not exist"):
    prepare(tmp_path, tmp_path / "nowhere")


@pytest.mark.parametrize("remove, names", [
    ("AVP_Dataset/Personal/Participant_11/P11_Snare_Personal.csv",
     ["Participant_11 lacks 1 files", "P11_Snare_Personal.csv"]),
    ("LVT_Dataset/DataSet_Wav_Annotation/Improviso/JabI3.wav",
     ["LVT_Dataset lacks 1 files", "JabI3.wav", 'datasets=("avp",)']),
    ("LVT_Dataset/Improviso/BeaI.csv", ["Improviso lacks 1 files", "BeaI.csv"]),
    ("LVT_Dataset/Frase/JabP.csv", ["JabI.csv has no Frase take", "JabP.csv"]),
])
def test_a_missing_file_is_named_with_its_folder(tmp_path, remove, names):
  manual = tmp_path / "manual"
  write_avp_lvt(str(manual))
  os.remove(manual / remove)
  with pytest.raises(FileNotFoundError) as error:
    prepare(tmp_path, manual)
  for name in names:
    assert name in str(error.value)
  assert_nothing_written(tmp_path)


@pytest.mark.parametrize("row, message", [
    ("0.1,kd,p", "expected 4 fields 'onset_seconds,instrument,onset_phoneme,nucleus_phoneme'"),
    ("0.1,kd,p,u,extra", "expected 4 fields"),
    ("onset,kd,p,u", "must be a number of seconds, got 'onset'"),
    ("-0.1,kd,p,u", "finite and >= 0"),
    ("nan,kd,p,u", "finite and >= 0"),
    ("0.02,kd,p,u", "onset 0.02 s is not after the previous row's 0.05 s \\(line 1\\)"),
    ("0.05,kd,p,u", "is not after"),
    ("0.1,kdd,p,u", "unknown instrument 'kdd' \\(did you mean 'kd'\\?\\)"),
    ("0.1,Kick,p,u", "unknown instrument 'Kick'"),  # An LVT label in an AVP file.
    ("0.5,kd,p,u", "at or after the end of .*P9_Kick_Personal.wav \\(0.5 s\\)"),
])
def test_malformed_rows_name_file_and_line_and_write_nothing(tmp_path, row, message):
  manual = tmp_path / "manual"
  write_avp_lvt(str(manual), participants=(9,), codes=())
  path = manual / "AVP_Dataset" / "Personal" / "Participant_9" / "P9_Kick_Personal.csv"
  path.write_text(f"0.05,kd,p,u\n\n{row}\n")  # The bad row is line 3.
  with pytest.raises(ValueError, match=message) as error:
    prepare(tmp_path, manual, datasets="avp")
  assert f"{path}:3:" in str(error.value)
  assert_nothing_written(tmp_path)


def test_an_lvt_label_error_names_file_and_line(tmp_path):
  manual = tmp_path / "manual"
  write_avp_lvt(str(manual), participants=(), codes=("Bea",))
  path = manual / "LVT_Dataset" / "Improviso" / "BeaI.csv"
  path.write_text("0.05,Kick,p,u\n0.1,hhc,ts,x\n")
  with pytest.raises(ValueError, match="unknown instrument 'hhc'.*'Kick', 'Snare', 'HH'") as error:
    prepare(tmp_path, manual, datasets="lvt")
  assert f"{path}:2:" in str(error.value)


@pytest.mark.parametrize("content, message", [
    (b"RIFF\x00\x00not really a wave file", "unreadable audio file"),
    (None, "silent"),
])
def test_bad_audio_fails_naming_the_file_and_writes_nothing(tmp_path, content, message):
  manual = tmp_path / "manual"
  write_avp_lvt(str(manual), participants=(9,), codes=())
  bad = manual / "AVP_Dataset" / "Personal" / "Participant_9" / "P9_HHopened_Personal.wav"
  if content is None:
    soundfile.write(str(bad), np.zeros(int(SECONDS * RATE), np.float32), RATE)
  else:
    bad.write_bytes(content)
  with pytest.raises(data.AudioError, match=f"P9_HHopened_Personal.wav: .*{message}"):
    prepare(tmp_path, manual, datasets="avp")
  assert_nothing_written(tmp_path)
