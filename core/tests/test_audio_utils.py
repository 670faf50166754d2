"""polyformers.audio_utils: decoding files, the mono rule, waveform checks, resampling."""

from __future__ import annotations

import wave

import numpy as np
import pytest

from polyformers.audio_utils import check_waveform, read_audio, resample, to_mono
from polyformers.errors import AudioInputError


def _pcm(samples: np.ndarray) -> np.ndarray:
    return np.round(np.asarray(samples) * 32767).astype("<i2")


def _write_wav(path, samples: np.ndarray, rate: int) -> None:
    """16-bit PCM through the standard library (no soundfile needed to write)."""
    pcm = _pcm(samples)
    with wave.open(str(path), "wb") as f:
        f.setnchannels(1 if pcm.ndim == 1 else pcm.shape[1])
        f.setsampwidth(2)
        f.setframerate(rate)
        f.writeframes(pcm.tobytes())


@pytest.mark.parametrize(("orig", "new"), [(22050, 16000), (8000, 16000), (44100, 16000), (48000, 16000)])
def test_resample_keeps_a_tone_and_the_length_rule(orig, new):
    t = np.arange(orig) / orig
    tone = np.sin(2 * np.pi * 440 * t).astype(np.float32)
    out = resample(tone, orig, new)
    assert out.dtype == np.float32 and out.shape == (int(np.ceil(new * len(tone) / orig)),)
    expected = np.sin(2 * np.pi * 440 * np.arange(len(out)) / new)
    assert np.abs(out[200:-200] - expected[200:-200]).max() < 2e-3  # edges see the zero padding


def test_resample_removes_what_the_new_rate_cannot_hold():
    t = np.arange(48000) / 48000
    high = np.sin(2 * np.pi * 12000 * t).astype(np.float32)  # above 16 kHz's Nyquist (8 kHz)
    assert np.abs(resample(high, 48000, 16000)[200:-200]).max() < 0.02


def test_resample_identity_and_bad_rates():
    x = np.random.default_rng(0).standard_normal(100).astype(np.float32)
    assert np.array_equal(resample(x, 16000, 16000), x)
    for bad in (0, -8000, 16000.5, True, "16000"):
        with pytest.raises(AudioInputError, match="orig_sr"):
            resample(x, bad, 16000)


def test_to_mono_follows_transformers_5():
    x = np.arange(10, dtype=np.float32)
    assert to_mono(x) is x
    np.testing.assert_array_equal(to_mono(np.stack([x, x + 2])), x + 1)  # (channels, samples)
    np.testing.assert_array_equal(to_mono(x[None]), x)
    with pytest.raises(AudioInputError, match=r"shape \(10, 2\).*transposed"):
        to_mono(np.stack([x, x], axis=1))  # channels-last is ambiguous: refused
    with pytest.raises(AudioInputError, match="3 dimensions"):
        to_mono(np.zeros((1, 2, 3)))


def test_check_waveform():
    assert check_waveform([0.1, 0.2]).shape == (2,)
    for bad, message in ((np.zeros(0), "0 samples"), (np.array([1.0, np.inf]), "NaN or infinite"), (np.array(["a"]), "real numbers"), (np.zeros((2, 2)), "1-D")):
        with pytest.raises(AudioInputError, match=message):
            check_waveform(bad, name="audio")


def test_read_audio_decodes_and_mixes_down(tmp_path):
    pytest.importorskip("soundfile")
    rng = np.random.default_rng(0)
    left, right = (rng.uniform(-0.5, 0.5, 800) for _ in range(2))
    _write_wav(tmp_path / "mono.wav", left, 8000)
    _write_wav(tmp_path / "stereo.wav", np.stack([left, right], axis=1), 8000)
    mono, rate = read_audio(tmp_path / "mono.wav")
    assert rate == 8000 and mono.dtype == np.float32 and mono.shape == (800,)
    np.testing.assert_allclose(mono, _pcm(left) / 32768, atol=1e-7)
    stereo, _ = read_audio(str(tmp_path / "stereo.wav"))
    np.testing.assert_allclose(stereo, (_pcm(left) / 32768 + _pcm(right) / 32768) / 2, atol=1e-7)
    assert np.array_equal(read_audio((tmp_path / "mono.wav").read_bytes())[0], mono)


def test_read_audio_errors_name_the_file(tmp_path):
    pytest.importorskip("soundfile")
    (tmp_path / "empty.wav").write_bytes(b"")
    (tmp_path / "junk.wav").write_bytes(b"not audio at all" * 10)
    with pytest.raises(FileNotFoundError, match="nope.wav"):
        read_audio(tmp_path / "nope.wav")
    with pytest.raises(AudioInputError, match="empty.wav.*empty"):
        read_audio(tmp_path / "empty.wav")
    with pytest.raises(AudioInputError, match="junk.wav.*could not be decoded"):
        read_audio(tmp_path / "junk.wav")
    with pytest.raises(AudioInputError, match="audio bytes are empty"):
        read_audio(b"")
    with pytest.raises(TypeError, match="file path or the file's bytes"):
        read_audio(123)
