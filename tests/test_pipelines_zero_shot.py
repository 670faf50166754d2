"""zero-shot-classification: parity with Transformers' pipeline on a tiny random NLI BERT that
Transformers saves (labels identical, scores within 1e-4), multi_label both ways, batching that
changes nothing, typed errors naming the argument."""

from __future__ import annotations

import math

import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

from polyformers.pipelines import PIPELINE_REGISTRY, pipeline  # noqa: E402

if "zero-shot-classification" not in PIPELINE_REGISTRY.get_supported_tasks():  # until registry.py lists it
    PIPELINE_REGISTRY.register("zero-shot-classification", "polyformers.pipelines.zero_shot:ZeroShotClassificationPipeline", ("sequence-classification",))

WORDS = (
    "the a an man woman is was eating food pasta bread cat dog sat on mat paris capital of france "
    "good bad movie great terrible i love hate it this that very not and to in my we you he she "
    "they day night . , ! ? ' example sports politics cooking travel play ##s ##ing ##ed ##er ##ly"
).split()
VOCAB = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *WORDS, *"abcdefghijklmnopqrstuvwxyz", *(f"##{c}" for c in "abcdefghijklmnopqrstuvwxyz")]
SEQUENCES = [
    "the cat sat on the mat.",
    "i love this movie!",
    "paris is the capital of france, we love it and we love the food.",
    "bad",
]
LABELS = ["sports", "politics", "cooking", "travel", "movie"]
NLI_LABELS = {0: "contradiction", 1: "neutral", 2: "entailment"}


def _save(directory, id2label):
    config = transformers.BertConfig(
        vocab_size=len(VOCAB), hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=37,
        max_position_embeddings=64, num_labels=len(id2label), id2label=id2label, label2id={v: k for k, v in id2label.items()},
    )
    torch.manual_seed(0)
    transformers.BertForSequenceClassification(config).eval().save_pretrained(directory)
    (directory / "vocab.txt").write_text("\n".join(VOCAB) + "\n", encoding="utf-8")
    return str(directory)


@pytest.fixture(scope="module")
def nli(tmp_path_factory):
    return _save(tmp_path_factory.mktemp("zero_shot") / "nli", NLI_LABELS)


@pytest.fixture(scope="module")
def pipes(nli):
    return pipeline("zero-shot-classification", model=nli), transformers.pipeline("zero-shot-classification", model=nli)


def assert_same(ours, theirs, tol=1e-4):
    """Same labels in the same order, same sequence, scores within ``tol``."""
    if isinstance(theirs, list):
        assert isinstance(ours, list) and len(ours) == len(theirs)
        for a, b in zip(ours, theirs):
            assert_same(a, b, tol)
        return
    assert set(ours) == {"sequence", "labels", "scores"}
    assert ours["sequence"] == theirs["sequence"]
    assert ours["labels"] == theirs["labels"], (ours, theirs)
    assert all(isinstance(s, float) for s in ours["scores"])
    assert all(math.isclose(a, b, abs_tol=tol) for a, b in zip(ours["scores"], theirs["scores"], strict=True)), (ours["scores"], theirs["scores"])


@pytest.mark.parametrize("multi_label", [False, True])
def test_one_sequence_matches_transformers(pipes, multi_label):
    ours, theirs = pipes
    for sequence in SEQUENCES:
        expected = theirs(sequence, candidate_labels=LABELS, multi_label=multi_label)
        got = ours(sequence, candidate_labels=LABELS, multi_label=multi_label)
        assert isinstance(got, dict)
        assert_same(got, expected)
    if not multi_label:
        assert math.isclose(sum(got["scores"]), 1.0, abs_tol=1e-5)


@pytest.mark.parametrize("batch_size", [1, 3, 32])
def test_list_batched_matches_transformers(pipes, batch_size):
    ours, theirs = pipes
    expected = theirs(SEQUENCES, candidate_labels=LABELS)
    got = ours(SEQUENCES, candidate_labels=LABELS, batch_size=batch_size)
    assert isinstance(got, list) and [r["sequence"] for r in got] == SEQUENCES
    assert_same(got, expected)


