"""question-answering: the span of a context that answers a question, ``{score, start, end, answer}``.

Follows Transformers 4.x's ``QuestionAnsweringPipeline`` (5.x removed it) with a fast tokenizer:
question and context are tokenized as a pair, the context cut into windows of ``max_seq_len``
tokens overlapping by ``doc_stride``; in each window start and end logits outside the context
(and padding) are masked, softmaxed, and every span of at most ``max_answer_len`` tokens is scored
by ``p(start) * p(end)``; the best spans of all windows are sorted and the first ``top_k`` kept.
Answers are widened to whole words (``align_to_words``) and given as character offsets.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
import torch

from .base import Pipeline, _describe

logger = logging.getLogger(__name__)


def decode_spans(start: np.ndarray, end: np.ndarray, topk: int, max_answer_len: int, undesired_tokens: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The ``topk`` best (start, end, score) spans of one window; ``undesired_tokens`` is 1 where
    an answer may lie (the name is Transformers')."""
    if start.ndim == 1:
        start = start[None]
    if end.ndim == 1:
        end = end[None]
    outer = np.matmul(np.expand_dims(start, -1), np.expand_dims(end, 1))  # (1, T, T): p(start) * p(end)
    # Keep end >= start and end - start < max_answer_len.
    candidates = np.tril(np.triu(outer), max_answer_len - 1)
    scores_flat = candidates.flatten()
    if topk == 1:
        idx_sort = [np.argmax(scores_flat)]
    elif len(scores_flat) < topk:
        idx_sort = np.argsort(-scores_flat)
    else:
        idx = np.argpartition(-scores_flat, topk)[0:topk]
        idx_sort = idx[np.argsort(-scores_flat[idx])]
    starts, ends = np.unravel_index(idx_sort, candidates.shape)[1:]
    allowed = undesired_tokens.nonzero()
    desired_spans = np.isin(starts, allowed) & np.isin(ends, allowed)
    starts, ends = starts[desired_spans], ends[desired_spans]
    return starts, ends, candidates[0, starts, ends]


def select_starts_ends(start: np.ndarray, end: np.ndarray, p_mask: list[int], attention_mask: np.ndarray | None, min_null_score: float = 1000000, top_k: int = 1, handle_impossible_answer: bool = False, max_answer_len: int = 15) -> tuple[np.ndarray, np.ndarray, np.ndarray, float]:
    """Probabilities of one window's logits, masked to the context, and its best spans; also the
    smallest null-answer score seen so far (the ``[CLS]`` start times the ``[CLS]`` end)."""
    undesired_tokens = np.abs(np.array(p_mask) - 1)
    if attention_mask is not None:
        undesired_tokens = undesired_tokens & attention_mask
    undesired_tokens_mask = undesired_tokens == 0.0
    start = np.where(undesired_tokens_mask, -10000.0, start)
    end = np.where(undesired_tokens_mask, -10000.0, end)
    start = np.exp(start - start.max(axis=-1, keepdims=True))
    start = start / start.sum()
    end = np.exp(end - end.max(axis=-1, keepdims=True))
    end = end / end.sum()
    if handle_impossible_answer:
        min_null_score = min(min_null_score, (start[0, 0] * end[0, 0]).item())
    start[0, 0] = end[0, 0] = 0.0  # the null answer is scored apart
    starts, ends, scores = decode_spans(start, end, top_k, max_answer_len, undesired_tokens)
    return starts, ends, scores, min_null_score


