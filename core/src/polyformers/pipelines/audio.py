"""Audio pipelines: ``automatic-speech-recognition`` (CTC) and ``audio-classification``.

Inputs are what Transformers' audio pipelines take: a 1-D NumPy array (or torch tensor) already at
the feature extractor's sampling rate, ``{"raw": array, "sampling_rate": sr}`` (or ``"array"``,
as ``datasets`` writes it) which is resampled when ``sr`` differs, a file path, or a file's bytes
(decoded by :func:`polyformers.audio_utils.read_audio` and resampled). Each becomes one mono
float32 waveform (:mod:`polyformers.audio_utils` says how, and raises
:class:`~polyformers.errors.AudioInputError` for what cannot be used).

Batches are padded with the feature extractor's ``padding_value`` and an attention mask, sorted by
length like the text pipelines. Speech recognition is a chunking task: with ``chunk_length_s``
one recording becomes overlapping windows (``stride_length_s`` of context on each side, default
a sixth of the chunk), all windows are batched like any other inputs, and the context frames are
trimmed from each window's predicted tokens before they are joined (at logit-frame level, as
Transformers does), so the windows decode as one sequence. Outputs are Transformers':
``{"text": ...}`` plus ``"chunks"`` (``[{"text", "timestamp": (start_s, end_s)}]``) with
``return_timestamps="char"|"word"``; classification gives ``[{"score", "label"}]``.

Hostile inputs are bounded before any work is done on them (``tests/hostile/test_pipeline_inputs.py``):

- a recording the model sees in one piece (no ``chunk_length_s``, or audio classification) may
  last at most ``max_duration_s`` (default :data:`MAX_UNCHUNKED_DURATION_S`, 10 minutes), checked
  from the file header or the array's length before decoding or resampling: attention cost grows
  with the square of the length, so an hour in one piece would run for hours or exhaust memory.
  Longer recordings are refused with an :class:`~polyformers.errors.AudioInputError` that names the
  limit and the fix (``chunk_length_s=30``, which processes any length in linear time);
- input sampling rates below :data:`MIN_SAMPLING_RATE` Hz are refused (resampling 1 Hz "audio" to
  16 kHz would multiply its size by 16 000);
- audio shorter than the model's receptive field (400 samples, 25 ms, for Wav2Vec2) is refused
  instead of failing inside the convolution.
"""

from __future__ import annotations

import io
import os
from collections import defaultdict
from typing import Any

import numpy as np
import torch

from ..audio_utils import check_waveform, read_audio, resample, to_mono
from ..errors import AudioInputError, short_repr
from .base import Pipeline, _describe

MAX_UNCHUNKED_DURATION_S = 600.0
"""Longest recording (seconds) a model is run on in one piece unless ``max_duration_s`` says otherwise."""
MIN_SAMPLING_RATE = 1000
"""Lowest input sampling rate (Hz) accepted; resampling up from it multiplies the size by at most 16 at 16 kHz."""


