"""zero-shot-classification: rank labels chosen at call time with an NLI sequence classifier.

Each (sequence, candidate label) pair becomes a premise/hypothesis pair — the label put into
``hypothesis_template`` — and the model's *entailment* logit scores that label. Output format,
defaults and arguments follow Transformers' ``ZeroShotClassificationPipeline``.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

import torch

from .base import Pipeline, _describe
from .text_tasks import _encode

logger = logging.getLogger(__name__)

DEFAULT_HYPOTHESIS_TEMPLATE = "This example is {}."


def parse_candidate_labels(candidate_labels: Any) -> list[str]:
    """A list of labels from a list/tuple of strings or one comma-separated string."""
    if isinstance(candidate_labels, str):
        candidate_labels = [label.strip() for label in candidate_labels.split(",") if label.strip()]
    if not isinstance(candidate_labels, (list, tuple)):
        raise TypeError(f"candidate_labels must be a list of strings or a comma-separated string, got {_describe(candidate_labels)}. Pass e.g. candidate_labels=['sports', 'politics'].")
    bad = [label for label in candidate_labels if not isinstance(label, str)]
    if bad:
        raise TypeError(f"candidate_labels must all be strings, got {_describe(bad[0])}. Pass e.g. candidate_labels=['sports', 'politics'].")
    if not candidate_labels:
        raise ValueError("candidate_labels is empty; pass at least one label, e.g. candidate_labels=['sports', 'politics'] or 'sports, politics'.")
    return list(candidate_labels)


def check_hypothesis_template(hypothesis_template: Any) -> str:
    """The template, if it is a string with one place (``{}``) where the label goes."""
    if not isinstance(hypothesis_template, str):
        raise TypeError(f"hypothesis_template must be a string with {{}} where the label goes, got {_describe(hypothesis_template)}.")
    try:
        filled = hypothesis_template.format("LABEL")
    except (IndexError, KeyError, ValueError) as exc:
        raise ValueError(f"hypothesis_template {hypothesis_template!r} cannot be formatted with a label ({type(exc).__name__}: {exc}); write it with one {{}} where the label goes, e.g. 'This example is {{}}.'.") from None
    if filled == hypothesis_template:
        raise ValueError(f"hypothesis_template {hypothesis_template!r} has no {{}} for the label; write it with one, e.g. 'This example is {{}}.'.")
    return hypothesis_template


class ZeroShotClassificationPipeline(Pipeline):
    """Scores ``candidate_labels`` for each sequence with an NLI model: ``{sequence, labels, scores}``.

    Call as ``pipe(sequences, candidate_labels, hypothesis_template=..., multi_label=...)``:

    - ``candidate_labels``: a list of labels or a comma-separated string (required; may also be
      the second positional argument or a default given to ``pipeline()``);
    - ``hypothesis_template`` (default ``"This example is {}."``): the hypothesis each label is
      put into;
    - ``multi_label`` (default False): False softmaxes the entailment logits over the labels, so
      the scores of a sequence sum to 1; True scores each label on its own, softmax of entailment
      vs. contradiction (also used when there is a single label).

    One string gives a dict, a list gives a list of dicts; labels are sorted by descending score.
    Every (sequence, label) pair is one row of the forward passes; rows are length-sorted and
    batched ``batch_size`` at a time. The model's ``config.label2id`` must have a label starting
    with "entail" (case-insensitive).
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.entailment_id = self._find_entailment_id()
        # The contradiction logit compared against entailment when labels are scored on their own.
        self.contradiction_id = -1 if self.entailment_id == 0 else 0

    def _find_entailment_id(self) -> int:
        label2id = getattr(self.model.config, "label2id", None) or {}
        for label, index in label2id.items():
            if str(label).lower().startswith("entail"):
                return int(index)
        raise ValueError(
            f"zero-shot-classification needs an NLI model whose config.label2id has an 'entailment' label; "
            f"this model's label2id is {dict(label2id)!r}. Use an NLI checkpoint, or set config.label2id "
            f"(and id2label) so that the entailment class is named 'entailment'."
        )

    def _sanitize_parameters(self, candidate_labels: Any = None, hypothesis_template: Any = None, multi_label: Any = None, **kwargs: Any) -> tuple[dict, dict, dict]:
        if kwargs:
            raise TypeError(f"{self.task or 'zero-shot-classification'} got unexpected keyword arguments {sorted(kwargs)}; it accepts candidate_labels, hypothesis_template and multi_label.")
        pre: dict[str, Any] = {}
        if candidate_labels is not None:
            pre["candidate_labels"] = parse_candidate_labels(candidate_labels)
        if hypothesis_template is not None:
            pre["hypothesis_template"] = check_hypothesis_template(hypothesis_template)
        post = {} if multi_label is None else {"multi_label": bool(multi_label)}
        return pre, {}, post

    def __call__(self, sequences: Any, *args: Any, **kwargs: Any) -> Any:
        """Classify ``sequences`` (a string, a list or a generator of strings); see the class doc."""
        if len(args) == 1 and "candidate_labels" not in kwargs:
            kwargs["candidate_labels"] = args[0]
        elif args:
            raise TypeError(f"zero-shot-classification takes (sequences, candidate_labels) positionally, got {len(args)} extra positional arguments; pass hypothesis_template= and multi_label= by keyword.")
        return super().__call__(sequences, **kwargs)

    def _check_input(self, item: Any) -> None:
        if not isinstance(item, str):
            raise TypeError(f"zero-shot-classification expects sequences to be a string or a list of strings, got {_describe(item)}. Pass text, e.g. pipe('I love this film', candidate_labels=['cinema', 'sport']).")

    def _run_many(self, inputs: list[Any], batch_size: int, pre: dict, fwd: dict, post: dict) -> Iterator[Any]:
        """Fan each sequence out into one row per label, run the rows batched, gather them back."""
        labels = pre.get("candidate_labels")
        if labels is None:
            raise ValueError("zero-shot-classification needs candidate_labels; pass them, e.g. pipe(text, candidate_labels=['sports', 'politics']).")
        template = pre.get("hypothesis_template", DEFAULT_HYPOTHESIS_TEMPLATE)
        hypotheses = [template.format(label) for label in labels]
        pairs = [(sequence, hypothesis) for sequence in inputs for hypothesis in hypotheses]
        rows = list(super()._run_many(pairs, batch_size, {}, fwd, {}))  # one (num_nli_labels,) logits row each
        n = len(labels)
        for s, sequence in enumerate(inputs):
            logits = torch.stack(rows[s * n : (s + 1) * n])  # (n, num_nli_labels)
            yield self._rank(sequence, labels, logits, **post)

    def preprocess(self, inputs: tuple[str, str], **_: Any) -> dict[str, list[int]]:
        premise, hypothesis = inputs
        # Only the premise is truncated, so that the label is never cut off (as Transformers does).
        encoded = _encode(self.tokenizer, premise, hypothesis, truncation="only_first")
        return encoded

    def _forward(self, model_inputs: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        return {"logits": self.model(**model_inputs, return_dict=True).logits}  # (B, num_nli_labels)

    def postprocess(self, model_outputs: dict[str, torch.Tensor], **_: Any) -> torch.Tensor:
        return model_outputs["logits"][0].float()  # (num_nli_labels,): one pair's row

    def _rank(self, sequence: str, labels: list[str], logits: torch.Tensor, multi_label: bool = False) -> dict[str, Any]:
        if multi_label or len(labels) == 1:
            pair = logits[:, [self.contradiction_id, self.entailment_id]]  # (n, 2)
            scores = pair.softmax(-1)[:, 1]  # (n,)
        else:
            scores = logits[:, self.entailment_id].softmax(-1)  # (n,)
        values = scores.tolist()
        # Stable ascending sort, reversed: ties come out as numpy's argsort()[::-1] orders them.
        order = sorted(range(len(values)), key=values.__getitem__)[::-1]
        return {"sequence": sequence, "labels": [labels[i] for i in order], "scores": [values[i] for i in order]}
