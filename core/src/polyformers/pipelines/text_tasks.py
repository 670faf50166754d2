"""The generic text tasks: feature-extraction, sentence-embeddings, fill-mask, text-classification.

Output formats follow Transformers' pipelines, so code can switch by changing an import.
"""

from __future__ import annotations

import logging
from typing import Any

import torch

from .base import Pipeline, _describe

logger = logging.getLogger(__name__)


def _encode(tokenizer: Any, *args: Any, **kwargs: Any) -> dict[str, list[int]]:
    """Tokenize one input into unpadded lists (padding happens per batch)."""
    kwargs = {k: v for k, v in kwargs.items() if k not in ("return_tensors", "padding")}
    encoded = tokenizer(*args, **kwargs)
    return {key: list(value) for key, value in encoded.items() if key in ("input_ids", "attention_mask", "token_type_ids")}


class FeatureExtractionPipeline(Pipeline):
    """Hidden states of the base model: ``[1][tokens][hidden]`` nested lists per input.

    Call parameters: ``return_tensors`` (a ``(1, tokens, hidden)`` tensor instead of lists),
    ``truncation``, ``tokenize_kwargs`` (passed to the tokenizer).
    """

    token_outputs = ("last_hidden_state",)

    def _sanitize_parameters(self, truncation: bool | None = None, tokenize_kwargs: dict[str, Any] | None = None, return_tensors: bool | None = None, **kwargs: Any) -> tuple[dict, dict, dict]:
        if kwargs:
            raise TypeError(f"{self.task} got unexpected keyword arguments {sorted(kwargs)}; it accepts truncation, tokenize_kwargs and return_tensors.")
        tokenize_kwargs = dict(tokenize_kwargs or {})
        if truncation is not None:
            if "truncation" in tokenize_kwargs:
                raise ValueError("truncation was given twice, as an argument and in tokenize_kwargs; pass it once.")
            tokenize_kwargs["truncation"] = truncation
        post = {} if return_tensors is None else {"return_tensors": return_tensors}
        return ({"tokenize_kwargs": tokenize_kwargs} if tokenize_kwargs else {}), {}, post

    def preprocess(self, inputs: str, tokenize_kwargs: dict[str, Any] | None = None) -> dict[str, list[int]]:
        return _encode(self.tokenizer, inputs, **(tokenize_kwargs or {}))

    def _forward(self, model_inputs: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        return {"last_hidden_state": self.model(**model_inputs, return_dict=True)[0]}  # (B, T, C)

    def postprocess(self, model_outputs: dict[str, torch.Tensor], return_tensors: bool = False) -> Any:
        hidden = model_outputs["last_hidden_state"]  # (1, T, C)
        return hidden.clone() if return_tensors else hidden.tolist()


class SentenceEmbeddingsPipeline(Pipeline):
    """One unit-length vector per input: mean of the token states over the attention mask, then
    L2 normalisation, as sentence-transformers does for all-MiniLM-L6-v2.

    Call parameters: ``normalize`` (default True), ``return_tensors`` (a ``(hidden,)`` tensor per
    input, a ``(n, hidden)`` tensor for a list), ``max_length`` (default: ``max_seq_length`` of the
    checkpoint's ``sentence_bert_config.json``, else the tokenizer's limit), ``tokenize_kwargs``.
    A task Transformers lacks; ``sentence-similarity`` is its alias.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.max_seq_length = _sentence_bert_max_length(getattr(self.model.config, "name_or_path", ""))

    def _sanitize_parameters(self, normalize: bool | None = None, return_tensors: bool | None = None, max_length: int | None = None, tokenize_kwargs: dict[str, Any] | None = None, **kwargs: Any) -> tuple[dict, dict, dict]:
        if kwargs:
            raise TypeError(f"{self.task} got unexpected keyword arguments {sorted(kwargs)}; it accepts normalize, return_tensors, max_length and tokenize_kwargs.")
        pre: dict[str, Any] = {}
        if tokenize_kwargs:
            pre["tokenize_kwargs"] = dict(tokenize_kwargs)
        if max_length is not None:
            pre["max_length"] = max_length
        post = {k: v for k, v in (("normalize", normalize), ("return_tensors", return_tensors)) if v is not None}
        return pre, {}, post

    def __call__(self, inputs: Any, **kwargs: Any) -> Any:
        result = super().__call__(inputs, **kwargs)
        if isinstance(inputs, (list, tuple)) and kwargs.get("return_tensors", self._postprocess_params.get("return_tensors")):
            return torch.stack(result)  # (n, C)
        return result

    def preprocess(self, inputs: str, tokenize_kwargs: dict[str, Any] | None = None, max_length: int | None = None) -> dict[str, list[int]]:
        kwargs = {"truncation": True, **(tokenize_kwargs or {})}
        limit = max_length or self.max_seq_length
        if limit is not None:
            kwargs.setdefault("max_length", limit)
        return _encode(self.tokenizer, inputs, **kwargs)

    def _forward(self, model_inputs: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        hidden = self.model(**model_inputs, return_dict=True)[0]  # (B, T, C)
        mask = model_inputs["attention_mask"].unsqueeze(-1).to(hidden.dtype)  # (B, T, 1)
        mean = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)  # padding does not count
        return {"mean": mean}  # (B, C)

    def postprocess(self, model_outputs: dict[str, torch.Tensor], normalize: bool = True, return_tensors: bool = False) -> Any:
        vector = model_outputs["mean"][0]  # (C,)
        if normalize:
            vector = torch.nn.functional.normalize(vector, p=2, dim=0)
        return vector.clone() if return_tensors else vector.tolist()


def _sentence_bert_max_length(path: str) -> int | None:
    import json
    import os

    config_file = os.path.join(path, "sentence_bert_config.json") if path else ""
    if not config_file or not os.path.isfile(config_file):
        return None
    with open(config_file, encoding="utf-8") as f:
        value = json.load(f).get("max_seq_length")
    return int(value) if value else None


class FillMaskPipeline(Pipeline):
    """The most likely tokens at each mask: ``[{score, token, token_str, sequence}, ...]``.

    One mask gives a list of ``top_k`` dicts; several masks give one such list per mask. Call
    parameters: ``top_k`` (default 5), ``targets`` (limit the scores to these tokens),
    ``tokenizer_kwargs``.
    """

    token_outputs = ("logits", "input_ids")

    def _sanitize_parameters(self, top_k: int | None = None, targets: str | list[str] | None = None, tokenizer_kwargs: dict[str, Any] | None = None, **kwargs: Any) -> tuple[dict, dict, dict]:
        if kwargs:
            raise TypeError(f"{self.task} got unexpected keyword arguments {sorted(kwargs)}; it accepts top_k, targets and tokenizer_kwargs.")
        if self.tokenizer.mask_token_id is None:
            raise ValueError(f"{self.task}: the tokenizer {type(self.tokenizer).__name__} defines no mask_token; use a tokenizer with one (e.g. '[MASK]').")
        post: dict[str, Any] = {}
        if targets is not None:
            post["target_ids"] = self._target_ids(targets)
        if top_k is not None:
            if isinstance(top_k, bool) or not isinstance(top_k, int) or top_k < 1:
                raise ValueError(f"top_k must be a positive int, got {top_k!r}.")
            post["top_k"] = top_k
        return ({"tokenizer_kwargs": dict(tokenizer_kwargs)} if tokenizer_kwargs else {}), {}, post

    def _target_ids(self, targets: str | list[str]) -> list[int]:
        if isinstance(targets, str):
            targets = [targets]
        if not isinstance(targets, (list, tuple)) or not all(isinstance(t, str) for t in targets):
            raise TypeError(f"targets must be a string or a list of strings, got {_describe(targets)}.")
        vocab = self.tokenizer.get_vocab()
        ids = []
        for target in targets:
            id_ = vocab.get(target)
            if id_ is None:
                pieces = self.tokenizer(target, add_special_tokens=False, return_attention_mask=False, return_token_type_ids=False, max_length=1, truncation=True)["input_ids"]
                if not pieces:
                    logger.warning("The target token %r is not in the model vocabulary and tokenizes to nothing; ignoring it.", target)
                    continue
                id_ = pieces[0]
                logger.warning("The target token %r is not in the model vocabulary; using %r instead.", target, self.tokenizer.convert_ids_to_tokens(id_))
            ids.append(id_)
        ids = sorted(set(ids))
        if not ids:
            raise ValueError(f"targets={targets!r} gave no token of the vocabulary; pass at least one target token.")
        return ids

    def _check_input(self, item: Any) -> None:
        super()._check_input(item)
        if self.tokenizer.mask_token not in item:
            raise ValueError(f"fill-mask inputs must contain the mask token {self.tokenizer.mask_token!r}, got {item!r}. Write the word to predict as {self.tokenizer.mask_token}.")

    def preprocess(self, inputs: str, tokenizer_kwargs: dict[str, Any] | None = None) -> dict[str, list[int]]:
        encoded = _encode(self.tokenizer, inputs, **(tokenizer_kwargs or {}))
        if self.tokenizer.mask_token_id not in encoded["input_ids"]:  # e.g. truncated away
            raise ValueError(f"fill-mask: no mask token {self.tokenizer.mask_token!r} is left in the tokenized input {inputs!r} (was it truncated?). Put the mask within the model's maximum length.")
        return encoded

    def _forward(self, model_inputs: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        logits = self.model(**model_inputs, return_dict=True).logits  # (B, T, V)
        return {"logits": logits, "input_ids": model_inputs["input_ids"]}

    def postprocess(self, model_outputs: dict[str, torch.Tensor], top_k: int = 5, target_ids: list[int] | None = None) -> list[dict[str, Any]] | list[list[dict[str, Any]]]:
        input_ids = model_outputs["input_ids"][0]  # (T,)
        masked_index = torch.nonzero(input_ids == self.tokenizer.mask_token_id, as_tuple=False).squeeze(-1)  # (M,)
        probs = model_outputs["logits"][0, masked_index, :].float().softmax(dim=-1)  # (M, V)
        if target_ids is not None:
            probs = probs[..., target_ids]
            top_k = min(top_k, len(target_ids))
        values, predictions = probs.topk(top_k)  # (M, k)
        single_mask = values.shape[0] == 1
        pad_id = self.tokenizer.pad_token_id
        result = []
        for i, (row_values, row_predictions) in enumerate(zip(values.tolist(), predictions.tolist())):
            row = []
            for score, p in zip(row_values, row_predictions):
                token = target_ids[p] if target_ids is not None else p
                tokens = input_ids.tolist()
                tokens[masked_index[i]] = token
                tokens = [t for t in tokens if t != pad_id]
                # Transformers keeps the special tokens in the sequence when there are several masks.
                sequence = self.tokenizer.decode(tokens, skip_special_tokens=single_mask)
                row.append({"score": score, "token": token, "token_str": self.tokenizer.decode([token]), "sequence": sequence})
            result.append(row)
        return result[0] if single_mask else result

    def __call__(self, inputs: Any, **kwargs: Any) -> Any:
        outputs = super().__call__(inputs, **kwargs)
        if isinstance(inputs, list) and len(inputs) == 1:
            return outputs[0]  # as Transformers does
        return outputs


class TextClassificationPipeline(Pipeline):
    """Label scores of a sequence classifier: ``{label, score}``.

    Like Transformers: without ``top_k`` a string gives ``[{label, score}]`` (the best label) and a
    list gives one dict per input; with ``top_k=k`` each input gives its ``k`` best labels (``None``:
    all), sorted by score. ``function_to_apply`` is ``"softmax"``, ``"sigmoid"`` or ``"none"``;
    by default it follows ``config.problem_type`` and ``num_labels``. A text pair is given as
    ``{"text": ..., "text_pair": ...}``. Other keyword arguments go to the tokenizer.
    """

    FUNCTIONS = ("softmax", "sigmoid", "none")

    def _sanitize_parameters(self, function_to_apply: str | None = None, top_k: Any = "", **tokenizer_kwargs: Any) -> tuple[dict, dict, dict]:
        post: dict[str, Any] = {}
        if isinstance(top_k, int) or top_k is None:
            if top_k is not None and (isinstance(top_k, bool) or top_k < 1):
                raise ValueError(f"top_k must be a positive int or None (all labels), got {top_k!r}.")
            post["top_k"] = top_k
            post["_legacy"] = False
        elif top_k != "":
            raise TypeError(f"top_k must be an int or None, got {_describe(top_k)}.")
        if function_to_apply is not None:
            name = str(getattr(function_to_apply, "value", function_to_apply)).lower()
            if name not in self.FUNCTIONS:
                raise ValueError(f"function_to_apply must be one of {self.FUNCTIONS}, got {function_to_apply!r}.")
            post["function_to_apply"] = name
        return tokenizer_kwargs, {}, post

    def _check_input(self, item: Any) -> None:
        if isinstance(item, dict):
            if set(item) - {"text", "text_pair"} or not isinstance(item.get("text"), str) or not isinstance(item.get("text_pair", ""), str):
                raise TypeError(f"A text pair for {self.task} is a dict {{'text': str, 'text_pair': str}}, got {_describe(item)}.")
            return
        if isinstance(item, (list, tuple)):
            raise ValueError(f'{self.task} received invalid inputs {_describe(item)}; to send a text pair, pass a dictionary {{"text": "My text", "text_pair": "My pair"}}.')
        super()._check_input(item)

    def __call__(self, inputs: Any, **kwargs: Any) -> Any:
        if isinstance(inputs, dict):  # one text pair, not a stream
            self._check_input(inputs)
            result = super().__call__([inputs], **kwargs)[0]
        else:
            result = super().__call__(inputs, **kwargs)
        if isinstance(inputs, str) and "top_k" not in kwargs:
            return [result]  # Transformers' legacy format for one string
        return result

    def preprocess(self, inputs: str | dict[str, str], **tokenizer_kwargs: Any) -> dict[str, list[int]]:
        if isinstance(inputs, dict):
            return _encode(self.tokenizer, **inputs, **tokenizer_kwargs)
        return _encode(self.tokenizer, inputs, **tokenizer_kwargs)

    def _forward(self, model_inputs: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        return {"logits": self.model(**model_inputs, return_dict=True).logits}  # (B, num_labels)

    def _default_function(self) -> str:
        config = self.model.config
        if config.problem_type == "regression":
            return "none"
        if config.problem_type == "multi_label_classification" or config.num_labels == 1:
            return "sigmoid"
        if config.problem_type == "single_label_classification" or config.num_labels > 1:
            return "softmax"
        return getattr(config, "function_to_apply", "none")

    def postprocess(self, model_outputs: dict[str, torch.Tensor], function_to_apply: str | None = None, top_k: int | None = 1, _legacy: bool = True) -> Any:
        function_to_apply = function_to_apply or self._default_function()
        logits = model_outputs["logits"][0].double()  # (num_labels,); float64 as Transformers' numpy
        if function_to_apply == "sigmoid":
            scores = torch.sigmoid(logits)
        elif function_to_apply == "softmax":
            scores = logits.softmax(-1)
        else:
            scores = logits
        id2label = self.model.config.id2label
        if top_k == 1 and _legacy:
            return {"label": id2label[int(scores.argmax())], "score": scores.max().item()}
        ranked = [{"label": id2label[i], "score": score} for i, score in enumerate(scores.tolist())]
        if not _legacy:
            ranked.sort(key=lambda x: x["score"], reverse=True)
            if top_k is not None:
                ranked = ranked[:top_k]
        return ranked