class AudioPipeline(Pipeline):
    """What the audio tasks share: input decoding, the feature extractor, padded float batches."""

    model_input_keys = ("input_values", "attention_mask")

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if self.feature_extractor is None:
            raise TypeError(f"{type(self).__name__} needs a feature_extractor (e.g. AutoFeatureExtractor.from_pretrained(path)); pipeline(task, model=path) loads the model's own.")

    @property
    def sampling_rate(self) -> int:
        return int(self.feature_extractor.sampling_rate)

    def _check_input(self, item: Any) -> None:
        if isinstance(item, (str, os.PathLike, bytes, bytearray, dict, np.ndarray, torch.Tensor)):
            return
        raise TypeError(
            f"{self.task or type(self).__name__} expects audio: a 1-D NumPy array at {self.sampling_rate} Hz, "
            f"a dict {{'raw': array, 'sampling_rate': int}}, a file path or a file's bytes (or a list of these); got {_describe(item)}."
        )

    def _check_duration(self, samples: int, rate: Any, name: str, max_duration_s: float | None) -> None:
        """Refuse audio sampled below MIN_SAMPLING_RATE, or longer than ``max_duration_s`` (None: no limit)."""
        if isinstance(rate, bool) or not isinstance(rate, (int, float, np.integer, np.floating)) or not rate > 0:
            return  # a missing or bad rate is reported by resample()
        if rate < MIN_SAMPLING_RATE:
            raise AudioInputError(
                f"{name} is sampled at {rate} Hz, below the {MIN_SAMPLING_RATE} Hz this pipeline accepts (the model runs at "
                f"{self.sampling_rate} Hz). Pass 'sampling_rate' in Hz (samples per second), e.g. {{'raw': audio, 'sampling_rate': 16000}}."
            )
        if max_duration_s is None:
            return
        seconds = samples / float(rate)
        if seconds > max_duration_s:
            fix = "pass chunk_length_s=30 to transcribe it in 30 s windows (any length, linear time)" if self.chunked else "cut it into shorter clips"
            raise AudioInputError(
                f"{name} lasts {seconds:.1f} s ({samples} samples at {rate} Hz), more than the {max_duration_s:g} s this "
                f"pipeline runs through the model in one piece (max_duration_s): its cost grows with the square of the length. "
                f"Either {fix}, or raise the limit with max_duration_s=... (float('inf') for none) if you have the memory."
            )

    def _waveform(self, inputs: Any, max_duration_s: float | None = MAX_UNCHUNKED_DURATION_S) -> tuple[np.ndarray, dict[str, Any], tuple[int, int] | None]:
        """(mono float32 waveform at ``sampling_rate``, extra dict keys, stride in samples at that rate)."""
        extra: dict[str, Any] = {}
        stride = None
        ratio = 1.0
        if isinstance(inputs, (str, os.PathLike, bytes, bytearray)):
            if isinstance(inputs, str) and inputs.startswith(("http://", "https://")):
                raise AudioInputError(f"inputs {short_repr(inputs)} is a URL; polyformers does not download at run time. Download the file and pass its local path.")
            header = _audio_header(inputs)
            if header is not None:  # checked before decoding: a small file may claim hours of audio
                self._check_duration(header[0], header[1], _name(inputs), max_duration_s)
            waveform, in_rate = read_audio(inputs)
            self._check_duration(waveform.shape[0], in_rate, _name(inputs), max_duration_s)
            if in_rate != self.sampling_rate:
                waveform = resample(waveform, in_rate, self.sampling_rate)
            return self._check_length(check_waveform(waveform, name=_name(inputs)), _name(inputs)), extra, None
        if isinstance(inputs, dict):
            inputs = dict(inputs)  # never mutate the caller's dict
            stride = inputs.pop("stride", None)
            if "sampling_rate" not in inputs or ("raw" not in inputs and "array" not in inputs):
                raise AudioInputError(
                    f"A dict input to {self.task} needs a 'raw' (or 'array') key holding the samples and a 'sampling_rate' key, got keys {sorted(inputs)}. "
                    f"Pass e.g. {{'raw': audio, 'sampling_rate': 16000}}."
                )
            raw = inputs.pop("raw", None)
            if raw is None:
                inputs.pop("path", None)
                raw = inputs.pop("array", None)
            in_rate = inputs.pop("sampling_rate")
            extra = inputs
            waveform = to_mono(raw, name="inputs['raw']")
            self._check_duration(waveform.shape[0], in_rate, "inputs['raw']", max_duration_s)
            if in_rate != self.sampling_rate:
                waveform = resample(check_waveform(waveform, name="inputs['raw']"), in_rate, self.sampling_rate)
                ratio = self.sampling_rate / in_rate
            if stride is not None:
                if len(stride) != 2 or stride[0] + stride[1] > waveform.shape[0]:
                    raise AudioInputError(f"inputs['stride'] must be (left, right) sample counts summing to at most the audio's length; got {stride!r} for {waveform.shape[0]} samples.")
                stride = (int(round(stride[0] * ratio)), int(round(stride[1] * ratio)))
            return self._check_length(check_waveform(waveform, name="inputs['raw']"), "inputs['raw']"), extra, stride
        waveform = to_mono(inputs, name="inputs")
        self._check_duration(waveform.shape[0], self.sampling_rate, "inputs", max_duration_s)
        return self._check_length(check_waveform(waveform, name="inputs"), "inputs"), extra, None

    def _frames(self, samples: int) -> int | None:
        """Output frames of ``samples`` input samples, when the model says (its conv arithmetic)."""
        model = getattr(self.model, "wrapped", self.model)  # a TensorFlow / Flax model in its adapter
        lengths = getattr(model, "_get_feat_extract_output_lengths", None)
        return None if lengths is None else int(np.asarray(lengths(int(samples))).reshape(-1)[0])

    @property
    def _min_samples(self) -> int:
        """The fewest samples that give the model one output frame (its receptive field): 400 for Wav2Vec2."""
        if not hasattr(self, "_min_samples_cache"):
            low, high = 1, 1
            if self._frames(1) is None:
                self._min_samples_cache = 1
                return 1
            while self._frames(high) < 1 and high < 1 << 24:
                high *= 2
            while low < high:  # the smallest n with frames(n) >= 1
                mid = (low + high) // 2
                low, high = (mid + 1, high) if self._frames(mid) < 1 else (low, mid)
            self._min_samples_cache = low
        return self._min_samples_cache

    def _check_length(self, waveform: np.ndarray, name: str) -> np.ndarray:
        if waveform.shape[0] < self._min_samples:
            raise AudioInputError(
                f"{name} has {waveform.shape[0]} samples ({waveform.shape[0] / self.sampling_rate * 1000:.1f} ms), fewer than the "
                f"{self._min_samples} ({self._min_samples / self.sampling_rate * 1000:.1f} ms at {self.sampling_rate} Hz) the model needs "
                f"for one output frame. Pass a longer recording (or pad it with zeros)."
            )
        return waveform

    def _features(self, waveform: np.ndarray) -> dict[str, Any]:
        processed = self.feature_extractor(waveform, sampling_rate=self.sampling_rate, return_attention_mask=True)
        features = {"input_values": np.asarray(processed["input_values"][0], dtype=np.float32)}
        if processed.get("attention_mask") is not None:
            features["attention_mask"] = np.asarray(processed["attention_mask"][0])
        return features

    def _item_length(self, feature: dict[str, Any]) -> int:
        return len(feature["input_values"])

    def _collate(self, features: list[dict[str, Any]]) -> dict[str, torch.Tensor]:
        longest = max(len(f["input_values"]) for f in features)
        padding_value = float(getattr(self.feature_extractor, "padding_value", 0.0))
        values = np.full((len(features), longest), padding_value, dtype=np.float32)
        mask = np.zeros((len(features), longest), dtype=np.int64)
        for row, f in enumerate(features):
            values[row, : len(f["input_values"])] = f["input_values"]
            mask[row, : len(f["input_values"])] = 1
        batch = {"input_values": torch.from_numpy(values).to(self.device)}
        if all("attention_mask" in f for f in features):
            batch["attention_mask"] = torch.from_numpy(mask).to(self.device)
        return batch