def test_template_positional_labels_string_and_single_label(pipes):
    ours, theirs = pipes
    template = "this is about {} ."
    assert_same(ours(SEQUENCES[2], "sports, politics ,travel", hypothesis_template=template), theirs(SEQUENCES[2], "sports, politics ,travel", hypothesis_template=template))
    # One label: scored on its own (entailment vs contradiction), whatever multi_label says.
    single = ours(SEQUENCES[0], candidate_labels=["cooking"])
    assert_same(single, theirs(SEQUENCES[0], candidate_labels=["cooking"]))
    assert 0.0 < single["scores"][0] < 1.0


def test_multi_label_scores_each_label_alone(pipes):
    ours, _ = pipes
    alone = ours(SEQUENCES[1], candidate_labels=LABELS, multi_label=True)
    for label, score in zip(alone["labels"], alone["scores"]):
        assert math.isclose(ours(SEQUENCES[1], candidate_labels=[label])["scores"][0], score, abs_tol=1e-6)


def test_defaults_given_to_pipeline_and_generator(nli, pipes):
    _, theirs = pipes
    pipe = pipeline("zero-shot-classification", model=nli, candidate_labels=LABELS, multi_label=True, batch_size=4)
    got = list(pipe(s for s in SEQUENCES))
    assert_same(got, theirs(SEQUENCES, candidate_labels=LABELS, multi_label=True))


def test_entailment_id_from_label2id(tmp_path):
    # Entailment first: the contradiction logit is then the last one, as in Transformers.
    path = _save(tmp_path / "nli_first", {0: "ENTAILMENT", 1: "neutral", 2: "contradiction"})
    ours, theirs = pipeline("zero-shot-classification", model=path), transformers.pipeline("zero-shot-classification", model=path)
    assert ours.entailment_id == 0
    for multi_label in (False, True):
        assert_same(ours(SEQUENCES, candidate_labels=LABELS, multi_label=multi_label), theirs(SEQUENCES, candidate_labels=LABELS, multi_label=multi_label))


def test_model_without_entailment_label_is_refused(tmp_path):
    path = _save(tmp_path / "not_nli", {0: "NEGATIVE", 1: "POSITIVE"})
    with pytest.raises(ValueError, match=r"label2id.*entailment"):
        pipeline("zero-shot-classification", model=path)


@pytest.mark.parametrize(
    ("call", "error", "message"),
    [
        (lambda p: p("the cat", candidate_labels=[]), ValueError, "candidate_labels is empty"),
        (lambda p: p("the cat", candidate_labels=" , "), ValueError, "candidate_labels is empty"),
        (lambda p: p("the cat"), ValueError, "needs candidate_labels"),
        (lambda p: p("the cat", candidate_labels=["a", 3]), TypeError, "candidate_labels must all be strings"),
        (lambda p: p("the cat", candidate_labels=7), TypeError, "candidate_labels must be a list"),
        (lambda p: p("the cat", candidate_labels=["a"], hypothesis_template="no slot"), ValueError, "hypothesis_template .* has no {}"),
        (lambda p: p("the cat", candidate_labels=["a"], hypothesis_template="{label}"), ValueError, "hypothesis_template .* cannot be formatted"),
        (lambda p: p("the cat", candidate_labels=["a"], hypothesis_template=None or 3), TypeError, "hypothesis_template must be a string"),
        (lambda p: p(None, candidate_labels=["a"]), TypeError, "inputs=None"),
        (lambda p: p([], candidate_labels=["a"]), ValueError, "empty list"),
        (lambda p: p(["the cat", 5], candidate_labels=["a"]), TypeError, "sequences to be a string"),
        (lambda p: p(12, candidate_labels=["a"]), TypeError, "sequences to be a string"),
        (lambda p: p("the cat", candidate_labels=["a"], top_k=2), TypeError, "unexpected keyword arguments"),
    ],
)
def test_errors_name_the_argument(pipes, call, error, message):
    with pytest.raises(error, match=message):
        call(pipes[0])
