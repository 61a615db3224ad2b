"""Amateur vocal percussion synthesised from a seed: the offline stand-in for AVP (Paper 2).

A simulated user imitates kick (kd), snare (sd), closed and open hi-hat (hhc, hho) with
syllables: an onset consonant from AVP's 13 onset labels, then a nucleus from its 16 nucleus
labels ("other" here: no nucleus at all, the published code's catch-all). An utterance is
rendered as
- a burst (plosive release: band noise decaying in a few ms; a click for "!"),
- a frication (band noise held for the instrument's length: /s/ ~5.6 kHz, /ɕ/ ~4.3 kHz, /ʃ ʒ/
  ~3 kHz; an open hi-hat holds it longest),
- a nucleus: a vowel is a glottal source's harmonics (-6 dB/octave: an LF-like pulse's
  -12 dB/octave plus lip radiation) weighted by three resonators at the vowel's formants F1-F3
  times the user's formant scale, plus aspiration noise through the same resonators as much as
  the user is breathy; "h" is that aspiration alone,
- a voice bar for voiced onsets (kg, tʒ, ʡʢ, dʒ), and a low decaying "thump" for kicks,
then scaled to the user's loudness over the user's microphone noise floor.

Voice traits persist across a user's takes: median pitch and its spread, formant scale, the
brightness of bursts and fricatives, how long sounds are held, pace and timing jitter, loudness,
breathiness, noise floor. Each user also draws, per instrument, a sparse preference over the
plausible syllables (`SYLLABLE_CHOICES`: kicks are p/b-like plosives with back or no vowels,
snares t/k/tʃ/ts with an open vowel, hi-hats ts/t/tʃ with no or a close vowel), so syllables
carry information beyond instruments, as in AVP.

Everything lies below `MAX_CONTENT_HZ` (noise is shaped and harmonics are summed in frequency),
so 16 kHz loses nothing; at 44.1 kHz the same draws give the same parameters (only the noise's
realisation differs).
Generation is host-side numpy, deterministic in the `rng` given.
"""

import dataclasses
from typing import Dict, Optional, Sequence, Tuple

import numpy as np

INSTRUMENTS = ("kd", "sd", "hhc", "hho")
KD, SD, HHC, HHO = range(4)
# The published `classred`: {kick, snare} vs {closed, open hi-hat}.
INSTRUMENTS_REDUCED = ("kick_snare", "hihat")
INSTRUMENT_REDUCTION = (0, 0, 1, 1)

# AVP's phoneme labels, in the published code's index order (`Create_Phoneme_Labels`).
ONSETS = ("ts", "tʃ", "tɕ", "kg", "tʒ", "ʡʢ", "dʒ", "kʃ", "t", "p", "k", "s", "!")
NUCLEI = ("a", "e", "i", "o", "u", "æ", "œ", "ə", "ʊ", "ɯ", "y", "ɪ", "ɐ", "ʌ", "h", "other")
# The published reduction (same function), by place and manner; each group is named after its
# first member:
# - ts: alveolar sibilants {ts, s};
# - tʃ: post-alveolar and alveolo-palatal affricates {tʃ, tɕ, dʒ, tʒ};
# - k: velar releases {kg, k, kʃ};
# - p: the low, non-coronal plosives {ʡʢ, p} (bilabial and epiglottal);
# - t: coronal stops and clicks {t, !}.
# Nuclei: open {a, æ, ɐ, ʌ}, mid front/central {e, œ, ə}, close front {i, y, ɪ}, mid back
# rounded {o, ʊ}, close back {u, ɯ}, aspiration {h}, none {other}.
ONSET_GROUPS = {"ts": ("ts", "s"), "tʃ": ("tʃ", "tɕ", "dʒ", "tʒ"), "k": ("kg", "k", "kʃ"),
                "p": ("ʡʢ", "p"), "t": ("t", "!")}
NUCLEUS_GROUPS = {"a": ("a", "æ", "ɐ", "ʌ"), "e": ("e", "œ", "ə"), "i": ("i", "y", "ɪ"),
                  "o": ("o", "ʊ"), "u": ("u", "ɯ"), "h": ("h",), "other": ("other",)}
ONSETS_REDUCED, NUCLEI_REDUCED = tuple(ONSET_GROUPS), tuple(NUCLEUS_GROUPS)