class AutomaticSpeechRecognitionPipeline(AudioPipeline):
    """Speech to text with a CTC model (``...ForCTC``): greedy decoding, optional chunking and timestamps.

    Call parameters: ``chunk_length_s`` (0: the whole recording at once), ``stride_length_s``
    (a number, or ``(left, right)``; default ``chunk_length_s / 6``), ``return_timestamps``
    (``"char"`` or ``"word"``).
    """

    chunked = True

    def _sanitize_parameters(self, chunk_length_s: float | None = None, stride_length_s: Any = None, return_timestamps: str | None = None, max_duration_s: float | None = None, **kwargs: Any) -> tuple[dict, dict, dict]:
        kwargs.pop("ignore_warning", None)
        if kwargs:
            raise TypeError(f"{type(self).__name__} got unexpected keyword arguments {sorted(kwargs)}; it takes chunk_length_s, stride_length_s, return_timestamps and max_duration_s.")
        pre: dict[str, Any] = _duration_param(max_duration_s)
        post: dict[str, Any] = {}
        if chunk_length_s is not None:
            if isinstance(chunk_length_s, bool) or not isinstance(chunk_length_s, (int, float)) or chunk_length_s < 0:
                raise ValueError(f"chunk_length_s must be a non-negative number of seconds, got {chunk_length_s!r}.")
            pre["chunk_length_s"] = chunk_length_s
        if stride_length_s is not None:
            pre["stride_length_s"] = stride_length_s
        if return_timestamps is not None:
            if return_timestamps not in ("char", "word"):
                raise ValueError(f"CTC can either predict character level timestamps, or word level timestamps: set return_timestamps='char' or 'word', got {return_timestamps!r}.")
            post["return_timestamps"] = return_timestamps
        return pre, {}, post

    @property
    def _align_to(self) -> int:
        """Audio samples per output frame."""
        return int(getattr(self.model.config, "inputs_to_logits_ratio", 1))

    def preprocess(self, inputs: Any, chunk_length_s: float = 0, stride_length_s: Any = None, max_duration_s: float = MAX_UNCHUNKED_DURATION_S) -> list[dict[str, Any]]:
        # Windows bound the cost of any length, so the one-piece limit applies only without them.
        waveform, extra, stride = self._waveform(inputs, max_duration_s=None if chunk_length_s else max_duration_s)
        if not chunk_length_s:
            item = {"is_last": True, **self._features(waveform), **extra}
            if stride is not None:
                item["stride"] = (waveform.shape[0], *stride)
            return [item]
        if stride_length_s is None:
            stride_length_s = chunk_length_s / 6
        if isinstance(stride_length_s, (int, float)):
            stride_length_s = [stride_length_s, stride_length_s]
        align_to = self._align_to
        chunk_len = int(round(chunk_length_s * self.sampling_rate / align_to) * align_to)
        stride_left = int(round(stride_length_s[0] * self.sampling_rate / align_to) * align_to)
        stride_right = int(round(stride_length_s[1] * self.sampling_rate / align_to) * align_to)
        if chunk_len < stride_left + stride_right:
            raise ValueError(f"Chunk length must be superior to stride length: chunk_length_s={chunk_length_s} gives {chunk_len} samples, less than the strides' {stride_left} + {stride_right}.")
        if chunk_len == 0:
            raise ValueError(f"chunk_length_s={chunk_length_s} is shorter than one output frame ({align_to} samples at {self.sampling_rate} Hz).")
        return [{**item, **extra} for item in self._chunks(waveform, chunk_len, stride_left, stride_right)]

    def _chunks(self, waveform: np.ndarray, chunk_len: int, stride_left: int, stride_right: int) -> list[dict[str, Any]]:
        """Overlapping windows of ``chunk_len`` samples, each with its (length, left, right) context."""
        items = []
        step = chunk_len - stride_left - stride_right
        total = waveform.shape[0]
        for start in range(0, total, step):
            end = start + chunk_len
            chunk = waveform[start:end]
            left = 0 if start == 0 else stride_left
            is_last = end >= total
            right = 0 if is_last else stride_right
            # A last sliver shorter than the receptive field has no output frame (and breaks the conv).
            if chunk.shape[0] > left and (start == 0 or chunk.shape[0] >= self._min_samples):
                items.append({"is_last": is_last, "stride": (chunk.shape[0], left, right), **self._features(chunk)})
            if is_last:
                break
        return items

    def _forward(self, model_inputs: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        logits = self.model(**model_inputs).logits
        return {"tokens": logits.argmax(dim=-1)}

    def _unbatch(self, key: str, value: Any, row: int, length: int) -> Any:
        value = super()._unbatch(key, value, row, length)
        if key == "tokens":
            frames = self._frames(length)
            if frames is not None:
                value = value[:, :frames]  # drop frames computed from another input's padding
        return value

    def postprocess(self, windows: list[dict[str, Any]], return_timestamps: str | None = None) -> dict[str, Any]:
        ratio = 1 / self._align_to
        pieces = []
        for window in windows:
            tokens = window["tokens"].cpu().numpy()
            if window.get("stride") is not None:
                total_n, left, right = _rescale_stride(window["stride"], ratio)
                tokens = tokens[:, left : total_n - right]
            pieces.append(tokens)
        ids = np.concatenate(pieces, axis=1).squeeze(0).tolist()
        result: dict[str, Any] = {"text": self.tokenizer.decode(ids, skip_special_tokens=False)}
        if return_timestamps:
            offsets = self.tokenizer.decode(ids, skip_special_tokens=False, output_char_offsets=True)["char_offsets"]
            if return_timestamps == "word":
                offsets = self.tokenizer._get_word_offsets(offsets, self.tokenizer.replace_word_delimiter_char)
            align_to, rate = self._align_to, self.sampling_rate  # frames -> samples -> seconds, in Transformers' order
            result["chunks"] = [{"text": o[return_timestamps], "timestamp": (int(o["start_offset"]) * align_to / rate, int(o["end_offset"]) * align_to / rate)} for o in offsets]
        extra: dict[str, list[Any]] = defaultdict(list)
        for window in windows:
            for key, value in window.items():
                if key not in ("tokens", "is_last", "stride", "input_values", "attention_mask"):
                    extra[key].append(value)
        return {**result, **extra}


class AudioClassificationPipeline(AudioPipeline):
    """Labels for a recording (``...ForSequenceClassification`` audio models): ``[{"score", "label"}]``.

    Call parameters: ``top_k`` (default: every label), ``function_to_apply``
    (``"softmax"``, ``"sigmoid"`` or ``"none"``; default from ``config.problem_type``).
    """

    def _sanitize_parameters(self, top_k: int | None = None, function_to_apply: str | None = None, max_duration_s: float | None = None, **kwargs: Any) -> tuple[dict, dict, dict]:
        if kwargs:
            raise TypeError(f"{type(self).__name__} got unexpected keyword arguments {sorted(kwargs)}; it takes top_k, function_to_apply and max_duration_s.")
        num_labels = self.model.config.num_labels
        if top_k is not None and (isinstance(top_k, bool) or not isinstance(top_k, int) or top_k < 1):
            raise ValueError(f"top_k must be a positive int, got {top_k!r}.")
        post: dict[str, Any] = {"top_k": num_labels if top_k is None else min(top_k, num_labels)}
        if function_to_apply is not None:
            if function_to_apply not in ("softmax", "sigmoid", "none"):
                raise ValueError(f"Invalid value for function_to_apply: {function_to_apply!r}. Valid options are ['softmax', 'sigmoid', 'none'].")
            post["function_to_apply"] = function_to_apply
        return _duration_param(max_duration_s), {}, post

    def preprocess(self, inputs: Any, max_duration_s: float = MAX_UNCHUNKED_DURATION_S) -> dict[str, Any]:
        waveform, _, _ = self._waveform(inputs, max_duration_s=max_duration_s)
        features = self.feature_extractor(waveform, sampling_rate=self.sampling_rate)
        return {"input_values": np.asarray(features["input_values"][0], dtype=np.float32)}

    def _collate(self, features: list[dict[str, Any]]) -> dict[str, torch.Tensor]:
        batch = super()._collate(features)
        if len(features) == 1:
            batch.pop("attention_mask", None)  # exactly what Transformers feeds one recording
        return batch

    def _forward(self, model_inputs: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        return {"logits": self.model(**model_inputs).logits}

    def postprocess(self, outputs: dict[str, torch.Tensor], top_k: int = 5, function_to_apply: str | None = None) -> list[dict[str, Any]]:
        if function_to_apply is None:
            problem_type = getattr(self.model.config, "problem_type", None)
            function_to_apply = {"regression": "none", "multi_label_classification": "sigmoid"}.get(problem_type, "softmax")
        logits = outputs["logits"][0].float()
        scores = logits.softmax(-1) if function_to_apply == "softmax" else logits.sigmoid() if function_to_apply == "sigmoid" else logits
        values, ids = scores.topk(top_k)
        id2label = self.model.config.id2label
        return [{"score": score, "label": id2label[i]} for score, i in zip(values.tolist(), ids.tolist())]


def _rescale_stride(stride: tuple[int, int, int], ratio: float) -> tuple[int, int, int]:
    """A (samples, left, right) stride in output frames: (160_000, 16_000, 16_000) -> (500, 50, 50) at 320 samples a frame."""
    input_n, left, right = stride
    token_n = int(round(input_n * ratio))
    return token_n, int(round(left / input_n * token_n)), int(round(right / input_n * token_n))


def _duration_param(max_duration_s: Any) -> dict[str, Any]:
    """The preprocess parameter for ``max_duration_s`` (seconds, > 0; ``float('inf')`` for no limit)."""
    if max_duration_s is None:
        return {}
    if isinstance(max_duration_s, bool) or not isinstance(max_duration_s, (int, float)) or not max_duration_s > 0:
        raise ValueError(f"max_duration_s must be a positive number of seconds (float('inf') for no limit), got {max_duration_s!r}.")
    return {"max_duration_s": float(max_duration_s)}


def _audio_header(source: Any) -> tuple[int, int] | None:
    """(frames, sampling rate) an audio file's header claims, or None when it cannot be read (decoding then says why)."""
    try:
        import soundfile

        if isinstance(source, (bytes, bytearray)):
            info = soundfile.info(io.BytesIO(bytes(source)))
        elif os.path.isfile(os.fspath(source)):
            info = soundfile.info(os.fspath(source))
        else:
            return None
        if not 0 <= info.frames < 2**62:  # libsndfile's 'unknown length' (some streams)
            return None
        return int(info.frames), int(info.samplerate)
    except Exception:  # unreadable headers are read_audio's to report, with its typed error
        return None


def _name(inputs: Any) -> str:
    return f"audio file {short_repr(os.fspath(inputs))}" if isinstance(inputs, (str, os.PathLike)) else "audio bytes"
