"""Feature extractors: turn raw signals (audio) into model inputs, saved as ``preprocessor_config.json``.

:class:`FeatureExtractionMixin` loads and saves the config, :class:`SequenceFeatureExtractor` adds
padding and truncation of 1-D (or frame-by-feature) sequences, and :class:`BatchFeature` is the
dict they return. The file format is Transformers': each side loads what the other wrote.
Frameworks are imported only when tensors of that framework are asked for.
"""

from __future__ import annotations

import copy
import json
import logging
import os
from collections.abc import Mapping
from typing import Any

import numpy as np

from .hub import missing_file_error, pop_hub_kwargs, resolve_file
from .io_utils import atomic_write_text, read_json_file
from .tokenization_utils_base import PaddingStrategy, TensorType, _tensor_functions, _tensor_type_of

logger = logging.getLogger(__name__)

FEATURE_EXTRACTOR_NAME = "preprocessor_config.json"
PROCESSOR_NAME = "processor_config.json"

# Keys that describe the file, not the preprocessor: never set as attributes ("processor_class"
# is kept apart, to be written back).
_NOT_INIT_KWARGS = ("feature_extractor_type", "image_processor_type", "processor_class", "auto_map", "transformers_version", "polyformers_version")


class BatchFeature(dict):
    """A ``dict`` of model inputs with attribute access (``batch.input_values``) and tensor conversion."""

    def __init__(self, data: Mapping[str, Any] | None = None, tensor_type: str | TensorType | None = None) -> None:
        super().__init__(data or {})
        self.convert_to_tensors(tensor_type=tensor_type)

    def __getattr__(self, name: str) -> Any:
        try:
            return self[name]
        except KeyError:
            raise AttributeError(f"BatchFeature has no key {name!r}; it has {sorted(self)}.") from None

    def __getstate__(self) -> dict[str, Any]:
        return {"data": dict(self)}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.update(state["data"])

    @property
    def data(self) -> dict[str, Any]:
        return dict(self)

    def convert_to_tensors(self, tensor_type: str | TensorType | None = None) -> BatchFeature:
        """Convert every value to ``tensor_type`` ("pt", "tf", "np", "jax") in place; returns self."""
        if tensor_type is None:
            return self
        try:
            tensor_type = TensorType(tensor_type)
        except ValueError:
            raise ValueError(
                f"return_tensors must be one of {[t.value for t in TensorType]} or None, got {tensor_type!r}."
            ) from None
        as_tensor, is_tensor = _tensor_functions(tensor_type)
        for key, value in self.items():
            if is_tensor(value):
                continue
            if _tensor_type_of(value) is not None and tensor_type != TensorType.NUMPY:
                value = np.asarray(value)
            elif isinstance(value, (list, tuple)) and value and isinstance(value[0], np.ndarray):
                if len({v.shape for v in value}) != 1:
                    if tensor_type == TensorType.NUMPY:  # ragged rows stay rows, like Transformers
                        ragged = np.empty(len(value), dtype=object)
                        ragged[:] = value
                        self[key] = ragged
                        continue
                else:
                    value = np.stack(value)
            try:
                self[key] = as_tensor(value)
            except (ValueError, TypeError) as exc:
                raise ValueError(
                    f"Could not make {tensor_type.value!r} tensors of {key!r} ({exc}): its rows probably "
                    f"have different lengths. Pass padding=True (or 'longest') to pad them to one length."
                ) from exc
        return self

    def to(self, device: Any) -> BatchFeature:
        """Move PyTorch tensors to ``device`` (other values are left as they are)."""
        for key, value in self.items():
            if hasattr(value, "to") and callable(value.to):
                self[key] = value.to(device)
        return self


