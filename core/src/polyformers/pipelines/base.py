"""The pipeline base: preprocess -> _forward -> postprocess, with length-sorted dynamic batching.

A task subclasses :class:`Pipeline` and writes three steps:

- ``preprocess(one_input, **params)`` returns the unpadded model inputs of one input
  (``{"input_ids": [...], "attention_mask": [...], ...}``, plain lists);
- ``_forward(batch, **params)`` runs the model on a padded batch of tensors and returns a dict of
  tensors whose first dimension is the batch; keys named in ``token_outputs`` also have a token
  dimension, which is cut back to each input's own length before postprocessing;
- ``postprocess(outputs, **params)`` turns one input's outputs (batch dimension 1) into the
  result users see.

A chunking task (``chunked = True``: token-classification with ``stride``, question-answering)
fans one input out into several forward items: its ``preprocess`` returns a list of items, each the
model inputs of one window plus any metadata the postprocess needs (keys outside
``model_input_keys``, passed through untouched). Windows of all inputs are batched together like
any other inputs, and ``postprocess`` receives the list of one input's window outputs, in order.

Batches are padded on the right to their own longest input, never to a fixed length, and inputs are sorted by
length first so that each batch holds inputs of similar length; results come back in input order.
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Iterable, Iterator
from typing import Any

import torch

logger = logging.getLogger(__name__)

# How many inputs of a generator are read ahead and sorted together (times batch_size).
STREAM_CHUNK_BATCHES = 8


def _resolve_device(device: Any, model: torch.nn.Module) -> torch.device:
    if device is None:
        try:
            return next(model.parameters()).device
        except StopIteration:
            return torch.device("cpu")
    if isinstance(device, torch.device):
        return device
    if isinstance(device, int):
        return torch.device("cpu") if device < 0 else torch.device(f"cuda:{device}")
    if isinstance(device, str):
        return torch.device(device)
    raise TypeError(f"device must be None, an int (-1 for CPU, i for cuda:i), a string such as 'cuda:0' or a torch.device; got {type(device).__name__} {device!r}.")


class Pipeline:
    """Runs a model on raw inputs: ``pipe(text)`` or ``pipe([text, ...], batch_size=8)``.

    Args:
        model: a PyTorch model (a ``PreTrainedModel``).
        tokenizer: the tokenizer that prepares its inputs.
        feature_extractor: the feature extractor that prepares audio (or image) inputs.
        task: the task name, for messages.
        device: where to run, as Transformers accepts it: ``-1``/``"cpu"``, ``0``/``"cuda:0"``,
            a ``torch.device``; ``None`` keeps the model where it is.
        batch_size: how many inputs share one forward pass when a list is given.
        optimize_for_inference: on CPU, apply :func:`polyformers.inference.optimize_for_inference`
            to the model (fp32, unless it was already optimised, e.g. in bf16); ``False`` leaves it as is.
        **kwargs: default call parameters of the task (e.g. ``top_k=2``).
    """

    framework = "pt"
    # Output keys with a token dimension (dim 1) that is cut to each input's length when unbatching.
    token_outputs: tuple[str, ...] = ()
    # True when preprocess returns a list of forward items per input and postprocess takes their list.
    chunked: bool = False
    # Keys of a chunked item that are model inputs (batched and padded); the others are metadata.
    model_input_keys: tuple[str, ...] = ("input_ids", "attention_mask", "token_type_ids")

    def __init__(
        self,
        model: Any,
        tokenizer: Any = None,
        task: str = "",
        device: Any = None,
        batch_size: int = 1,
        feature_extractor: Any = None,
        optimize_for_inference: bool = True,
        **kwargs: Any,
    ) -> None:
        if not isinstance(model, torch.nn.Module):
            raise TypeError(f"{type(self).__name__} needs a PyTorch model (torch.nn.Module), got {type(model).__name__}. Load one with pipeline(task, model='path/or/repo-id').")
        self.model = model
        self.tokenizer = tokenizer
        self.feature_extractor = feature_extractor
        self.task = task
        self.device = _resolve_device(device, model)
        if device is not None:
            self.model.to(self.device)
        self.model.eval()
        if optimize_for_inference and self.device.type == "cpu":
            from ..inference import is_optimized
            from ..inference import optimize_for_inference as optimize

            if not is_optimized(self.model):
                optimize(self.model)
        self.batch_size = _check_batch_size(batch_size)
        self._preprocess_params, self._forward_params, self._postprocess_params = self._sanitize_parameters(**kwargs)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(task={self.task!r}, model={type(self.model).__name__}, device={self.device})"

    # --- the three steps a task writes ---------------------------------------------------------

    def _sanitize_parameters(self, **kwargs: Any) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
        """Split call keyword arguments into (preprocess, forward, postprocess) parameters."""
        if kwargs:
            raise TypeError(f"{type(self).__name__} got unexpected keyword arguments {sorted(kwargs)}.")
        return {}, {}, {}

    def preprocess(self, inputs: Any, **params: Any) -> dict[str, list[int]]:
        raise NotImplementedError

    def _forward(self, model_inputs: dict[str, torch.Tensor], **params: Any) -> dict[str, torch.Tensor]:
        raise NotImplementedError

    def postprocess(self, model_outputs: dict[str, torch.Tensor], **params: Any) -> Any:
        raise NotImplementedError

    # --- input checks ----------------------------------------------------------------------------

    def _check_input(self, item: Any) -> None:
        """Raise a TypeError naming ``inputs`` when one input is not a string."""
        if not isinstance(item, str):
            raise TypeError(f"{self.task or type(self).__name__} expects inputs to be a string or a list of strings, got {_describe(item)}. Pass text, e.g. pipe('Hello world') or pipe(['a', 'b']).")

    # --- running ---------------------------------------------------------------------------------

    def __call__(self, inputs: Any, *, batch_size: int | None = None, **kwargs: Any) -> Any:
        """Run on one input (returns one result), a list (a list of results) or a generator (yields)."""
        batch_size = self.batch_size if batch_size is None else _check_batch_size(batch_size)
        pre, fwd, post = self._sanitize_parameters(**kwargs)
        params = ({**self._preprocess_params, **pre}, {**self._forward_params, **fwd}, {**self._postprocess_params, **post})
        if inputs is None:
            raise TypeError(f"{self.task or type(self).__name__} got inputs=None; pass a string, a list of strings or a generator of strings.")
        if isinstance(inputs, (list, tuple)):
            if len(inputs) == 0:
                raise ValueError(f"{self.task or type(self).__name__} got an empty list as inputs; pass at least one input.")
            for item in inputs:
                self._check_input(item)
            return list(self._run_many(list(inputs), batch_size, *params))
        if _is_stream(inputs):
            return self._stream(inputs, batch_size, params)
        self._check_input(inputs)
        return next(self._run_many([inputs], 1, *params))

    def _stream(self, inputs: Iterable[Any], batch_size: int, params: tuple[dict, dict, dict]) -> Iterator[Any]:
        iterator = iter(inputs)
        while chunk := list(itertools.islice(iterator, batch_size * STREAM_CHUNK_BATCHES)):
            for item in chunk:
                self._check_input(item)
            yield from self._run_many(chunk, batch_size, *params)

    def _run_many(self, inputs: list[Any], batch_size: int, pre: dict, fwd: dict, post: dict) -> Iterator[Any]:
        """Results of ``inputs`` in their order; forward passes run on length-sorted batches."""
        encoded = [self.preprocess(item, **pre) for item in inputs]
        # (input index, forward item): one item per input, or one per window of a chunking task.
        items = [(i, f) for i, features in enumerate(encoded) for f in features] if self.chunked else list(enumerate(encoded))
        order = sorted(range(len(items)), key=lambda j: self._item_length(items[j][1]))
        results: list[Any] = [None] * len(encoded)
        window_outputs: list[Any] = [None] * len(items)
        with torch.inference_mode():
            for start in range(0, len(order), batch_size):
                indices = order[start : start + batch_size]
                features = [items[j][1] for j in indices]
                if self.chunked:
                    features = [{k: v for k, v in f.items() if k in self.model_input_keys} for f in features]
                outputs = self._forward(self._collate(features), **fwd)
                for row, j in enumerate(indices):
                    i, feature = items[j]
                    length = self._item_length(feature)
                    one = {k: self._unbatch(k, v, row, length) for k, v in outputs.items()}
                    if self.chunked:
                        window_outputs[j] = {**{k: v for k, v in feature.items() if k not in self.model_input_keys}, **one}
                    else:
                        results[i] = self.postprocess(one, **post)
        if self.chunked:
            by_input: list[list[Any]] = [[] for _ in encoded]
            for (i, _), output in zip(items, window_outputs):
                by_input[i].append(output)
            results = [self.postprocess(windows, **post) for windows in by_input]
        # Results are computed before the first is yielded: sorting needs every input anyway.
        yield from results

    def _item_length(self, feature: dict[str, Any]) -> int:
        """The length that batches are sorted and cut by (tokens here; samples for audio)."""
        return len(feature["input_ids"])

    def _unbatch(self, key: str, value: Any, row: int, length: int) -> Any:
        if not isinstance(value, torch.Tensor):
            return value
        value = value[row : row + 1]
        if key in self.token_outputs:
            value = value[:, :length]
        return value

    def _collate(self, features: list[dict[str, list[int]]]) -> dict[str, torch.Tensor]:
        """Pad a batch on the right to its own longest input (padding is masked out)."""
        longest = max(len(f["input_ids"]) for f in features)
        pad_values = {
            "input_ids": self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None else 0,
            "attention_mask": 0,
            "token_type_ids": getattr(self.tokenizer, "pad_token_type_id", 0),
            "special_tokens_mask": 1,
        }
        return {
            key: torch.tensor(
                [list(f[key]) + [pad_values.get(key, 0)] * (longest - len(f[key])) for f in features],
                dtype=torch.long,
                device=self.device,
            )
            for key in features[0]
        }


def _check_batch_size(batch_size: Any) -> int:
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive int, got {batch_size!r}.")
    return batch_size


def _is_stream(inputs: Any) -> bool:
    if hasattr(inputs, "shape") and hasattr(inputs, "dtype"):  # an array or tensor is one input (e.g. audio)
        return False
    return isinstance(inputs, Iterator) or (isinstance(inputs, Iterable) and not isinstance(inputs, (str, bytes, bytearray, dict, list, tuple)))


def _describe(value: Any) -> str:
    text = repr(value)
    return f"{type(value).__name__} {text[:60] + '...' if len(text) > 60 else text}"
