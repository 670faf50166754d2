"""token-classification (alias ``ner``): one label per token, or per word/entity when aggregated.

Follows Transformers' ``TokenClassificationPipeline`` step for step so that outputs are identical:
softmax over the labels of each token, special tokens dropped, then one of five aggregation
strategies, then ``ignore_labels`` filtered out. With ``stride`` a long input is cut into
overlapping windows (a fast tokenizer's overflowing tokens) and overlapping entities are merged,
keeping the longer one (the higher score on a tie).
"""

from __future__ import annotations

import enum
import logging
import warnings
from typing import Any

import numpy as np
import torch

from .base import Pipeline, _describe

logger = logging.getLogger(__name__)


class AggregationStrategy(str, enum.Enum):
    """How tokens are fused into words and entities (Transformers' names and values)."""

    NONE = "none"
    SIMPLE = "simple"
    FIRST = "first"
    AVERAGE = "average"
    MAX = "max"


# Strategies that need word boundaries, which only fast tokenizers' offsets give.
_WORD_STRATEGIES = (AggregationStrategy.FIRST, AggregationStrategy.AVERAGE, AggregationStrategy.MAX)


def _check_strategy(value: Any) -> AggregationStrategy:
    if isinstance(value, AggregationStrategy):
        return value
    if isinstance(value, str) and value.lower() in {s.value for s in AggregationStrategy}:
        return AggregationStrategy(value.lower())
    raise ValueError(f"aggregation_strategy must be one of {[s.value for s in AggregationStrategy]}, got {_describe(value)}. Pass e.g. aggregation_strategy='simple'.")


def _get_tag(entity_name: str) -> tuple[str, str]:
    """(``"B"`` or ``"I"``, tag) of a label; a label without a B-/I- prefix counts as inside."""
    if entity_name.startswith("B-"):
        return "B", entity_name[2:]
    if entity_name.startswith("I-"):
        return "I", entity_name[2:]
    return "I", entity_name


