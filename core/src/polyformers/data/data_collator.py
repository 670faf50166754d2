"""Data collators: turn a list of dataset examples into one batch of tensors.

The classes and their fields follow Transformers (``DataCollatorWithPadding(tokenizer, padding=True,
...)``), so a fine-tuning script switches by changing its import. Each collator returns PyTorch
(``"pt"``), TensorFlow (``"tf"``) or NumPy (``"np"``) tensors. The logic is written once for NumPy
and once for PyTorch (the PyTorch one uses torch's random stream, so that a masked batch is the one
Transformers gives under the same ``torch.manual_seed``); TensorFlow output is the NumPy batch
converted at the end.

No framework is imported when this module is: torch and tensorflow are imported inside the
functions that build their tensors.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from polyformers.tokenization_utils_base import PaddingStrategy, PreTrainedTokenizerBase

__all__ = [
    "DataCollator",
    "DataCollatorForLanguageModeling",
    "DataCollatorForTokenClassification",
    "DataCollatorMixin",
    "DataCollatorWithPadding",
    "DefaultDataCollator",
    "default_data_collator",
]

InputDataClass = Any
DataCollator = Callable[[list[InputDataClass]], dict[str, Any]]

RETURN_TENSORS = ("pt", "tf", "np")
_LABEL_KEYS = ("label", "label_ids")


# --- input checks ------------------------------------------------------------------------------


def _check_return_tensors(return_tensors: Any) -> str:
    if return_tensors not in RETURN_TENSORS:
        raise ValueError(
            f"return_tensors={return_tensors!r} is not supported: expected one of {RETURN_TENSORS} "
            f"('pt' for PyTorch, 'tf' for TensorFlow, 'np' for NumPy)."
        )
    return return_tensors


def _check_batch(features: Any, collator: str) -> None:
    """``features`` is a non-empty list (or tuple) of examples."""
    if isinstance(features, (str, bytes, Mapping)) or not isinstance(features, Sequence):
        raise TypeError(
            f"{collator} takes `features`, a list of examples (one dict per example, e.g. "
            f"[{{'input_ids': [...]}}, ...]), but got a {type(features).__name__}. A batch that "
            f"is already one dict of lists is collated: pass a list of per-example dicts instead."
        )
    if len(features) == 0:
        raise ValueError(
            f"{collator} got an empty `features` list: expected at least one example. Check the "
            f"dataset and the DataLoader's batch_size."
        )


def _check_mappings(features: Sequence[Any], collator: str) -> None:
    """Every example is a dict-like mapping of field names to values."""
    for i, feature in enumerate(features):
        if not isinstance(feature, Mapping):
            raise TypeError(
                f"{collator} expects every example of `features` to be a dict (e.g. "
                f"{{'input_ids': [...], 'attention_mask': [...]}}), but features[{i}] is a "
                f"{type(feature).__name__}. Tokenize the dataset first (dataset.map(tokenizer)) so "
                f"each example is a dict of fields."
            )


def _as_mappings(features: Sequence[Any]) -> list[Mapping[str, Any]]:
    """Examples as mappings; dataclass-like objects are read through ``vars()``, as Transformers does."""
    if isinstance(features[0], Mapping):
        _check_mappings(features, "default_data_collator")
        return list(features)
    try:
        return [vars(f) for f in features]
    except TypeError:
        raise TypeError(
            f"default_data_collator expects examples that are dicts (or objects with attributes, "
            f"such as dataclasses), but features[0] is a {type(features[0]).__name__}. Turn each "
            f"example into a dict of fields, e.g. {{'input_ids': [...], 'label': 0}}."
        ) from None


def _check_same_lengths(features: Sequence[Mapping[str, Any]], key: str) -> None:
    """A list-valued field has one length across the batch, or stacking it would fail."""
    lengths = [len(f[key]) if hasattr(f[key], "__len__") else None for f in features]
    if len(set(lengths)) > 1:
        raise ValueError(
            f"default_data_collator cannot stack the field {key!r}: its examples have different "
            f"lengths {lengths}. It does no padding; use DataCollatorWithPadding(tokenizer) (or "
            f"DataCollatorForTokenClassification for per-token labels), or tokenize with "
            f"padding='max_length'."
        )


# --- the default collator ----------------------------------------------------------------------


def default_data_collator(features: list[InputDataClass], return_tensors: str = "pt") -> dict[str, Any]:
    """Stack a batch of dict-like examples that already have one length per field.

    ``label`` (one int or float per example) and ``label_ids`` (a list per example) become
    ``labels``, of an integer dtype for ints and float32 for floats. Fields set to ``None`` and
    string fields are dropped. No padding is done: for examples of different lengths use
    :class:`DataCollatorWithPadding`.
    """
    _check_batch(features, "default_data_collator")
    return_tensors = _check_return_tensors(return_tensors)
    features = _as_mappings(features)
    for key, value in features[0].items():
        if value is not None and not isinstance(value, str) and isinstance(value, (list, tuple)):
            _check_same_lengths(features, key)
    if return_tensors == "pt":
        return _torch_default_data_collator(features)
    if return_tensors == "tf":
        return _tf_default_data_collator(features)
    return _numpy_default_data_collator(features)


@dataclass
class DefaultDataCollator:
    """:func:`default_data_collator` as an object, so ``return_tensors`` is set once.

    Args:
        return_tensors: ``"pt"``, ``"tf"`` or ``"np"``.
    """

    return_tensors: str = "pt"

    def __call__(self, features: list[dict[str, Any]], return_tensors: str | None = None) -> dict[str, Any]:
        if return_tensors is None:
            return_tensors = self.return_tensors
        return default_data_collator(features, return_tensors)


def _torch_default_data_collator(features: list[Mapping[str, Any]]) -> dict[str, Any]:
    import torch

    first = features[0]
    batch: dict[str, Any] = {}
    # Labels get an explicit dtype: long for class indices, float for regression targets.
    if "label" in first and first["label"] is not None:
        label = first["label"].item() if isinstance(first["label"], torch.Tensor) else first["label"]
        dtype = torch.long if isinstance(label, (int, np.integer)) else torch.float
        batch["labels"] = torch.tensor([f["label"] for f in features], dtype=dtype)
    elif "label_ids" in first and first["label_ids"] is not None:
        if isinstance(first["label_ids"], torch.Tensor):
            batch["labels"] = torch.stack([f["label_ids"] for f in features])
        else:
            dtype = torch.long if isinstance(first["label_ids"][0], (int, np.integer)) else torch.float
            batch["labels"] = torch.tensor([f["label_ids"] for f in features], dtype=dtype)

    for key, value in first.items():
        if key in _LABEL_KEYS or value is None or isinstance(value, str):
            continue
        if isinstance(value, torch.Tensor):
            batch[key] = torch.stack([f[key] for f in features])
        elif isinstance(value, np.ndarray):
            batch[key] = torch.from_numpy(np.stack([f[key] for f in features]))
        else:
            batch[key] = torch.tensor([f[key] for f in features])
    return batch


def _numpy_default_data_collator(features: list[Mapping[str, Any]]) -> dict[str, Any]:
    first = features[0]
    batch: dict[str, Any] = {}
    if "label" in first and first["label"] is not None:
        label = first["label"].item() if isinstance(first["label"], np.ndarray) else first["label"]
        dtype = np.int64 if isinstance(label, (int, np.integer)) else np.float32
        batch["labels"] = np.array([f["label"] for f in features], dtype=dtype)
    elif "label_ids" in first and first["label_ids"] is not None:
        if isinstance(first["label_ids"], np.ndarray):
            batch["labels"] = np.stack([f["label_ids"] for f in features])
        else:
            dtype = np.int64 if isinstance(first["label_ids"][0], (int, np.integer)) else np.float32
            batch["labels"] = np.array([f["label_ids"] for f in features], dtype=dtype)

    for key, value in first.items():
        if key in _LABEL_KEYS or value is None or isinstance(value, str):
            continue
        if isinstance(value, np.ndarray):
            batch[key] = np.stack([f[key] for f in features])
        else:
            batch[key] = np.array([f[key] for f in features])
    return batch


def _tf_default_data_collator(features: list[Mapping[str, Any]]) -> dict[str, Any]:
    # As Transformers v4's TF collator: labels are int64 or float32, other fields keep the dtype
    # TensorFlow infers (int32 for Python ints, like the tokenizer's "tf" output).
    import tensorflow as tf

    first = features[0]
    batch: dict[str, Any] = {}
    label_key = next((key for key in (*_LABEL_KEYS, "labels") if first.get(key) is not None), None)
    if label_key is not None:
        label = first[label_key]
        if isinstance(label, tf.Tensor):
            is_int = label.dtype.is_integer
        elif isinstance(label, (np.ndarray, np.generic)):
            is_int = np.issubdtype(label.dtype, np.integer)
        elif isinstance(label, (tuple, list)):
            is_int = isinstance(label[0], (int, np.integer))
        else:
            is_int = isinstance(label, (int, np.integer))
        dtype = tf.int64 if is_int else tf.float32
        batch["labels"] = tf.convert_to_tensor([f[label_key] for f in features], dtype=dtype)
    for key, value in first.items():
        if key in (*_LABEL_KEYS, "labels") or value is None or isinstance(value, str):
            continue
        if isinstance(value, (tf.Tensor, np.ndarray)):
            batch[key] = tf.stack([f[key] for f in features])
        else:
            batch[key] = tf.convert_to_tensor([f[key] for f in features])
    return batch


def _numpy_to_tf(batch: Mapping[str, Any]) -> dict[str, Any]:
    import tensorflow as tf

    return {key: tf.convert_to_tensor(value) for key, value in batch.items()}


# --- collators that pad ------------------------------------------------------------------------


class DataCollatorMixin:
    """Dispatch ``__call__`` to ``torch_call``, ``tf_call`` or ``numpy_call`` by ``return_tensors``."""

    return_tensors: str

    def __call__(self, features: list[Any], return_tensors: str | None = None) -> dict[str, Any]:
        if return_tensors is None:
            return_tensors = self.return_tensors
        _check_return_tensors(return_tensors)
        _check_batch(features, type(self).__name__)
        if return_tensors == "pt":
            return self.torch_call(features)
        if return_tensors == "tf":
            return self.tf_call(features)
        return self.numpy_call(features)

    def torch_call(self, features: list[Any]) -> dict[str, Any]:
        raise NotImplementedError

    def numpy_call(self, features: list[Any]) -> dict[str, Any]:
        raise NotImplementedError

    def tf_call(self, features: list[Any]) -> dict[str, Any]:
        return _numpy_to_tf(self.numpy_call(features))


@dataclass
class DataCollatorWithPadding:
    """Pad every field of a batch to one length with ``tokenizer.pad``; ``label(_ids)`` -> ``labels``.

    Args:
        tokenizer: the tokenizer that encoded the data; its pad token and padding side are used.
        padding: ``True`` / ``"longest"`` (pad to the longest example), ``"max_length"`` (to
            ``max_length``) or ``False`` / ``"do_not_pad"``.
        max_length: the length for ``padding="max_length"``.
        pad_to_multiple_of: round the padded length up to a multiple of this (tensor cores like 8).
        return_tensors: ``"pt"``, ``"tf"`` or ``"np"``.
    """

    tokenizer: PreTrainedTokenizerBase
    padding: bool | str | PaddingStrategy = True
    max_length: int | None = None
    pad_to_multiple_of: int | None = None
    return_tensors: str = "pt"

    def __call__(self, features: list[dict[str, Any]]) -> dict[str, Any]:
        _check_batch(features, "DataCollatorWithPadding")
        _check_mappings(features, "DataCollatorWithPadding")
        _check_return_tensors(self.return_tensors)
        batch = self.tokenizer.pad(
            features,
            padding=self.padding,
            max_length=self.max_length,
            pad_to_multiple_of=self.pad_to_multiple_of,
            return_tensors=self.return_tensors,
        )
        for key in _LABEL_KEYS:
            if key in batch:
                batch["labels"] = batch.pop(key)
        return batch


@dataclass
class DataCollatorForTokenClassification(DataCollatorMixin):
    """Pad the inputs with ``tokenizer.pad`` and the per-token labels with ``label_pad_token_id``.

    Labels are padded on the tokenizer's ``padding_side``, so they stay aligned with the tokens.

    Args:
        tokenizer: the tokenizer that encoded the data.
        padding, max_length, pad_to_multiple_of: as for :class:`DataCollatorWithPadding`.
        label_pad_token_id: the label of padding positions; -100 is ignored by the loss.
        return_tensors: ``"pt"``, ``"tf"`` or ``"np"``.
    """

    tokenizer: PreTrainedTokenizerBase
    padding: bool | str | PaddingStrategy = True
    max_length: int | None = None
    pad_to_multiple_of: int | None = None
    label_pad_token_id: int = -100
    return_tensors: str = "pt"

    def _pad(self, features: list[Any], return_tensors: str) -> tuple[Any, str, list[list[int]] | None]:
        """The padded inputs, the label field's name and the padded labels (None without labels)."""
        _check_mappings(features, type(self).__name__)
        label_name = "label" if "label" in features[0] else "labels"
        labels = [feature[label_name] for feature in features] if label_name in features[0] else None
        no_label_features = [{k: v for k, v in feature.items() if k != label_name} for feature in features]
        batch = self.tokenizer.pad(
            no_label_features,
            padding=self.padding,
            max_length=self.max_length,
            pad_to_multiple_of=self.pad_to_multiple_of,
            return_tensors=return_tensors,
        )
        if labels is None:
            return batch, label_name, None

        sequence_length = np.asarray(batch["input_ids"]).shape[1]
        padded = []
        for label in labels:
            label = label.tolist() if hasattr(label, "tolist") else list(label)
            fill = [self.label_pad_token_id] * (sequence_length - len(label))
            padded.append(label + fill if self.tokenizer.padding_side == "right" else fill + label)
        return batch, label_name, padded

    def torch_call(self, features: list[Any]) -> dict[str, Any]:
        import torch

        batch, label_name, labels = self._pad(features, "pt")
        if labels is not None:
            batch[label_name] = torch.tensor(labels, dtype=torch.int64)
        return batch

    def numpy_call(self, features: list[Any]) -> dict[str, Any]:
        batch, label_name, labels = self._pad(features, "np")
        if labels is not None:
            batch[label_name] = np.array(labels, dtype=np.int64)
        return batch

    def tf_call(self, features: list[Any]) -> dict[str, Any]:
        # As Transformers v4's TF collator: every field int64.
        import tensorflow as tf

        return {k: tf.convert_to_tensor(v, dtype=tf.int64) for k, v in self.numpy_call(features).items()}


