"""Pitch shift and time stretch at preparation: measured pitch and duration, length, determinism."""

import numpy as np
import pytest

from soundjax.data import augmentation

RATE = 16000


def tone(hz, seconds=1.0, sample_rate=RATE):
  return (0.5 * np.sin(2 * np.pi * hz * np.arange(int(seconds * sample_rate)) / sample_rate)
          ).astype(np.float32)


def peak_hz(audio, seconds=0.5, sample_rate=RATE):
  """The loudest frequency of the first `seconds`, Hann-windowed, zero-padded to 0.1 Hz bins and
  refined by a parabola through the peak's log magnitudes."""
  segment = audio[:int(seconds * sample_rate)].astype(np.float64)
  n = 10 * sample_rate
  magnitude = np.log(np.abs(np.fft.rfft(segment * np.hanning(segment.size), n)) + 1e-12)
  k = int(np.argmax(magnitude))
  left, centre, right = magnitude[k - 1:k + 2]
  offset = 0.5 * (left - right) / (left - 2 * centre + right)
  return (k + offset) * sample_rate / n


def sounding(audio, sample_rate=RATE, below_db=10.0):
  """(first, last + 1) 5 ms frame within `below_db` of the loudest, in seconds."""
  frame = sample_rate // 200
  power = np.mean(np.square(audio[:audio.size // frame * frame].reshape(-1, frame)), axis=1)
  loud = np.flatnonzero(power > power.max() * 10 ** (-below_db / 10))
  return loud[0] / 200, (loud[-1] + 1) / 200


@pytest.mark.parametrize("semitones, rate, stretch_first", [
    (1.5, 1.0, False), (-1.5, 0.8, True), (0.7, 1.2, False), (-0.4, 0.9, True)])
def test_a_pure_tone_moves_by_the_drawn_semitones(semitones, rate, stretch_first):
  draw = augmentation.ShiftAndStretch(semitones, rate, stretch_first)
  out = augmentation.shift_and_stretch(tone(440.0), RATE, draw)
  assert out.shape == (RATE,) and out.dtype == np.float32
  np.testing.assert_allclose(peak_hz(out), 440.0 * 2 ** (semitones / 12), rtol=2e-3)


@pytest.mark.parametrize("rate, semitones, stretch_first", [
    (0.8, 0.0, True), (1.2, 0.0, False), (0.8, 1.5, False), (1.2, -1.5, True), (1.0, 1.0, True)])
def test_a_burst_lasts_one_over_the_rate_and_starts_at_sample_zero(rate, semitones,
                                                                     stretch_first):
  clip = np.zeros(RATE, np.float32)
  clip[:int(0.3 * RATE)] = 0.5 * np.random.default_rng(0).standard_normal(int(0.3 * RATE))
  out = augmentation.shift_and_stretch(
      clip, RATE, augmentation.ShiftAndStretch(semitones, rate, stretch_first))
  start, stop = sounding(out)
  assert start == 0.0  # The onset stays at the clip's start.
  # The phase vocoder smears the burst's end over a part of its 64 ms frame.
  assert abs(stop - 0.3 / rate) < 0.02, (stop, 0.3 / rate)
  assert sounding(clip) == (0.0, 0.3)


def rms_db(audio, start, stop):
  return 10 * np.log10(np.mean(np.square(audio[int(start * RATE):int(stop * RATE)])))


@pytest.mark.parametrize("semitones, rate, stretch_first", [(1.5, 0.8, False), (-1.5, 1.2, True)])
def test_noise_and_tones_keep_their_level(semitones, rate, stretch_first):
  """librosa's phase vocoder alone would leave noise ~5 dB quieter after both effects."""
  noise = 0.3 * np.random.default_rng(2).standard_normal(RATE).astype(np.float32)
  draw = augmentation.ShiftAndStretch(semitones, rate, stretch_first)
  for clip in (noise, tone(440.0)):
    out = augmentation.shift_and_stretch(clip, RATE, draw)
    # Away from the first frame (still coherent) and the end (cut or padded).
    assert abs(rms_db(out, 0.1, 0.6) - rms_db(clip, 0.1, 0.6)) < 1.0


@pytest.mark.parametrize("length", [800, 6400, 17640])
def test_the_length_is_kept_at_any_draw(length):
  clip = np.random.default_rng(1).standard_normal(length).astype(np.float32)
  for seed in range(4):
    out = augmentation.pitch_shift_and_stretch(clip, RATE, np.random.default_rng(seed))
    assert out.shape == (length,) and out.dtype == np.float32 and np.all(np.isfinite(out))


def test_the_same_generator_state_gives_the_same_copy_and_the_draw_it_reports():
  clip = tone(300.0)
  one = augmentation.pitch_shift_and_stretch(clip, RATE, np.random.default_rng([5, 1]))
  again = augmentation.pitch_shift_and_stretch(clip, RATE, np.random.default_rng([5, 1]))
  other = augmentation.pitch_shift_and_stretch(clip, RATE, np.random.default_rng([5, 2]))
  np.testing.assert_array_equal(one, again)
  assert not np.allclose(one, other)
  draw = augmentation.draw_shift_and_stretch(np.random.default_rng([5, 1]))
  np.testing.assert_allclose(peak_hz(one, 0.4), 300.0 * 2 ** (draw.semitones / 12), rtol=2e-3)


def test_draws_cover_the_published_ranges_and_both_orders():
  rng = np.random.default_rng(0)
  draws = [augmentation.draw_shift_and_stretch(rng) for _ in range(400)]
  semitones = np.array([d.semitones for d in draws])
  rates = np.array([d.rate for d in draws])
  assert -1.5 <= semitones.min() < -1.4 and 1.4 < semitones.max() <= 1.5
  assert 0.8 <= rates.min() < 0.81 and 1.19 < rates.max() <= 1.2
  assert 0.4 < np.mean([d.stretch_first for d in draws]) < 0.6
  narrow = augmentation.draw_shift_and_stretch(rng, semitones=0.5, stretch=(1.0, 1.0))
  assert abs(narrow.semitones) <= 0.5 and narrow.rate == 1.0


@pytest.mark.parametrize("settings, message", [
    (dict(semitones=-1.0), "semitones"), (dict(stretch=(1.2, 0.8)), "stretch"),
    (dict(stretch=(0.0, 1.0)), "stretch"), (dict(semitones=float("nan")), "semitones")])
def test_bad_ranges_are_refused(settings, message):
  with pytest.raises(ValueError, match=message):
    augmentation.pitch_shift_and_stretch(tone(300.0), RATE, np.random.default_rng(0), **settings)