class QuestionAnsweringPipeline(Pipeline):
    """Extractive question answering with a ``...ForQuestionAnswering`` model.

    Inputs: ``pipe(question=..., context=...)`` (strings, or lists: one question per context, or
    several questions on one context), ``pipe({"question": q, "context": c})``, a list of such
    dicts, or ``pipe(question, context)``. One example gives a dict, several give a list.

    Call parameters (Transformers' defaults): ``top_k`` (1; a list when more than one answer is
    found), ``doc_stride`` (``min(max_seq_len // 2, 128)``), ``max_answer_len`` (15),
    ``max_seq_len`` (``min(tokenizer.model_max_length, 384)``), ``max_question_len`` (64; accepted
    and, as in Transformers with a fast tokenizer, not applied), ``handle_impossible_answer``
    (False: with True the empty answer ``{"score", "start": 0, "end": 0, "answer": ""}`` competes),
    ``align_to_words`` (True), ``padding`` (accepted; batches are always padded dynamically).
    """

    chunked = True
    token_outputs = ("start_logits", "end_logits")

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if not getattr(self.tokenizer, "is_fast", False):
            raise ValueError(f"question-answering needs a fast tokenizer (character offsets and overflowing windows), got {type(self.tokenizer).__name__}. Load the checkpoint's fast tokenizer (a tokenizer.json or vocabulary it can be built from).")

    def _sanitize_parameters(self, padding: Any = None, topk: int | None = None, top_k: int | None = None, doc_stride: int | None = None, max_answer_len: int | None = None, max_seq_len: int | None = None, max_question_len: int | None = None, handle_impossible_answer: bool | None = None, align_to_words: bool | None = None, **kwargs: Any) -> tuple[dict, dict, dict]:
        if kwargs:
            raise TypeError(f"{self.task} got unexpected keyword arguments {sorted(kwargs)}; it accepts question, context, top_k, doc_stride, max_answer_len, max_seq_len, max_question_len, handle_impossible_answer, align_to_words and padding.")
        pre: dict[str, Any] = {}
        for name, value in (("doc_stride", doc_stride), ("max_seq_len", max_seq_len), ("max_question_len", max_question_len)):
            if value is not None:
                _check_positive_int(name, value, minimum=0 if name == "doc_stride" else 1)
                pre[name] = value
        post: dict[str, Any] = {}
        if topk is not None and top_k is None:
            logger.warning("question-answering: topk is deprecated, use top_k instead.")
            top_k = topk
        if top_k is not None:
            _check_positive_int("top_k", top_k)
            post["top_k"] = top_k
        if max_answer_len is not None:
            _check_positive_int("max_answer_len", max_answer_len)
            post["max_answer_len"] = max_answer_len
        if handle_impossible_answer is not None:
            post["handle_impossible_answer"] = bool(handle_impossible_answer)
        if align_to_words is not None:
            post["align_to_words"] = bool(align_to_words)
        return pre, {}, post

    # --- inputs ----------------------------------------------------------------------------------

    def __call__(self, *args: Any, question: str | list[str] | None = None, context: str | list[str] | None = None, **kwargs: Any) -> dict[str, Any] | list[Any]:
        """Answer each question from its context; see the class docstring for the input forms."""
        examples = self._examples(args, question, context)
        if isinstance(examples, list) and len(examples) == 1:
            return super().__call__(examples[0], **kwargs)
        return super().__call__(examples, **kwargs)

    def _examples(self, args: tuple[Any, ...], question: Any, context: Any) -> Any:
        """Inputs in any accepted form as a list of ``{"question", "context"}`` dicts (or a stream)."""
        if args:
            if question is not None or context is not None:
                raise TypeError("question-answering got inputs both as positional arguments and as question=/context=; pass one form only, e.g. pipe(question='...', context='...').")
            if len(args) == 2 and all(isinstance(a, str) for a in args):
                return [{"question": args[0], "context": args[1]}]
            inputs = args[0] if len(args) == 1 else list(args)
        elif question is not None or context is not None:
            if question is None or context is None:
                missing = "context" if context is None else "question"
                raise ValueError(f"question-answering got {missing}=None; pass both question= and context= (strings, or lists of strings).")
            if isinstance(question, list) and isinstance(context, str):
                inputs = [{"question": q, "context": context} for q in question]
            elif isinstance(question, list) and isinstance(context, list):
                if len(question) != len(context):
                    raise ValueError(f"question-answering got {len(question)} questions and {len(context)} contexts; pass one context per question, or a single context string for all.")
                inputs = [{"question": q, "context": c} for q, c in zip(question, context)]
            elif isinstance(question, str) and isinstance(context, str):
                inputs = [{"question": question, "context": context}]
            else:
                raise TypeError(f"question-answering: question must be a string or a list of strings and context a string or a list of strings, got question={_describe(question)} and context={_describe(context)}.")
        else:
            raise TypeError("question-answering got no inputs; call pipe(question='...', context='...') or pipe({'question': '...', 'context': '...'}).")
        if isinstance(inputs, dict):
            return [inputs]
        return inputs

    def _check_input(self, item: Any) -> None:
        if not isinstance(item, dict):
            raise TypeError(f"question-answering expects each input to be a dict {{'question': str, 'context': str}}, got {_describe(item)}. Call pipe(question='...', context='...').")
        for key in ("question", "context"):
            if key not in item:
                raise ValueError(f"question-answering input {_describe(item)} has no {key!r} key; pass dicts with 'question' and 'context'.")
            if not isinstance(item[key], str):
                raise TypeError(f"question-answering: {key} must be a string, got {_describe(item[key])}.")
            if not item[key]:
                raise ValueError(f"question-answering: {key} must not be empty; pass a non-empty string.")

    # --- the three steps -------------------------------------------------------------------------

    def preprocess(self, example: dict[str, str], doc_stride: int | None = None, max_question_len: int = 64, max_seq_len: int | None = None) -> list[dict[str, Any]]:
        if max_seq_len is None:
            max_seq_len = min(self.tokenizer.model_max_length, 384)
        if doc_stride is None:
            doc_stride = min(max_seq_len // 2, 128)
        if doc_stride > max_seq_len:
            raise ValueError(f"doc_stride ({doc_stride}) is larger than max_seq_len ({max_seq_len}); pass a doc_stride below max_seq_len.")
        question_first = self.tokenizer.padding_side == "right"
        question, context = example["question"], example["context"]
        encoded = self.tokenizer(
            text=question if question_first else context,
            text_pair=context if question_first else question,
            truncation="only_second" if question_first else "only_first",
            max_length=max_seq_len,
            stride=doc_stride,
            return_token_type_ids=True,
            return_overflowing_tokens=True,
            return_offsets_mapping=True,
            return_special_tokens_mask=True,
        )
        context_index = 1 if question_first else 0
        items = []
        for span in range(len(encoded["input_ids"])):
            input_ids = list(encoded["input_ids"][span])
            sequence_ids = encoded.sequence_ids(span)
            # 1 where no answer may lie: the question and special tokens; [CLS] stays open (null answer).
            p_mask = [int(s != 1) if question_first else 0 for s in sequence_ids]
            for i, token in enumerate(input_ids):
                if token == self.tokenizer.cls_token_id:
                    p_mask[i] = 0
            item: dict[str, Any] = {k: list(encoded[k][span]) for k in self.model_input_keys if k in encoded}
            item.update(
                p_mask=p_mask,
                word_ids=encoded.word_ids(span),
                sequence_ids=sequence_ids,
                offsets=[tuple(o) for o in encoded["offset_mapping"][span]],
                context=context,
                context_index=context_index,
            )
            items.append(item)
        return items

    def _forward(self, model_inputs: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        output = self.model(**model_inputs, return_dict=True)
        return {"start_logits": output.start_logits, "end_logits": output.end_logits, "attention_mask": model_inputs["attention_mask"]}  # (B, T) each

    def _unbatch(self, key: str, value: Any, row: int, length: int) -> Any:
        if key == "attention_mask":
            return value[row : row + 1, :length]
        return super()._unbatch(key, value, row, length)

    def postprocess(self, windows: list[dict[str, Any]], top_k: int = 1, handle_impossible_answer: bool = False, max_answer_len: int = 15, align_to_words: bool = True) -> dict[str, Any] | list[dict[str, Any]]:
        min_null_score = 1000000.0  # large and positive
        answers = []
        for window in windows:
            start_logits = window["start_logits"].float().cpu().numpy()  # (1, T)
            end_logits = window["end_logits"].float().cpu().numpy()  # (1, T)
            attention_mask = window["attention_mask"].cpu().numpy()  # (1, T)
            starts, ends, scores, min_null_score = select_starts_ends(start_logits, end_logits, window["p_mask"], attention_mask, min_null_score, top_k, handle_impossible_answer, max_answer_len)
            for s, e, score in zip(starts, ends, scores):
                start_index, end_index = _char_span(window, int(s), int(e), align_to_words)
                answers.append({"score": score.item(), "start": start_index, "end": end_index, "answer": window["context"][start_index:end_index]})
        if handle_impossible_answer:
            answers.append({"score": min_null_score, "start": 0, "end": 0, "answer": ""})
        answers = sorted(answers, key=lambda x: x["score"], reverse=True)[:top_k]
        return answers[0] if len(answers) == 1 else answers


def _char_span(window: dict[str, Any], s: int, e: int, align_to_words: bool) -> tuple[int, int]:
    """Character span of tokens ``s..e`` in the context, widened to whole words when asked (the
    words as the tokenizer's pre-tokenizer sees them, within this window)."""
    offsets = window["offsets"]
    if align_to_words:
        start_chars = _word_chars(window, window["word_ids"][s])
        end_chars = _word_chars(window, window["word_ids"][e])
        if start_chars is not None and end_chars is not None:
            return start_chars[0], end_chars[1]
    return offsets[s][0], offsets[e][1]


def _word_chars(window: dict[str, Any], word: int | None) -> tuple[int, int] | None:
    """(first char, end char) of ``word`` of the context within this window; None when it has none."""
    if word is None:
        return None
    tokens = [i for i, (w, seq) in enumerate(zip(window["word_ids"], window["sequence_ids"])) if w == word and seq == window["context_index"]]
    if not tokens:
        return None
    return window["offsets"][tokens[0]][0], window["offsets"][tokens[-1]][1]


def _check_positive_int(name: str, value: Any, minimum: int = 1) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"{name} must be an int >= {minimum}, got {_describe(value)}.")