def _reduction(names: Sequence[str], groups: Dict[str, Tuple[str, ...]]) -> Tuple[int, ...]:
  group_of = {member: index for index, members in enumerate(groups.values())
              for member in members}
  return tuple(group_of[name] for name in names)


ONSET_REDUCTION = _reduction(ONSETS, ONSET_GROUPS)
NUCLEUS_REDUCTION = _reduction(NUCLEI, NUCLEUS_GROUPS)

# Plausible syllables per instrument with their popularity across users (a user's preference is
# a sparse draw around it). Together they use every onset and nucleus label.
SYLLABLE_CHOICES = (
    # kd: lip or epiglottal plosives with back/low vowels or none.
    (("p", "u", 3), ("p", "o", 2), ("p", "other", 3), ("p", "ʊ", 1), ("p", "ɯ", 1),
     ("p", "ə", 1), ("ʡʢ", "other", 1), ("ʡʢ", "u", 1), ("k", "u", 1), ("kg", "other", 1),
     ("kg", "u", 1), ("t", "u", 0.5)),
    # sd: t/k/tʃ/ts with an open vowel, or a velar/lip release into frication.
    (("k", "a", 2), ("k", "æ", 1), ("k", "ʌ", 1), ("k", "œ", 0.5), ("t", "a", 1), ("t", "ʌ", 1),
     ("t", "e", 1), ("tʃ", "a", 1.5), ("tʃ", "e", 1), ("ts", "a", 1), ("ts", "ɐ", 1),
     ("kʃ", "other", 1.5), ("kʃ", "h", 1), ("p", "h", 1), ("dʒ", "a", 0.5), ("tɕ", "a", 0.5),
     ("!", "other", 0.5), ("kg", "a", 0.5), ("t", "ɐ", 0.5)),
    # hhc: short ts/t/tʃ with no or a short close vowel.
    (("ts", "other", 3), ("t", "other", 2), ("tʃ", "other", 1), ("ts", "i", 1.5), ("t", "i", 1.5),
     ("tɕ", "i", 1), ("tɕ", "other", 1), ("s", "other", 0.5), ("k", "i", 0.5), ("ts", "ɪ", 1),
     ("t", "y", 0.5), ("t", "ɪ", 0.5), ("!", "other", 0.5)),
    # hho: fricative onsets only, held long.
    (("ts", "other", 3), ("ts", "h", 1), ("tʃ", "other", 2), ("tʃ", "h", 1), ("s", "other", 1),
     ("tʒ", "other", 1), ("tɕ", "h", 0.5), ("ts", "i", 1), ("tʃ", "i", 0.5), ("s", "h", 0.5),
     ("tɕ", "other", 0.5), ("tʃ", "œ", 0.5), ("ts", "e", 0.5)),
)
# The syllable label space: every (onset, nucleus) pair some instrument uses, in label order.
SYLLABLES = tuple(sorted({(ONSETS.index(o), NUCLEI.index(n))
                          for choices in SYLLABLE_CHOICES for o, n, _ in choices}))
SYLLABLE_NAMES = tuple(f"{ONSETS[o]}_{NUCLEI[n]}" for o, n in SYLLABLES)
SYLLABLES_REDUCED = tuple(sorted({(ONSET_REDUCTION[o], NUCLEUS_REDUCTION[n])
                                  for o, n in SYLLABLES}))
SYLLABLE_REDUCED_NAMES = tuple(f"{ONSETS_REDUCED[o]}_{NUCLEI_REDUCED[n]}"
                               for o, n in SYLLABLES_REDUCED)
SYLLABLE_REDUCTION = tuple(SYLLABLES_REDUCED.index((ONSET_REDUCTION[o], NUCLEUS_REDUCTION[n]))
                           for o, n in SYLLABLES)

# Nothing is rendered above this, so any rate from 16 kHz up holds the whole sound.
MAX_CONTENT_HZ = 7000.0
MIN_SAMPLE_RATE = 16000