class FeatureExtractionMixin:
    """Loading and saving of a feature extractor's settings as ``preprocessor_config.json``.

    Image processors share the file format; ``_kind`` names what the file calls the preprocessor:
    its ``<kind>_type`` key and its section of a Transformers 5 ``processor_config.json``.
    """

    _kind = "feature_extractor"

    def __init__(self, **kwargs: Any) -> None:
        self._processor_class = kwargs.pop("processor_class", None)
        for key, value in kwargs.items():
            if key in _NOT_INIT_KWARGS:
                continue
            setattr(self, key, value)

    # --- loading -------------------------------------------------------------------------------

    @classmethod
    def get_feature_extractor_dict(cls, pretrained_model_name_or_path: str | os.PathLike, **kwargs: Any) -> tuple[dict[str, Any], dict[str, Any]]:
        """Read the settings saved in a directory or hub repo; returns ``(settings, unused kwargs)``.

        Reads ``preprocessor_config.json``, or else the ``feature_extractor`` section of the
        ``processor_config.json`` that Transformers 5 writes for a processor.
        """
        hub_kwargs = pop_hub_kwargs(kwargs)
        path = pretrained_model_name_or_path
        if os.path.isfile(os.fspath(path)) and os.fspath(path).endswith(".json"):
            return _read_json_file(os.fspath(path)), kwargs
        resolved = resolve_file(path, FEATURE_EXTRACTOR_NAME, **hub_kwargs)
        if resolved is not None:
            return _read_json_file(resolved), kwargs
        resolved = resolve_file(path, PROCESSOR_NAME, **hub_kwargs)
        if resolved is not None:
            section = _read_json_file(resolved).get(cls._kind)
            if isinstance(section, dict):
                return dict(section), kwargs
        raise missing_file_error(path, f"{FEATURE_EXTRACTOR_NAME} (nor a {PROCESSOR_NAME} with a '{cls._kind}' section)", **hub_kwargs)

    @classmethod
    def from_dict(cls, feature_extractor_dict: dict[str, Any], **kwargs: Any) -> Any:
        """Build from saved settings; ``kwargs`` override them."""
        settings = {k: v for k, v in feature_extractor_dict.items() if k not in _NOT_INIT_KWARGS or k == "processor_class"}
        settings.update(kwargs)
        return cls(**settings)

    @classmethod
    def _is_saved_type(cls, saved_type: str) -> bool:
        """Whether a file saved as ``saved_type`` is this class's (subclasses widen it)."""
        return saved_type == cls.__name__

    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path: str | os.PathLike, **kwargs: Any) -> Any:
        """Load from a directory or hub repo written by ``save_pretrained`` (ours or Transformers')."""
        kwargs.pop("trust_remote_code", None)
        settings, kwargs = cls.get_feature_extractor_dict(pretrained_model_name_or_path, **kwargs)
        saved_type = settings.get(f"{cls._kind}_type")
        if saved_type and not cls._is_saved_type(saved_type):
            logger.warning(
                "%s was saved as a %s; loading it as a %s.", os.fspath(pretrained_model_name_or_path), saved_type, cls.__name__
            )
        try:
            return cls.from_dict(settings, **kwargs)
        except (TypeError, ValueError, AttributeError, KeyError) as exc:
            where = os.path.join(os.fspath(pretrained_model_name_or_path), FEATURE_EXTRACTOR_NAME)
            raise ValueError(
                f"The settings in {where!r} (or the arguments given) do not make a {cls.__name__} "
                f"({type(exc).__name__}: {exc}). Fix the file, or re-save it with save_pretrained."
            ) from exc

    # --- saving --------------------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        output = {k: copy.deepcopy(v) for k, v in self.__dict__.items() if not k.startswith("_")}
        output[f"{self._kind}_type"] = type(self).__name__
        if self._processor_class is not None:
            output["processor_class"] = self._processor_class
        return output

    def to_json_string(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True, default=_json_default) + "\n"

    def to_json_file(self, json_file_path: str | os.PathLike) -> None:
        atomic_write_text(json_file_path, self.to_json_string())

    def save_pretrained(self, save_directory: str | os.PathLike, push_to_hub: bool = False, **kwargs: Any) -> list[str]:
        """Write ``preprocessor_config.json`` into ``save_directory``; returns the paths written."""
        if push_to_hub:
            raise NotImplementedError(
                "push_to_hub=True is not supported: save_pretrained() to a directory, then upload it "
                "with huggingface_hub (HfApi().upload_folder)."
            )
        save_directory = os.fspath(save_directory)
        if os.path.isfile(save_directory):
            raise OSError(f"save_pretrained needs a directory, but {save_directory!r} is a file.")
        os.makedirs(save_directory, exist_ok=True)
        path = os.path.join(save_directory, FEATURE_EXTRACTOR_NAME)
        self.to_json_file(path)
        logger.info("Feature extractor saved to %s", path)
        return [path]

    def _set_processor_class(self, processor_class: str) -> None:
        self._processor_class = processor_class

    def __repr__(self) -> str:
        return f"{type(self).__name__} {self.to_json_string()}"


