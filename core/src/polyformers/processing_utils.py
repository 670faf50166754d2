"""Processors: one object holding a model's feature extractor and tokenizer, saved side by side."""

from __future__ import annotations

import logging
import os
from typing import Any

from .hub import pop_hub_kwargs

logger = logging.getLogger(__name__)


class ProcessorMixin:
    """Combines a feature extractor (inputs) and a tokenizer (labels, decoding).

    Subclasses set ``feature_extractor_class`` and ``tokenizer_class`` to classes (not names).
    ``__call__`` sends audio to the feature extractor and ``text=`` to the tokenizer; with both,
    the token ids come back as ``labels``.
    """

    feature_extractor_class: type | None = None
    tokenizer_class: type | None = None

    def __init__(self, feature_extractor: Any, tokenizer: Any) -> None:
        for name, value, expected in (
            ("feature_extractor", feature_extractor, self.feature_extractor_class),
            ("tokenizer", tokenizer, self.tokenizer_class),
        ):
            if expected is not None and not isinstance(value, expected):
                raise TypeError(
                    f"{type(self).__name__} needs {name} to be a {expected.__name__}, got "
                    f"{type(value).__name__}."
                )
        self.feature_extractor = feature_extractor
        self.tokenizer = tokenizer

    @property
    def model_input_names(self) -> list[str]:
        return list(dict.fromkeys(self.feature_extractor.model_input_names + self.tokenizer.model_input_names))

    def __call__(self, audio: Any = None, *args: Any, text: Any = None, **kwargs: Any) -> Any:
        """Featurise ``audio`` and/or tokenize ``text``; with both, token ids are ``labels``."""
        if "raw_speech" in kwargs:  # the v4 spelling
            audio = kwargs.pop("raw_speech")
        if audio is None and text is None:
            raise ValueError(
                f"{type(self).__name__}() needs audio (the first argument) or text=, got neither."
            )
        sampling_rate = kwargs.pop("sampling_rate", None)
        inputs = None
        if audio is not None:
            inputs = self.feature_extractor(audio, *args, sampling_rate=sampling_rate, **kwargs)
        if text is None:
            return inputs
        encodings = self.tokenizer(text, **kwargs)
        if inputs is None:
            return encodings
        inputs["labels"] = encodings["input_ids"]
        return inputs

    def pad(self, *args: Any, input_features: Any = None, labels: Any = None, **kwargs: Any) -> Any:
        """Pad features with the feature extractor and ``labels`` with the tokenizer."""
        if input_features is None and args:
            input_features, args = args[0], args[1:]
        if input_features is None:
            return self.tokenizer.pad(labels, **kwargs)
        features = self.feature_extractor.pad(input_features, *args, **kwargs)
        if labels is not None:
            features["labels"] = self.tokenizer.pad(labels, **kwargs)["input_ids"]
        return features

    def batch_decode(self, *args: Any, **kwargs: Any) -> Any:
        return self.tokenizer.batch_decode(*args, **kwargs)

    def decode(self, *args: Any, **kwargs: Any) -> Any:
        return self.tokenizer.decode(*args, **kwargs)

    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path: str | os.PathLike, **kwargs: Any) -> Any:
        """Load both parts from a directory or hub repo (ours, or Transformers' v4 or v5 layout)."""
        kwargs.pop("trust_remote_code", None)
        if cls.feature_extractor_class is None or cls.tokenizer_class is None:
            raise TypeError(f"{cls.__name__} must set feature_extractor_class and tokenizer_class.")
        feature_extractor = cls.feature_extractor_class.from_pretrained(pretrained_model_name_or_path, **kwargs)
        tokenizer = cls.tokenizer_class.from_pretrained(pretrained_model_name_or_path, **pop_hub_kwargs(kwargs))
        return cls(feature_extractor=feature_extractor, tokenizer=tokenizer)

    def save_pretrained(self, save_directory: str | os.PathLike, push_to_hub: bool = False, **kwargs: Any) -> list[str]:
        """Write ``preprocessor_config.json`` (naming this processor) and the tokenizer files."""
        if push_to_hub:
            raise NotImplementedError(
                "push_to_hub=True is not supported: save_pretrained() to a directory, then upload it "
                "with huggingface_hub (HfApi().upload_folder)."
            )
        os.makedirs(save_directory, exist_ok=True)
        name = type(self).__name__
        self.feature_extractor._set_processor_class(name)
        written = list(self.feature_extractor.save_pretrained(save_directory))
        written += list(self.tokenizer.save_pretrained(save_directory))
        logger.info("%s saved to %s", name, os.fspath(save_directory))
        return written

    def __repr__(self) -> str:
        return f"{type(self).__name__}:\n- feature_extractor: {self.feature_extractor!r}\n- tokenizer: {self.tokenizer!r}"
