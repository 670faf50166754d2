"""Audio inputs: decoding files, checking waveforms, resampling. NumPy only; no framework imported.

The audio pipelines (and anyone preparing inputs for a speech model) turn what users hand over
into one mono float32 waveform at the feature extractor's sampling rate:

- :func:`read_audio` decodes a file (WAV, FLAC, OGG/Vorbis, MP3 ...) with ``soundfile``
  (libsndfile, bundled in its wheels; ``pip install polyformers-core[audio]``). Multi-channel
  files are averaged to mono, as Transformers' ffmpeg decoding (``-ac 1``) does.
- :func:`to_mono` applies Transformers 5's rule for arrays: ``(samples,)`` is mono,
  ``(channels, samples)`` with one or two channels is averaged, anything else is refused (a
  channels-last ``(samples, 2)`` array cannot be told from two-sample audio, so it is an error
  that says to transpose).
- :func:`resample` is band-limited sinc interpolation with a Hann window, the algorithm (and
  defaults: 6 zero crossings, roll-off 0.99) of ``torchaudio.functional.resample``, which
  Transformers' pipelines call; no torchaudio needed (equal lengths, and samples within 2e-7 of
  torchaudio's for 8 to 48 kHz inputs: ``scripts/cuda_check_wav2vec2.py``).

Every problem is an :class:`~polyformers.errors.AudioInputError` (a ``ValueError``) naming the
input and saying what to do.
"""

from __future__ import annotations

import io
import math
import os
from typing import Any

import numpy as np

from .errors import AudioInputError, short_repr

__all__ = ["read_audio", "resample", "to_mono", "check_waveform"]


def read_audio(source: str | os.PathLike | bytes, *, name: str | None = None) -> tuple[np.ndarray, int]:
    """Decode an audio file (a path, or its bytes) to a mono float32 waveform and its sampling rate.

    Raises:
        FileNotFoundError: ``source`` is a path that does not exist.
        AudioInputError: the file is empty, not audio, corrupt, or holds no samples.
        ImportError: ``soundfile`` is not installed.
    """
    label = name or (f"audio file {short_repr(os.fspath(source))}" if isinstance(source, (str, os.PathLike)) else "audio bytes")
    if isinstance(source, (str, os.PathLike)):
        path = os.fspath(source)
        if not os.path.isfile(path):
            raise FileNotFoundError(f"{label} does not exist (or is not a file). Pass the path of a WAV, FLAC, OGG or MP3 file, or the samples as a NumPy array.")
        if os.path.getsize(path) == 0:
            raise AudioInputError(f"{label} is empty (0 bytes). Pass a complete audio file.")
        handle: Any = path
    elif isinstance(source, (bytes, bytearray)):
        if len(source) == 0:
            raise AudioInputError(f"{label} are empty (0 bytes). Pass the complete contents of an audio file.")
        handle = io.BytesIO(bytes(source))
    else:
        raise TypeError(f"read_audio expects a file path or the file's bytes, got {type(source).__name__}.")
    try:
        import soundfile
    except ImportError as exc:
        raise ImportError(f"Reading {label} needs the soundfile package (libsndfile): pip install 'polyformers-core[audio]', or pass the samples as a NumPy array with their sampling rate.") from exc
    try:
        data, sampling_rate = soundfile.read(handle, dtype="float32", always_2d=True)
    except (soundfile.LibsndfileError, RuntimeError, TypeError, ValueError, EOFError) as exc:
        raise AudioInputError(f"{label} could not be decoded as audio ({exc}). It may be corrupt or in a format libsndfile does not read; convert it to WAV or FLAC (e.g. ffmpeg -i in.m4a out.wav).") from exc
    if data.shape[0] == 0:
        raise AudioInputError(f"{label} holds no samples (0 frames). Pass a recording with sound in it.")
    waveform = data[:, 0] if data.shape[1] == 1 else data.mean(axis=1, dtype=np.float32)
    return np.ascontiguousarray(waveform, dtype=np.float32), int(sampling_rate)