# Onset acoustics: burst (centre Hz, width in octaves, decay ms, level) or None; frication
# (centre Hz, width in octaves) or None; whether the onset is voiced.
_BURST_T = (4200.0, 0.8, 3.0, 1.0)
_ONSET_SOUNDS = {
    "ts": (_BURST_T, (5600.0, 0.35), False),
    "tʃ": (_BURST_T, (3000.0, 0.45), False),
    "tɕ": (_BURST_T, (4300.0, 0.4), False),
    "kg": ((1600.0, 0.5, 8.0, 1.0), None, True),
    "tʒ": ((3800.0, 0.7, 3.0, 0.6), (2900.0, 0.45), True),
    "ʡʢ": ((900.0, 0.7, 12.0, 1.0), (1100.0, 0.6), True),
    "dʒ": ((3000.0, 0.7, 2.0, 0.4), (2900.0, 0.45), True),
    "kʃ": ((1800.0, 0.5, 8.0, 1.0), (3000.0, 0.45), False),
    "t": ((4200.0, 0.8, 4.0, 1.0), None, False),
    "p": ((700.0, 1.2, 6.0, 1.0), None, False),
    "k": ((1800.0, 0.5, 9.0, 1.0), None, False),
    "s": (None, (5600.0, 0.35), False),
    "!": ((2500.0, 0.35, 1.2, 1.4), None, False),
}
# Formants F1-F3 (Hz) of an adult voice (Peterson & Barney and IPA-chart values); "h" is
# aspiration through the neutral vowel's tract.
_FORMANTS = {
    "a": (800, 1300, 2500), "e": (420, 2100, 2700), "i": (280, 2250, 2900),
    "o": (380, 750, 2450), "u": (290, 650, 2250), "æ": (660, 1720, 2410),
    "œ": (550, 1600, 2450), "ə": (500, 1500, 2500), "ʊ": (440, 1020, 2240),
    "ɯ": (300, 1400, 2400), "y": (280, 1800, 2200), "ɪ": (390, 1990, 2550),
    "ɐ": (650, 1350, 2500), "ʌ": (640, 1190, 2390), "h": (500, 1500, 2500),
}
_BANDWIDTHS = (80.0, 100.0, 150.0)
_VOICE_BAR_FORMANTS = (250.0, 2000.0, 3000.0)  # A closed tract: only the lowest harmonics pass.
# Per instrument: pitch relative to the user's median, frication and nucleus lengths (s).
_PITCH_FACTOR = (0.85, 1.0, 1.15, 1.1)
_FRICATION_SECONDS = (0.03, 0.07, 0.045, 0.24)
_NUCLEUS_SECONDS = (0.09, 0.1, 0.045, 0.09)
# A hi-hat's vowel is a soft, short colouring of the fricative, not the loudest part.
_NUCLEUS_LEVEL = (0.35, 0.35, 0.1, 0.12)


@dataclasses.dataclass(frozen=True)
class Voice:
  """One simulated user's persistent traits.

  Attributes:
    f0_hz: median fundamental (85-250 Hz: low male to high female voices).
    pitch_spread: standard deviation of an utterance's log pitch around it.
    formant_scale: every formant times this (vocal tract length).
    brightness: burst and frication centres times this (place of articulation habits).
    hold: sound lengths times this.
    isolated_seconds: mean inter-onset interval in isolated takes.
    beat_seconds: mean inter-onset interval in the improvised take (one step of the groove).
    timing_jitter: standard deviation of log inter-onset intervals.
    max_delay_seconds: how late after the annotated onset the sound may start.
    gain_db: median peak level (dBFS); `gain_jitter_db` its spread per utterance.
    breathiness: aspiration noise relative to the voiced part (0: none).
    noise_db: microphone noise floor (RMS, dBFS).
    preferences: float `[4, len(SYLLABLES)]`, per instrument the probability of each syllable.
    groove: the 8-step instrument pattern the improvised take varies.
    substitution: how often an improvised step leaves the pattern for any instrument.
  """
  f0_hz: float
  pitch_spread: float
  formant_scale: float
  brightness: float
  hold: float
  isolated_seconds: float
  beat_seconds: float
  timing_jitter: float
  max_delay_seconds: float
  gain_db: float
  gain_jitter_db: float
  breathiness: float
  noise_db: float
  preferences: np.ndarray
  groove: Tuple[int, ...]
  substitution: float


def _log_uniform(rng: np.random.Generator, low: float, high: float) -> float:
  return float(np.exp(rng.uniform(np.log(low), np.log(high))))


