"""Wav2Vec2's feature extractor: raw 16 kHz mono audio in, (normalised) ``input_values`` out."""

from __future__ import annotations

import logging
from typing import Any

import numpy as np

from polyformers.errors import AudioInputError
from polyformers.feature_extraction_utils import BatchFeature, SequenceFeatureExtractor
from polyformers.tokenization_utils_base import PaddingStrategy, TensorType

logger = logging.getLogger(__name__)


class Wav2Vec2FeatureExtractor(SequenceFeatureExtractor):
    """Pads raw audio and, with ``do_normalize``, scales each utterance to zero mean, unit variance.

    Args:
        feature_size: features per sample (1: raw audio).
        sampling_rate: the rate the model was trained on, in Hz.
        padding_value: the value padded samples get.
        return_attention_mask: whether ``__call__`` returns ``attention_mask`` by default.
        do_normalize: zero-mean unit-variance normalisation of each utterance. With an attention
            mask the statistics come from the unpadded samples only.
    """

    model_input_names = ["input_values", "attention_mask"]

    def __init__(
        self,
        feature_size: int = 1,
        sampling_rate: int = 16000,
        padding_value: float = 0.0,
        return_attention_mask: bool = False,
        do_normalize: bool = True,
        **kwargs: Any,
    ) -> None:
        super().__init__(feature_size=feature_size, sampling_rate=sampling_rate, padding_value=padding_value, **kwargs)
        self.return_attention_mask = return_attention_mask
        self.do_normalize = do_normalize

    @staticmethod
    def zero_mean_unit_var_norm(
        input_values: list[np.ndarray], attention_mask: list[np.ndarray] | None, padding_value: float = 0.0
    ) -> list[np.ndarray]:
        """Normalise each array to zero mean and unit variance (over its unmasked part, given a mask)."""
        if attention_mask is None:
            return [(x - x.mean()) / np.sqrt(x.var() + 1e-7) for x in input_values]
        lengths = np.array(attention_mask, np.int32).sum(-1)
        normed = []
        for vector, length in zip(input_values, lengths):
            out = (vector - vector[:length].mean()) / np.sqrt(vector[:length].var() + 1e-7)
            if length < out.shape[0]:
                out[length:] = padding_value
            normed.append(out)
        return normed

    def __call__(
        self,
        raw_speech: np.ndarray | list[float] | list[np.ndarray] | list[list[float]],
        padding: bool | str | PaddingStrategy = False,
        max_length: int | None = None,
        truncation: bool = False,
        pad_to_multiple_of: int | None = None,
        return_attention_mask: bool | None = None,
        return_tensors: str | TensorType | None = None,
        sampling_rate: int | None = None,
        **kwargs: Any,
    ) -> BatchFeature:
        """Featurise one utterance (1-D) or a batch (a list of 1-D, or a 2-D array) of mono audio."""
        if sampling_rate is not None:
            if sampling_rate != self.sampling_rate:
                raise AudioInputError(
                    f"raw_speech was sampled at {sampling_rate} Hz, but this {type(self).__name__} "
                    f"expects sampling_rate={self.sampling_rate} Hz (the rate the model was trained "
                    f"on). Resample the audio to {self.sampling_rate} Hz first."
                )
        else:
            logger.warning(
                "Pass sampling_rate= to %s(): without it a wrong rate goes unnoticed.", type(self).__name__
            )
        batch = _as_batch(raw_speech)

        padded = self.pad(
            BatchFeature({"input_values": batch}),
            padding=padding,
            max_length=max_length,
            truncation=truncation,
            pad_to_multiple_of=pad_to_multiple_of,
            return_attention_mask=return_attention_mask,
        )
        values = padded["input_values"]
        if isinstance(values, np.ndarray) and values.dtype != object:  # a padded batch stays one array
            padded["input_values"] = values.astype(np.float32, copy=False)
        else:
            padded["input_values"] = [np.asarray(v, dtype=np.float32) for v in values]
        attention_mask = padded.get("attention_mask")
        if attention_mask is not None:
            padded["attention_mask"] = [np.asarray(m, dtype=np.int32) for m in attention_mask]

        if self.do_normalize:
            # Like Transformers: the mask limits the statistics only when the batch was padded.
            padded_batch = self._get_padding_strategies(padding, max_length=max_length) is not PaddingStrategy.DO_NOT_PAD
            padded["input_values"] = self.zero_mean_unit_var_norm(
                padded["input_values"],
                attention_mask=padded.get("attention_mask") if padded_batch else None,
                padding_value=self.padding_value,
            )
        if return_tensors is not None:
            padded = padded.convert_to_tensors(return_tensors)
        return padded


def _as_batch(raw_speech: Any) -> list[np.ndarray]:
    """``raw_speech`` as a list of 1-D float arrays; refuses stereo and empty audio."""
    if hasattr(raw_speech, "detach"):  # a torch tensor
        raw_speech = raw_speech.detach().cpu().numpy()
    if isinstance(raw_speech, np.ndarray):
        if raw_speech.ndim > 2:
            raise AudioInputError(
                f"raw_speech must be mono audio: a 1-D array, or a 2-D (batch, samples) array, got shape "
                f"{raw_speech.shape}. Mix stereo down to mono first (e.g. audio.mean(axis=-1))."
            )
        examples = list(raw_speech) if raw_speech.ndim == 2 else [raw_speech]
    elif isinstance(raw_speech, (list, tuple)):
        if len(raw_speech) == 0:
            raise AudioInputError("raw_speech is empty (0 samples); pass at least one sample of audio.")
        is_batch = isinstance(raw_speech[0], (np.ndarray, list, tuple)) or hasattr(raw_speech[0], "detach")
        examples = list(raw_speech) if is_batch else [raw_speech]
    else:
        raise TypeError(
            f"raw_speech must be a list of floats, a NumPy array, or a batch (list) of those, got "
            f"{type(raw_speech).__name__}."
        )
    batch = []
    for index, example in enumerate(examples):
        if hasattr(example, "detach"):
            example = example.detach().cpu().numpy()
        array = np.asarray(example)
        if array.ndim != 1:
            raise AudioInputError(
                f"raw_speech[{index}] must be mono audio (1-D), got shape {array.shape}. Mix stereo down "
                f"to mono first (e.g. audio.mean(axis=-1))."
            )
        if array.shape[0] == 0:
            raise AudioInputError(
                f"raw_speech[{index}] is empty (0 samples); every utterance needs at least one sample."
            )
        if not np.issubdtype(array.dtype, np.number):
            raise TypeError(f"raw_speech[{index}] must hold numbers, got dtype {array.dtype}.")
        batch.append(array)
    return batch