def to_mono(waveform: Any, *, name: str = "inputs") -> np.ndarray:
    """``waveform`` as a 1-D array: ``(samples,)`` as is, ``(1|2, samples)`` averaged over channels."""
    if hasattr(waveform, "detach"):  # a torch tensor
        waveform = waveform.detach().cpu().numpy()
    array = np.asarray(waveform)
    if array.ndim == 1:
        return array
    if array.ndim == 2 and array.shape[0] in (1, 2) and array.shape[1] > 2:
        return array[0] if array.shape[0] == 1 else array.mean(axis=0, dtype=np.float32 if array.dtype == np.float32 else None)
    if array.ndim == 2:
        raise AudioInputError(
            f"{name} must be mono audio shaped (samples,) or (channels, samples) with 1 or 2 channels, got shape {array.shape}. "
            f"Channels-last audio (what soundfile.read returns) must be transposed (audio.T) or mixed down (audio.mean(axis=1))."
        )
    raise AudioInputError(f"{name} must be mono audio shaped (samples,), got {array.ndim} dimensions (shape {array.shape}).")


def check_waveform(waveform: Any, *, name: str = "inputs") -> np.ndarray:
    """A usable waveform: 1-D, real numbers, at least one sample, all finite. Returns it as an array."""
    array = np.asarray(waveform)
    if array.ndim != 1:
        raise AudioInputError(f"{name} must be a 1-D waveform, got shape {array.shape}.")
    if array.shape[0] == 0:
        raise AudioInputError(f"{name} has 0 samples; pass at least one sample of audio.")
    if not (np.issubdtype(array.dtype, np.floating) or np.issubdtype(array.dtype, np.integer)):
        raise AudioInputError(f"{name} must hold real numbers (float or int samples), got dtype {array.dtype}.")
    if np.issubdtype(array.dtype, np.floating) and not np.isfinite(array).all():
        bad = int(np.count_nonzero(~np.isfinite(array)))
        raise AudioInputError(f"{name} holds {bad} NaN or infinite samples of {array.shape[0]}; clean the audio (e.g. np.nan_to_num) before passing it.")
    return array


def resample(waveform: np.ndarray, orig_sr: int, new_sr: int, *, lowpass_filter_width: int = 6, rolloff: float = 0.99) -> np.ndarray:
    """Resample a 1-D waveform from ``orig_sr`` to ``new_sr`` Hz (float32 out).

    Windowed-sinc interpolation (Hann window) over ``lowpass_filter_width`` zero crossings, cut
    off at ``rolloff`` times the lower Nyquist frequency; output length ``ceil(n * new / orig)``.
    """
    for label, rate in (("orig_sr", orig_sr), ("new_sr", new_sr)):
        if isinstance(rate, bool) or not isinstance(rate, (int, np.integer)) and not (isinstance(rate, float) and rate.is_integer()) or rate <= 0:
            raise AudioInputError(f"{label} must be a positive whole number of Hz, got {rate!r}.")
    orig_sr, new_sr = int(orig_sr), int(new_sr)
    waveform = np.asarray(waveform, dtype=np.float32)
    if orig_sr == new_sr:
        return waveform
    gcd = math.gcd(orig_sr, new_sr)
    orig, new = orig_sr // gcd, new_sr // gcd
    kernel, width = _sinc_kernel(orig, new, lowpass_filter_width, rolloff)
    length = waveform.shape[0]
    padded = np.pad(waveform, (width, width + orig))
    # Output block i (new samples) reads padded[i * orig : i * orig + kernel_len]: a strided conv.
    frames = np.lib.stride_tricks.sliding_window_view(padded, kernel.shape[1])[::orig]
    out = (frames @ kernel.T).reshape(-1)
    return np.ascontiguousarray(out[: math.ceil(new * length / orig)], dtype=np.float32)


def _sinc_kernel(orig: int, new: int, lowpass_filter_width: int, rolloff: float) -> tuple[np.ndarray, int]:
    """The (new, 2 * width + orig) filter bank: row j interpolates output phase j of each block."""
    base_freq = min(orig, new) * rolloff
    width = math.ceil(lowpass_filter_width * orig / base_freq)
    idx = np.arange(-width, width + orig, dtype=np.float32)[None, :] / orig
    t = (np.arange(0, -new, -1, dtype=np.float32)[:, None] / new + idx) * np.float32(base_freq)
    t = np.clip(t, -lowpass_filter_width, lowpass_filter_width)
    window = np.cos(t * np.float32(math.pi / lowpass_filter_width / 2)) ** 2
    t = t * np.float32(math.pi)
    with np.errstate(divide="ignore", invalid="ignore"):
        kernel = np.where(t == 0, np.float32(1.0), np.sin(t) / t)
    kernel = kernel * window * np.float32(base_freq / orig)
    return kernel.astype(np.float32), width