class SequenceFeatureExtractor(FeatureExtractionMixin):
    """A feature extractor for sequences: padding, truncation and attention masks.

    Args:
        feature_size: features per frame (1 for raw audio).
        sampling_rate: the rate, in Hz, the model was trained on.
        padding_value: the value padded frames get.
    """

    model_input_names: list[str] = ["input_values", "attention_mask"]

    def __init__(self, feature_size: int, sampling_rate: int, padding_value: float, **kwargs: Any) -> None:
        self.feature_size = feature_size
        self.sampling_rate = sampling_rate
        self.padding_value = padding_value
        self.padding_side = kwargs.pop("padding_side", "right")
        if self.padding_side not in ("right", "left"):
            raise ValueError(f"padding_side must be 'right' or 'left', got {self.padding_side!r}.")
        self.return_attention_mask = kwargs.pop("return_attention_mask", True)
        super().__init__(**kwargs)

    def pad(
        self,
        processed_features: BatchFeature | Mapping[str, Any] | list[Mapping[str, Any]],
        padding: bool | str | PaddingStrategy = True,
        max_length: int | None = None,
        truncation: bool = False,
        pad_to_multiple_of: int | None = None,
        return_attention_mask: bool | None = None,
        return_tensors: str | TensorType | None = None,
    ) -> BatchFeature:
        """Pad (and optionally truncate) a batch of sequences to one length.

        ``processed_features`` is a dict of per-example lists, or a list of per-example dicts.
        ``padding``: True/"longest" pads to the longest, "max_length" to ``max_length``,
        False/"do_not_pad" leaves lengths alone. Lengths are rounded up to ``pad_to_multiple_of``.
        """
        if isinstance(processed_features, (list, tuple)) and processed_features and isinstance(processed_features[0], Mapping):
            processed_features = {key: [example[key] for example in processed_features] for key in processed_features[0]}
        main_input = self.model_input_names[0]
        if main_input not in processed_features:
            raise ValueError(
                f"pad() needs the key {main_input!r} in its input, got keys {list(processed_features)}. "
                f"Pass the output of the feature extractor (a BatchFeature) or a list of such dicts."
            )
        if return_attention_mask is None:
            return_attention_mask = self.return_attention_mask
        required = processed_features[main_input]
        if len(required) == 0:
            out = BatchFeature(dict(processed_features))
            if return_attention_mask:
                out["attention_mask"] = []
            return out

        if return_tensors is None:
            return_tensors = "pt" if _tensor_type_of(required[0]) == TensorType.PYTORCH else "np"

        columns: dict[str, list[np.ndarray]] = {}
        for key, value in processed_features.items():
            if len(value) and isinstance(value[0], (int, float, np.number)):
                value = [value]  # a single example given flat
            columns[key] = [_to_numpy(v) for v in value]

        strategy = self._get_padding_strategies(padding=padding, max_length=max_length)
        batch_size = len(columns[main_input])
        sizes = {key: len(value) for key, value in columns.items()}
        if any(size != batch_size for size in sizes.values()):
            raise ValueError(f"Every key of the batch must hold the same number of examples, got {sizes}.")

        examples = [
            self._truncate({k: v[i] for k, v in columns.items()}, max_length, pad_to_multiple_of, truncation)
            for i in range(batch_size)
        ]
        if strategy == PaddingStrategy.LONGEST:
            max_length = max(len(example[main_input]) for example in examples)
            strategy = PaddingStrategy.MAX_LENGTH

        batch: dict[str, list[np.ndarray]] = {}
        for example in examples:
            padded = self._pad(example, max_length, strategy, pad_to_multiple_of, return_attention_mask)
            for key, value in padded.items():
                if value.dtype == np.float64:
                    value = value.astype(np.float32)
                batch.setdefault(key, []).append(value)
        return BatchFeature(batch, tensor_type=return_tensors)

    def _pad(
        self,
        example: dict[str, np.ndarray],
        max_length: int | None,
        padding_strategy: PaddingStrategy,
        pad_to_multiple_of: int | None,
        return_attention_mask: bool,
    ) -> dict[str, np.ndarray]:
        main_input = self.model_input_names[0]
        values = example[main_input]
        if padding_strategy == PaddingStrategy.LONGEST:
            max_length = len(values)
        max_length = _round_up(max_length, pad_to_multiple_of)
        if return_attention_mask and "attention_mask" not in example:
            example["attention_mask"] = np.ones(len(values), dtype=np.int32)
        if padding_strategy == PaddingStrategy.DO_NOT_PAD or max_length is None or len(values) >= max_length:
            return example
        difference = max_length - len(values)
        before_after = (0, difference) if self.padding_side == "right" else (difference, 0)
        if return_attention_mask:
            example["attention_mask"] = np.pad(example["attention_mask"], before_after)
        shape = (before_after, (0, 0)) if self.feature_size > 1 else before_after
        example[main_input] = np.pad(values, shape, "constant", constant_values=self.padding_value)
        return example

    def _truncate(
        self, example: dict[str, np.ndarray], max_length: int | None, pad_to_multiple_of: int | None, truncation: bool
    ) -> dict[str, np.ndarray]:
        if not truncation:
            return example
        if max_length is None:
            raise ValueError("truncation=True needs max_length: pass max_length=N (in frames/samples).")
        max_length = _round_up(max_length, pad_to_multiple_of)
        main_input = self.model_input_names[0]
        if len(example[main_input]) > max_length:
            example[main_input] = example[main_input][:max_length]
            if "attention_mask" in example:
                example["attention_mask"] = example["attention_mask"][:max_length]
        return example

    def _get_padding_strategies(self, padding: bool | str | PaddingStrategy = False, max_length: int | None = None) -> PaddingStrategy:
        if padding is False or padding is None:
            strategy = PaddingStrategy.DO_NOT_PAD
        elif padding is True:
            strategy = PaddingStrategy.LONGEST
        else:
            try:
                strategy = PaddingStrategy(padding)
            except ValueError:
                raise ValueError(
                    f"padding must be True, False, 'longest', 'max_length' or 'do_not_pad', got {padding!r}."
                ) from None
        if strategy == PaddingStrategy.MAX_LENGTH and max_length is None:
            raise ValueError("padding='max_length' needs max_length: pass max_length=N, or use padding='longest'.")
        if strategy != PaddingStrategy.DO_NOT_PAD and self.padding_value is None:
            raise ValueError(
                "Asked to pad, but this feature extractor has padding_value=None. Set one, e.g. "
                "feature_extractor.padding_value = 0.0."
            )
        return strategy


def _round_up(length: int | None, multiple: int | None) -> int | None:
    if length is not None and multiple is not None and length % multiple != 0:
        return (length // multiple + 1) * multiple
    return length


def _to_numpy(value: Any) -> np.ndarray:
    if isinstance(value, np.ndarray):
        return value
    if hasattr(value, "detach"):  # a torch tensor
        return value.detach().cpu().numpy()
    return np.asarray(value)


def _read_json_file(path: str) -> dict[str, Any]:
    return read_json_file(path, OSError)


def _json_default(value: Any) -> Any:
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")