def draw_voice(rng: np.random.Generator) -> Voice:
  """A user's traits, syllable preferences and groove (see `Voice`)."""
  preferences = np.zeros((len(INSTRUMENTS), len(SYLLABLES)))
  for instrument, choices in enumerate(SYLLABLE_CHOICES):
    popularity = np.array([weight for _, _, weight in choices])
    # A total concentration of 2 over ~12 choices: most users favour one to three syllables.
    drawn = rng.dirichlet(2.0 * popularity / popularity.sum())
    columns = [SYLLABLES.index((ONSETS.index(o), NUCLEI.index(n))) for o, n, _ in choices]
    preferences[instrument, columns] = drawn
  preferences /= preferences.sum(axis=1, keepdims=True)
  hats = np.where(rng.uniform(size=4) < rng.uniform(0.1, 0.4), HHO, HHC)
  groove = [KD, int(hats[0]), SD, int(hats[1]), KD, int(hats[2]), SD, int(hats[3])]
  if rng.uniform() < 0.5:
    groove[5] = KD  # A syncopated second kick.
  return Voice(
      f0_hz=_log_uniform(rng, 85.0, 250.0), pitch_spread=rng.uniform(0.03, 0.1),
      formant_scale=rng.uniform(0.85, 1.18), brightness=rng.uniform(0.88, 1.12),
      hold=_log_uniform(rng, 0.7, 1.4), isolated_seconds=rng.uniform(0.5, 0.9),
      beat_seconds=rng.uniform(0.18, 0.3), timing_jitter=rng.uniform(0.02, 0.08),
      max_delay_seconds=rng.uniform(0.0, 0.006), gain_db=rng.uniform(-12.0, -3.0),
      gain_jitter_db=rng.uniform(0.5, 2.5), breathiness=rng.uniform(0.0, 0.6),
      noise_db=rng.uniform(-70.0, -50.0), preferences=preferences, groove=tuple(groove),
      substitution=rng.uniform(0.05, 0.3))


@dataclasses.dataclass(frozen=True)
class Step:
  """One planned utterance of a take: what is imitated with which syllable, and when the next
  one starts (`ioi_seconds` after this onset)."""
  instrument: int
  syllable: int
  ioi_seconds: float


def draw_step(rng: np.random.Generator, voice: Voice, instrument: Optional[int],
              position: int) -> Step:
  """Utterance `position` of a take: of `instrument` (an isolated take) or, with None, of the
  user's improvised groove (the pattern, sometimes left for a random instrument)."""
  if instrument is None:
    instrument = voice.groove[position % len(voice.groove)]
    if rng.uniform() < voice.substitution:
      instrument = int(rng.integers(len(INSTRUMENTS)))
    ioi = voice.beat_seconds * np.exp(rng.normal(0.0, voice.timing_jitter))
  else:
    ioi = voice.isolated_seconds * np.exp(rng.normal(0.0, 2 * voice.timing_jitter))
  syllable = int(rng.choice(len(SYLLABLES), p=voice.preferences[instrument]))
  return Step(instrument=int(instrument), syllable=syllable, ioi_seconds=float(ioi))


def label_levels(user: int, instrument: int, syllable: int) -> Dict[str, int]:
  """Every label level of an utterance, as class indices (names: this module's tuples)."""
  onset, nucleus = SYLLABLES[syllable]
  return {
      "instrument": instrument,
      "instrument_reduced": INSTRUMENT_REDUCTION[instrument],
      "phoneme_onset": onset,
      "phoneme_nucleus": nucleus,
      "phoneme_onset_reduced": ONSET_REDUCTION[onset],
      "phoneme_nucleus_reduced": NUCLEUS_REDUCTION[nucleus],
      "syllable": syllable,
      "syllable_reduced": SYLLABLE_REDUCTION[syllable],
      "boxeme": user * len(INSTRUMENTS) + instrument,
  }


# --- Rendering -------------------------------------------------------------------------------


def _formant_gain(freqs: np.ndarray, formants: Sequence[float]) -> np.ndarray:
  """Magnitude response of cascaded second-order resonators (unit gain at DC)."""
  gain = np.ones_like(freqs)
  for centre, bandwidth in zip(formants, _BANDWIDTHS):
    gain *= centre ** 2 / np.sqrt((centre ** 2 - freqs ** 2) ** 2 + (bandwidth * freqs) ** 2)
  return gain