def _pad_length(max_length: int, pad_to_multiple_of: int | None) -> int:
    if pad_to_multiple_of is not None and max_length % pad_to_multiple_of != 0:
        return (max_length // pad_to_multiple_of + 1) * pad_to_multiple_of
    return max_length


def _check_pad_token(tokenizer: PreTrainedTokenizerBase) -> None:
    if tokenizer.pad_token is None:
        raise ValueError(
            f"The examples have different lengths (or pad_to_multiple_of asks for padding), but the "
            f"tokenizer ({type(tokenizer).__name__}) has no pad token. Set one, e.g. "
            f"tokenizer.pad_token = tokenizer.eos_token, or give examples of one length."
        )


def _torch_collate_batch(
    examples: list[Any], tokenizer: PreTrainedTokenizerBase, pad_to_multiple_of: int | None = None
) -> Any:
    """Stack lists of ids (or 1-D tensors) into one tensor, padding with the tokenizer's pad token."""
    import torch

    if isinstance(examples[0], (list, tuple, np.ndarray)):
        examples = [torch.tensor(e, dtype=torch.long) for e in examples]
    length_of_first = examples[0].size(0)
    same_length = all(x.size(0) == length_of_first for x in examples)
    if same_length and (pad_to_multiple_of is None or length_of_first % pad_to_multiple_of == 0):
        return torch.stack(examples, dim=0)
    _check_pad_token(tokenizer)
    max_length = _pad_length(max(x.size(0) for x in examples), pad_to_multiple_of)
    result = examples[0].new_full([len(examples), max_length], tokenizer.pad_token_id)
    for i, example in enumerate(examples):
        if tokenizer.padding_side == "right":
            result[i, : example.shape[0]] = example
        else:
            result[i, -example.shape[0] :] = example
    return result


def _numpy_collate_batch(
    examples: list[Any], tokenizer: PreTrainedTokenizerBase, pad_to_multiple_of: int | None = None
) -> np.ndarray:
    if isinstance(examples[0], (list, tuple)):
        examples = [np.array(e, dtype=np.int64) for e in examples]
    length_of_first = len(examples[0])
    same_length = all(len(x) == length_of_first for x in examples)
    if same_length and (pad_to_multiple_of is None or length_of_first % pad_to_multiple_of == 0):
        return np.stack(examples, axis=0)
    _check_pad_token(tokenizer)
    max_length = _pad_length(max(len(x) for x in examples), pad_to_multiple_of)
    result = np.full((len(examples), max_length), tokenizer.pad_token_id, dtype=examples[0].dtype)
    for i, example in enumerate(examples):
        if tokenizer.padding_side == "right":
            result[i, : example.shape[0]] = example
        else:
            result[i, -example.shape[0] :] = example
    return result


def _to_numpy(value: Any) -> np.ndarray:
    if isinstance(value, np.ndarray):
        return value
    if hasattr(value, "detach"):
        return value.detach().cpu().numpy()
    return np.array(value)


# --- language modelling ------------------------------------------------------------------------


@dataclass
class DataCollatorForLanguageModeling(DataCollatorMixin):
    """Pad a batch and make language-modelling labels: masked (BERT-style) or causal.

    With ``mlm=True``, each non-special, non-padding token is chosen with ``mlm_probability``;
    a chosen token becomes ``[MASK]`` with ``mask_replace_prob``, a random token with
    ``random_replace_prob``, and stays as it is otherwise. Labels hold the original id at chosen
    positions and -100 elsewhere. With ``mlm=False`` the labels are the inputs with padding set
    to -100 (the model shifts them).

    The random draws are Transformers', op for op: under the same ``torch.manual_seed`` (or the
    same ``seed``) a ``"pt"`` batch is masked exactly as Transformers masks it.

    Args:
        tokenizer: the tokenizer that encoded the data; it needs a mask token when ``mlm=True``.
        mlm: masked (True) or causal (False) language modelling.
        whole_word_mask: choose whole words rather than tokens (examples need ``offset_mapping``,
            from ``tokenizer(..., return_offsets_mapping=True)``).
        mlm_probability: the share of tokens chosen for prediction.
        mask_replace_prob: the share of chosen tokens replaced by the mask token.
        random_replace_prob: the share of chosen tokens replaced by a random token.
        pad_to_multiple_of: round the padded length up to a multiple of this.
        return_tensors: ``"pt"``, ``"tf"`` or ``"np"``.
        seed: seed a private generator for the masking; ``None`` uses the global random state.
    """

    tokenizer: PreTrainedTokenizerBase
    mlm: bool = True
    whole_word_mask: bool = False
    mlm_probability: float | None = 0.15
    mask_replace_prob: float = 0.8
    random_replace_prob: float = 0.1
    pad_to_multiple_of: int | None = None
    return_tensors: str = "pt"
    seed: int | None = None

    def __post_init__(self) -> None:
        if self.mlm:
            if self.tokenizer.mask_token is None:
                raise ValueError(
                    f"mlm=True needs a tokenizer with a mask token, but "
                    f"{type(self.tokenizer).__name__} has mask_token=None. Pass mlm=False to train a "
                    f"causal language model, or add one: tokenizer.add_special_tokens("
                    f"{{'mask_token': '[MASK]'}}) (and resize the model's embeddings)."
                )
            if self.mlm_probability is None or not 0 <= self.mlm_probability <= 1:
                raise ValueError(
                    f"mlm_probability must be between 0 and 1, got {self.mlm_probability!r}. "
                    f"BERT uses 0.15."
                )
            self.mlm_probability = float(self.mlm_probability)
        elif self.whole_word_mask:
            raise ValueError(
                "whole_word_mask=True needs mlm=True (whole words are masked for masked language "
                "modelling); pass mlm=True or whole_word_mask=False."
            )
        for name in ("mask_replace_prob", "random_replace_prob"):
            value = getattr(self, name)
            if not 0 <= value <= 1:
                raise ValueError(f"{name} must be between 0 and 1, got {value!r}.")
        if self.mask_replace_prob + self.random_replace_prob > 1:
            raise ValueError(
                f"mask_replace_prob + random_replace_prob must not exceed 1, got "
                f"{self.mask_replace_prob} + {self.random_replace_prob} = "
                f"{self.mask_replace_prob + self.random_replace_prob}. The rest of the chosen "
                f"tokens are left unchanged; lower one of the two."
            )
        if self.whole_word_mask:
            if not self.tokenizer.is_fast:
                warnings.warn(
                    "Whole word masking needs offset mappings, which only fast tokenizers give natively.",
                    UserWarning,
                    stacklevel=3,
                )
            if self.mask_replace_prob < 1:
                warnings.warn(
                    "whole_word_mask=True replaces every chosen word by the mask token: setting "
                    "mask_replace_prob=1 and random_replace_prob=0.",
                    UserWarning,
                    stacklevel=3,
                )
                self.mask_replace_prob = 1
                self.random_replace_prob = 0
        self.mask_replace_prob = float(self.mask_replace_prob)
        self.random_replace_prob = float(self.random_replace_prob)
        self.generator: Any = None
        self._generator_pid: int | None = None

    # --- random state -------------------------------------------------------------------------

    def get_generator(self, seed: int, return_tensors: str | None = None) -> Any:
        if (return_tensors or self.return_tensors) == "pt":
            import torch

            return torch.Generator().manual_seed(seed)
        return np.random.default_rng(seed)

    def create_rng(self, return_tensors: str | None = None) -> None:
        """Seed the generator; each DataLoader worker gets ``seed + worker id``, so workers differ."""
        if self.seed is None:
            raise ValueError("create_rng() needs a seed: set DataCollatorForLanguageModeling(seed=...).")
        if mp.current_process().name == "MainProcess":
            self.generator = self.get_generator(self.seed, return_tensors)
        else:
            import torch

            worker_info = torch.utils.data.get_worker_info()
            if worker_info is None:
                raise ValueError(
                    "DataCollatorForLanguageModeling(seed=...) runs in a subprocess that is not a "
                    "PyTorch DataLoader worker, so it cannot give each process its own seed. Use "
                    "it in the main process or in a torch DataLoader with num_workers > 0, or pass "
                    "seed=None."
                )
            self.generator = self.get_generator(self.seed + worker_info.id, return_tensors)
        self._generator_pid = os.getpid()

    # --- shared steps -------------------------------------------------------------------------

    def _check_examples(self, examples: list[Any]) -> None:
        if self.whole_word_mask and not (isinstance(examples[0], Mapping) and "offset_mapping" in examples[0]):
            raise ValueError(
                "whole_word_mask=True needs each example's 'offset_mapping' (to tell where words "
                "start): tokenize with return_offsets_mapping=True and keep that column."
            )

    def _special_tokens_mask(self, labels: Any, special_tokens_mask: Any | None) -> Any:
        if special_tokens_mask is None:
            return [
                self.tokenizer.get_special_tokens_mask(row, already_has_special_tokens=True)
                for row in labels.tolist()
            ]
        return special_tokens_mask

    # --- PyTorch ------------------------------------------------------------------------------

    def torch_call(self, examples: list[Any]) -> dict[str, Any]:
        if self.seed is not None:
            import torch

            if not isinstance(self.generator, torch.Generator) or self._generator_pid != os.getpid():
                self.create_rng("pt")
        self._check_examples(examples)
        if isinstance(examples[0], Mapping):
            batch = self.tokenizer.pad(examples, return_tensors="pt", pad_to_multiple_of=self.pad_to_multiple_of)
        else:
            batch = {"input_ids": _torch_collate_batch(examples, self.tokenizer, self.pad_to_multiple_of)}
        # A precomputed special_tokens_mask (return_special_tokens_mask=True) saves recomputing it.
        special_tokens_mask = batch.pop("special_tokens_mask", None)
        offset_mapping = batch.pop("offset_mapping", None)
        if self.mlm:
            batch["input_ids"], batch["labels"] = self.torch_mask_tokens(
                batch["input_ids"], special_tokens_mask=special_tokens_mask, offset_mapping=offset_mapping
            )
        else:
            labels = batch["input_ids"].clone()
            if self.tokenizer.pad_token_id is not None:
                labels[labels == self.tokenizer.pad_token_id] = -100
            batch["labels"] = labels
        return batch

    def torch_mask_tokens(
        self, inputs: Any, special_tokens_mask: Any | None = None, offset_mapping: Any | None = None
    ) -> tuple[Any, Any]:
        """Mask ``inputs`` (B, T) in place; return ``(inputs, labels)``.

        The draws happen in Transformers' order (choose, mask-or-not, random-or-not, random ids),
        each over the whole (B, T) grid, so the random stream lines up with theirs.
        """
        import torch

        labels = inputs.clone()
        probability_matrix = torch.full(labels.shape, self.mlm_probability)  # (B, T)
        special_tokens_mask = self._special_tokens_mask(labels, special_tokens_mask)
        if self.whole_word_mask:
            word_ids, no_mask_mask = self._calc_word_ids_and_prob_mask(
                _to_numpy(offset_mapping), _to_numpy(special_tokens_mask)
            )
            no_mask_mask = torch.tensor(no_mask_mask, dtype=torch.bool)
        elif isinstance(special_tokens_mask, torch.Tensor):
            no_mask_mask = special_tokens_mask.bool()
        else:
            no_mask_mask = torch.tensor(special_tokens_mask, dtype=torch.bool)

        probability_matrix.masked_fill_(no_mask_mask, value=0.0)
        masked_indices = torch.bernoulli(probability_matrix, generator=self.generator).bool()
        if self.whole_word_mask:
            masked_indices = torch.BoolTensor(self._whole_word_mask(word_ids, masked_indices))
        labels[~masked_indices] = -100  # the loss sees only the chosen tokens

        indices_replaced = (
            torch.bernoulli(torch.full(labels.shape, self.mask_replace_prob), generator=self.generator).bool()
            & masked_indices
        )
        inputs[indices_replaced] = self.tokenizer.convert_tokens_to_ids(self.tokenizer.mask_token)
        if self.mask_replace_prob == 1 or self.random_replace_prob == 0:
            return inputs, labels

        # Of the chosen tokens not masked, this share becomes random: e.g. 0.1 / (1 - 0.8) = 0.5.
        random_replace_prob_scaled = self.random_replace_prob / (1 - self.mask_replace_prob)
        indices_random = (
            torch.bernoulli(torch.full(labels.shape, random_replace_prob_scaled), generator=self.generator).bool()
            & masked_indices
            & ~indices_replaced
        )
        random_words = torch.randint(len(self.tokenizer), labels.shape, dtype=torch.long, generator=self.generator)
        inputs[indices_random] = random_words[indices_random]
        return inputs, labels

    # --- NumPy (and TensorFlow, converted from it) --------------------------------------------

    def numpy_call(self, examples: list[Any]) -> dict[str, Any]:
        if self.seed is not None and (
            not isinstance(self.generator, np.random.Generator) or self._generator_pid != os.getpid()
        ):
            self.create_rng("np")
        self._check_examples(examples)
        if isinstance(examples[0], Mapping):
            batch = self.tokenizer.pad(examples, return_tensors="np", pad_to_multiple_of=self.pad_to_multiple_of)
        else:
            batch = {"input_ids": _numpy_collate_batch(examples, self.tokenizer, self.pad_to_multiple_of)}
        special_tokens_mask = batch.pop("special_tokens_mask", None)
        offset_mapping = batch.pop("offset_mapping", None)
        if self.mlm:
            batch["input_ids"], batch["labels"] = self.numpy_mask_tokens(
                batch["input_ids"], special_tokens_mask=special_tokens_mask, offset_mapping=offset_mapping
            )
        else:
            labels = np.copy(batch["input_ids"])
            if self.tokenizer.pad_token_id is not None:
                labels[labels == self.tokenizer.pad_token_id] = -100
            batch["labels"] = labels
        return batch

    def numpy_mask_tokens(
        self, inputs: Any, special_tokens_mask: Any | None = None, offset_mapping: Any | None = None
    ) -> tuple[Any, Any]:
        """:meth:`torch_mask_tokens` with NumPy's random state (Transformers' NumPy draws)."""
        rng = self.generator if self.generator is not None else np.random
        labels = np.copy(inputs)
        probability_matrix = np.full(labels.shape, self.mlm_probability)  # (B, T)
        special_tokens_mask = self._special_tokens_mask(labels, special_tokens_mask)
        if self.whole_word_mask:
            word_ids, no_mask_mask = self._calc_word_ids_and_prob_mask(
                _to_numpy(offset_mapping), _to_numpy(special_tokens_mask)
            )
        elif isinstance(special_tokens_mask, np.ndarray):
            no_mask_mask = special_tokens_mask.astype(bool)
        else:
            no_mask_mask = np.array(special_tokens_mask, dtype=bool)

        probability_matrix[no_mask_mask] = 0
        # NumPy has no Bernoulli: a binomial with one trial is one.
        masked_indices = rng.binomial(1, probability_matrix, size=probability_matrix.shape).astype(bool)
        if self.whole_word_mask:
            masked_indices = self._whole_word_mask(word_ids, masked_indices)
        labels[~masked_indices] = -100

        indices_replaced = rng.binomial(1, self.mask_replace_prob, size=labels.shape).astype(bool) & masked_indices
        inputs[indices_replaced] = self.tokenizer.mask_token_id
        if self.mask_replace_prob == 1 or self.random_replace_prob == 0:
            return inputs, labels

        random_replace_prob_scaled = self.random_replace_prob / (1 - self.mask_replace_prob)
        indices_random = (
            rng.binomial(1, random_replace_prob_scaled, size=labels.shape).astype(bool)
            & masked_indices
            & ~indices_replaced
        )
        count = int(np.count_nonzero(indices_random))
        if rng is np.random:
            random_words = np.random.randint(low=0, high=len(self.tokenizer), size=count, dtype=np.int64)
        else:
            random_words = rng.integers(low=0, high=len(self.tokenizer), size=count, dtype=np.int64)
        inputs[indices_random] = random_words
        return inputs, labels

    # --- whole words --------------------------------------------------------------------------

    @staticmethod
    def _calc_word_ids_and_prob_mask(
        offsets: np.ndarray, special_tokens_mask: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """Word id of each token (-1 for special tokens), and the tokens that may not be chosen.

        Only the first token of a word is drawn; a token starts a word when it is not special and
        either does not touch the previous token's characters or follows a special token.
        """
        token_starts = offsets[:, :, 0]  # (B, T)
        token_ends = offsets[:, :, 1]
        prev_token_ends = np.roll(token_ends, 1, axis=1)
        prev_token_ends[:, 0] = -1
        prev_token_special = np.roll(special_tokens_mask, 1, axis=1)
        prev_token_special[:, 0] = 0
        special = special_tokens_mask.astype(bool)
        is_new_word = (~special) & ((token_starts != prev_token_ends) | (prev_token_special == 1))
        word_ids = np.cumsum(is_new_word, axis=1)
        word_ids[special] = -1
        return word_ids, ~is_new_word

    @staticmethod
    def _whole_word_mask(word_ids: np.ndarray, mask: Any) -> np.ndarray:
        """Spread the choice of a word's first token to all its tokens."""
        mask = _to_numpy(mask)
        valid = word_ids != -1
        # same_word[b, i, j]: tokens i and j belong to one word.  (B, T, T)
        same_word = (word_ids[:, :, None] == word_ids[:, None, :]) & valid[:, :, None] & valid[:, None, :]
        return np.any(same_word & mask[:, None, :], axis=2)