class TokenClassificationPipeline(Pipeline):
    """Labels of tokens: ``[{entity, score, index, word, start, end}, ...]`` per input.

    Call parameters (Transformers' defaults):
        aggregation_strategy: ``"none"`` (one dict per token, with ``index``), ``"simple"``
            (adjacent tokens with the same tag grouped, B-/I- aware, into ``entity_group``),
            ``"first"``/``"average"``/``"max"`` (subwords of a word first take the label of the
            first token / the mean scores / the highest-scoring token, then grouped).
        ignore_labels: labels to drop (default ``["O"]``).
        stride: with a fast tokenizer, split inputs longer than ``model_max_length`` into windows
            sharing ``stride`` tokens and merge their entities.
        offset_mapping: character offsets of the tokens, for tokenizers that cannot give them.
    """

    chunked = True
    token_outputs = ("logits",)

    def _sanitize_parameters(self, ignore_labels: list[str] | None = None, aggregation_strategy: str | AggregationStrategy | None = None, offset_mapping: list[tuple[int, int]] | None = None, stride: int | None = None, **kwargs: Any) -> tuple[dict, dict, dict]:
        if kwargs:
            raise TypeError(f"{self.task} got unexpected keyword arguments {sorted(kwargs)}; it accepts aggregation_strategy, ignore_labels, stride and offset_mapping.")
        pre: dict[str, Any] = {}
        post: dict[str, Any] = {}
        if offset_mapping is not None:
            pre["offset_mapping"] = offset_mapping
        if aggregation_strategy is not None:
            aggregation_strategy = _check_strategy(aggregation_strategy)
            if aggregation_strategy in _WORD_STRATEGIES and not self.tokenizer.is_fast:
                raise ValueError(f"aggregation_strategy={aggregation_strategy.value!r} needs word boundaries, which slow tokenizers cannot give; use aggregation_strategy='simple' or a fast tokenizer.")
            post["aggregation_strategy"] = aggregation_strategy
        if ignore_labels is not None:
            if isinstance(ignore_labels, str) or not isinstance(ignore_labels, (list, tuple, set)) or not all(isinstance(x, str) for x in ignore_labels):
                raise TypeError(f"ignore_labels must be a list of label strings such as ['O'], got {_describe(ignore_labels)}.")
            post["ignore_labels"] = list(ignore_labels)
        if stride is not None:
            if isinstance(stride, bool) or not isinstance(stride, int) or stride < 0:
                raise ValueError(f"stride must be a non-negative int, got {_describe(stride)}.")
            if stride >= self.tokenizer.model_max_length:
                raise ValueError(f"stride must be less than tokenizer.model_max_length ({self.tokenizer.model_max_length}, or lower if the tokenizer adds special tokens), got {stride}. Pass a smaller stride.")
            if aggregation_strategy == AggregationStrategy.NONE:
                raise ValueError(f"stride={stride} merges the windows of long inputs by entity, which aggregation_strategy='none' does not form; pick 'simple', 'first', 'average' or 'max'.")
            if not self.tokenizer.is_fast:
                raise ValueError(f"stride={stride} needs the overflowing windows of a fast tokenizer, but {type(self.tokenizer).__name__} is slow; load a fast tokenizer.")
            pre["stride"] = stride
        return pre, {}, post

    def preprocess(self, sentence: str, offset_mapping: list[tuple[int, int]] | None = None, stride: int | None = None) -> list[dict[str, Any]]:
        max_length = self.tokenizer.model_max_length
        window_params = {"return_overflowing_tokens": True, "stride": stride} if stride is not None else {}
        encoded = self.tokenizer(
            sentence,
            truncation=bool(max_length and max_length > 0),
            return_special_tokens_mask=True,
            return_offsets_mapping=self.tokenizer.is_fast,
            **window_params,
        )
        if stride is None:  # one window: make every field a list of rows like the windowed case
            encoded = {k: [v] for k, v in encoded.items()}
        items = []
        for i in range(len(encoded["input_ids"])):
            item: dict[str, Any] = {k: list(encoded[k][i]) for k in self.model_input_keys if k in encoded}
            item["token_ids"] = item["input_ids"]
            item["special_tokens_mask"] = list(encoded["special_tokens_mask"][i])
            if offset_mapping is not None:
                item["offset_mapping"] = [tuple(o) for o in offset_mapping]
            elif "offset_mapping" in encoded:
                item["offset_mapping"] = [tuple(o) for o in encoded["offset_mapping"][i]]
            else:
                item["offset_mapping"] = None
            item["sentence"] = sentence
            items.append(item)
        return items

    def _forward(self, model_inputs: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        return {"logits": self.model(**model_inputs, return_dict=True).logits}  # (B, T, num_labels)

    def postprocess(self, all_outputs: list[dict[str, Any]], aggregation_strategy: AggregationStrategy = AggregationStrategy.NONE, ignore_labels: list[str] | None = None) -> list[dict[str, Any]]:
        ignore_labels = ["O"] if ignore_labels is None else ignore_labels
        all_entities: list[dict[str, Any]] = []
        for window in all_outputs:
            logits = window["logits"][0].float().cpu().numpy()  # (T, num_labels)
            maxes = np.max(logits, axis=-1, keepdims=True)
            shifted_exp = np.exp(logits - maxes)
            scores = shifted_exp / shifted_exp.sum(axis=-1, keepdims=True)
            pre_entities = self.gather_pre_entities(window["sentence"], window["token_ids"], scores, window["offset_mapping"], window["special_tokens_mask"], aggregation_strategy)
            grouped = self.aggregate(pre_entities, aggregation_strategy)
            all_entities.extend(e for e in grouped if e.get("entity") not in ignore_labels and e.get("entity_group") not in ignore_labels)
        if len(all_outputs) > 1:
            all_entities = self.aggregate_overlapping_entities(all_entities)
        return [_plain(entity) for entity in all_entities]

    @staticmethod
    def aggregate_overlapping_entities(entities: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Entities of overlapping windows, deduplicated: of two overlapping, the longer wins (then the higher score)."""
        if not entities:
            return entities
        entities = sorted(entities, key=lambda x: x["start"])
        aggregated = []
        previous = entities[0]
        for entity in entities:
            if previous["start"] <= entity["start"] < previous["end"]:
                length, previous_length = entity["end"] - entity["start"], previous["end"] - previous["start"]
                if length > previous_length or (length == previous_length and entity["score"] > previous["score"]):
                    previous = entity
            else:
                aggregated.append(previous)
                previous = entity
        aggregated.append(previous)
        return aggregated

    def _is_subword_by_prefix(self) -> bool:
        backend = getattr(self.tokenizer, "_tokenizer", None)
        return bool(backend is not None and getattr(backend.model, "continuing_subword_prefix", None))

    def gather_pre_entities(self, sentence: str, input_ids: list[int], scores: np.ndarray, offset_mapping: list[tuple[int, int]] | None, special_tokens_mask: list[int], aggregation_strategy: AggregationStrategy) -> list[dict[str, Any]]:
        """One dict per non-special token: its text, label scores, character span and whether it continues a word."""
        pre_entities = []
        by_prefix = self._is_subword_by_prefix()
        for idx, token_scores in enumerate(scores):
            if special_tokens_mask[idx]:
                continue
            word = self.tokenizer.convert_ids_to_tokens(int(input_ids[idx]))
            if offset_mapping is not None:
                start_ind, end_ind = (int(x) for x in offset_mapping[idx])
                word_ref = sentence[start_ind:end_ind]
                if by_prefix:
                    # A continuing subword carries its prefix ("##"), so it is longer than its text.
                    is_subword = len(word) != len(word_ref)
                else:
                    if aggregation_strategy in _WORD_STRATEGIES:
                        warnings.warn("Tokenizer does not support real words, using fallback heuristic", UserWarning, stacklevel=2)
                    is_subword = start_ind > 0 and " " not in sentence[start_ind - 1 : start_ind + 1]
                if int(input_ids[idx]) == self.tokenizer.unk_token_id:
                    word = word_ref
                    is_subword = False
            else:
                start_ind = end_ind = None
                is_subword = False
            pre_entities.append({"word": word, "scores": token_scores, "start": start_ind, "end": end_ind, "index": idx, "is_subword": is_subword})
        return pre_entities

    def aggregate(self, pre_entities: list[dict[str, Any]], aggregation_strategy: AggregationStrategy) -> list[dict[str, Any]]:
        id2label = self.model.config.id2label
        if aggregation_strategy in (AggregationStrategy.NONE, AggregationStrategy.SIMPLE):
            entities = []
            for pre in pre_entities:
                entity_idx = int(pre["scores"].argmax())
                entities.append({"entity": id2label[entity_idx], "score": pre["scores"][entity_idx], "index": pre["index"], "word": pre["word"], "start": pre["start"], "end": pre["end"]})
        else:
            entities = self.aggregate_words(pre_entities, aggregation_strategy)
        if aggregation_strategy == AggregationStrategy.NONE:
            return entities
        return self.group_entities(entities)

    def aggregate_word(self, entities: list[dict[str, Any]], aggregation_strategy: AggregationStrategy) -> dict[str, Any]:
        """One word from its tokens: the label of the first token, of the most confident token, or of the mean scores."""
        id2label = self.model.config.id2label
        word = self.tokenizer.convert_tokens_to_string([e["word"] for e in entities])
        if aggregation_strategy == AggregationStrategy.FIRST:
            scores = entities[0]["scores"]
        elif aggregation_strategy == AggregationStrategy.MAX:
            scores = max(entities, key=lambda e: e["scores"].max())["scores"]
        else:  # AVERAGE
            scores = np.nanmean(np.stack([e["scores"] for e in entities]), axis=0)
        idx = int(scores.argmax())
        return {"entity": id2label[idx], "score": scores[idx], "word": word, "start": entities[0]["start"], "end": entities[-1]["end"]}

    def aggregate_words(self, entities: list[dict[str, Any]], aggregation_strategy: AggregationStrategy) -> list[dict[str, Any]]:
        """Tokens of one word forced to agree: each word becomes one entity."""
        words = []
        group: list[dict[str, Any]] = []
        for entity in entities:
            if group and not entity["is_subword"]:
                words.append(self.aggregate_word(group, aggregation_strategy))
                group = []
            group.append(entity)
        if group:
            words.append(self.aggregate_word(group, aggregation_strategy))
        return words

    def group_sub_entities(self, entities: list[dict[str, Any]]) -> dict[str, Any]:
        """Adjacent entities of one tag as a single ``entity_group`` with their mean score."""
        return {
            "entity_group": entities[0]["entity"].split("-", 1)[-1],
            "score": np.mean(np.nanmean([e["score"] for e in entities])),
            "word": self.tokenizer.convert_tokens_to_string([e["word"] for e in entities]),
            "start": entities[0]["start"],
            "end": entities[-1]["end"],
        }

    def group_entities(self, entities: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Group adjacent entities of the same tag; a ``B-`` label starts a new group."""
        groups = []
        current: list[dict[str, Any]] = []
        for entity in entities:
            if current:
                bi, tag = _get_tag(entity["entity"])
                _, last_tag = _get_tag(current[-1]["entity"])
                if not (tag == last_tag and bi != "B"):
                    groups.append(self.group_sub_entities(current))
                    current = []
            current.append(entity)
        if current:
            groups.append(self.group_sub_entities(current))
        return groups


def _plain(entity: dict[str, Any]) -> dict[str, Any]:
    """Numpy scalars as Python numbers, for JSON and equality."""
    return {k: (v.item() if isinstance(v, np.generic) else v) for k, v in entity.items()}


NerPipeline = TokenClassificationPipeline