def _shaped_noise(rng: np.random.Generator, num_samples: int, sample_rate: int,
                  gain_of_hz) -> np.ndarray:
  """White noise through the magnitude response `gain_of_hz(freqs)`, cut at `MAX_CONTENT_HZ`,
  at unit RMS."""
  freqs = np.fft.rfftfreq(num_samples, 1.0 / sample_rate)
  spectrum = np.fft.rfft(rng.standard_normal(num_samples))
  spectrum *= gain_of_hz(freqs) * (freqs <= MAX_CONTENT_HZ)
  spectrum[0] = 0.0
  noise = np.fft.irfft(spectrum, n=num_samples)
  return noise / (np.sqrt(np.mean(np.square(noise))) + 1e-12)


def _band(centre_hz: float, octaves: float):
  """A Gaussian band in log frequency, `octaves` its standard deviation."""
  return lambda freqs: np.exp(-0.5 * (np.log2(np.maximum(freqs, 1.0) / centre_hz) / octaves) ** 2)


def _harmonics(f0: np.ndarray, sample_rate: int, formants: Sequence[float]) -> np.ndarray:
  """A voiced source with pitch contour `f0 [samples]` through the formant resonators, summed
  harmonic by harmonic so nothing lies above `MAX_CONTENT_HZ` (unit RMS)."""
  orders = np.arange(1, int(MAX_CONTENT_HZ // np.max(f0)) + 1)
  # Source slope -6 dB/octave (1 / k), resonator gains at each harmonic's mean frequency.
  weights = _formant_gain(orders * np.mean(f0), formants) / orders
  phase = 2 * np.pi * np.cumsum(f0) / sample_rate
  voiced = np.sin(np.outer(phase, orders)) @ weights
  return voiced / (np.sqrt(np.mean(np.square(voiced))) + 1e-12)


def _envelope(num_samples: int, sample_rate: int, attack: float, release: float) -> np.ndarray:
  """Raised-cosine attack and release (seconds), flat between."""
  envelope = np.ones(num_samples)
  for ramp, end in ((attack, False), (release, True)):
    length = min(int(ramp * sample_rate), num_samples)
    if length > 0:
      rise = 0.5 * (1 - np.cos(np.pi * np.arange(length) / length))
      if end:
        envelope[num_samples - length:] *= rise[::-1]
      else:
        envelope[:length] *= rise
  return envelope


def _add(out: np.ndarray, start: float, signal: np.ndarray, sample_rate: int) -> None:
  """Adds `signal` at `start` seconds, cut at the end of `out`."""
  begin = int(round(start * sample_rate))
  if begin < out.size:
    stop = min(out.size, begin + signal.size)
    out[begin:stop] += signal[:stop - begin]


def synth_utterance(rng: np.random.Generator, voice: Voice, instrument: int, syllable: int, *,
                    sample_rate: int, num_samples: int, stop_seconds: Optional[float] = None,
                    level_db: float = 0.0) -> np.ndarray:
  """One utterance, starting at its annotated onset (sample 0), over the user's noise floor.

  Args:
    rng: the generator its parameters and noise are drawn from (parameters first, from a spawned
      stream, so they do not depend on `sample_rate`).
    voice: the user's traits.
    instrument: index into `INSTRUMENTS`; sets lengths and pitch, adds a kick's thump.
    syllable: index into `SYLLABLES`.
    sample_rate: in Hz, at least `MIN_SAMPLE_RATE`.
    num_samples: the clip length; the sound is cut there.
    stop_seconds: where the next utterance starts: the clip fades out (5 ms) before it and is
      zero after, like the published onset-to-next-onset segments. None: no cut.
    level_db: a level offset (a take recorded nearer or further from the microphone).

  Returns:
    float32 waveform `[num_samples]`, peak at most 1.
  """
  param_rng, noise_rng = rng.spawn(2)
  onset_name, nucleus_name = ONSETS[SYLLABLES[syllable][0]], NUCLEI[SYLLABLES[syllable][1]]
  burst, frication, voiced_onset = _ONSET_SOUNDS[onset_name]
  # All parameters first: identical draws at any sample rate.
  delay = param_rng.uniform(0.0, voice.max_delay_seconds)
  jitter = lambda sd: float(np.exp(param_rng.normal(0.0, sd)))
  burst_tau = burst[2] * 1e-3 * jitter(0.15) if burst else 0.0
  centre_scale = voice.brightness * jitter(0.04)
  frication_seconds = _FRICATION_SECONDS[instrument] * voice.hold * jitter(0.2)
  nucleus_seconds = _NUCLEUS_SECONDS[instrument] * voice.hold * jitter(0.2)
  vot = param_rng.uniform(0.005, 0.02) if frication is None else 0.0
  f0 = voice.f0_hz * _PITCH_FACTOR[instrument] * jitter(voice.pitch_spread)
  glide = param_rng.uniform(0.0, 0.2)
  peak_db = voice.gain_db + level_db + param_rng.normal(0.0, voice.gain_jitter_db)
  thump_hz = param_rng.uniform(50.0, 90.0)

  out = np.zeros(num_samples)
  time = delay
  formants = [f * voice.formant_scale for f in _FORMANTS.get(nucleus_name, _FORMANTS["ə"])]
  if burst:
    length = max(int(6 * burst_tau * sample_rate), 8)
    t = np.arange(length) / sample_rate
    shape = (1 - np.exp(-t / 5e-4)) * np.exp(-t / burst_tau)
    noise = _shaped_noise(noise_rng, length, sample_rate,
                          _band(burst[0] * centre_scale, burst[1]))
    _add(out, time, burst[3] * shape * noise, sample_rate)
    time += min(burst_tau, 0.002)
  start_of_onset = time
  if frication:
    length = max(int(frication_seconds * sample_rate), 8)
    noise = _shaped_noise(noise_rng, length, sample_rate,
                          _band(frication[0] * centre_scale, frication[1]))
    envelope = _envelope(length, sample_rate, 0.004, 0.6 * frication_seconds)
    _add(out, time, 0.35 * envelope * noise, sample_rate)
    time += 0.8 * frication_seconds
  else:
    time += vot
  if voiced_onset:  # Voicing under the closure and frication: only low harmonics get out.
    length = max(int((time - start_of_onset + 0.01) * sample_rate), 8)
    bar = _harmonics(np.full(length, 0.9 * f0), sample_rate, _VOICE_BAR_FORMANTS)
    _add(out, start_of_onset, 0.12 * _envelope(length, sample_rate, 0.005, 0.005) * bar,
         sample_rate)
  if nucleus_name != "other":
    length = max(int(nucleus_seconds * sample_rate), 8)
    envelope = _envelope(length, sample_rate, 0.008, 0.5 * nucleus_seconds)
    aspiration = _shaped_noise(noise_rng, length, sample_rate,
                               lambda freqs: _formant_gain(freqs, formants))
    if nucleus_name == "h":
      sound = 0.2 * aspiration
    else:
      contour = f0 * np.linspace(1 + glide, 1 - glide / 3, length)
      sound = _NUCLEUS_LEVEL[instrument] * (_harmonics(contour, sample_rate, formants)
                                            + voice.breathiness * aspiration)
    _add(out, time, envelope * sound, sample_rate)
  if instrument == KD:  # The lips' low "boom" of a beatboxed kick: a falling, decaying sine.
    length = int(0.2 * sample_rate)
    t = np.arange(length) / sample_rate
    sweep = thump_hz * (1 + 0.6 * np.exp(-t / 0.02))
    thump = np.sin(2 * np.pi * np.cumsum(sweep) / sample_rate) * np.exp(-t / 0.04)
    _add(out, delay, 0.6 * (1 - np.exp(-t / 0.002)) * thump, sample_rate)

  out *= 10 ** (peak_db / 20) / (np.max(np.abs(out)) + 1e-12)
  out += 10 ** (voice.noise_db / 20) * _shaped_noise(noise_rng, num_samples, sample_rate,
                                                     np.ones_like)
  if stop_seconds is not None:
    stop = min(max(int(stop_seconds * sample_rate), 0), num_samples)
    out[:stop] *= _envelope(stop, sample_rate, 0.0, 0.005)
    out[stop:] = 0.0
  return (out / max(1.0, float(np.max(np.abs(out))))).astype(np.float32)
