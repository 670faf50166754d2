"""token-classification / ner: parity with Transformers 5.x's pipeline on tiny random BERT
checkpoints that Transformers saves (every aggregation strategy, ignore_labels, long inputs with
stride), and typed errors for bad input."""

from __future__ import annotations

import functools
import json
import math

import pytest

torch = pytest.importorskip("torch")
np = pytest.importorskip("numpy")
transformers = pytest.importorskip("transformers")
if not transformers.__version__.startswith("5."):
    pytest.skip(f"the token-classification oracle is Transformers 5.x, found {transformers.__version__}", allow_module_level=True)

from polyformers.pipelines import pipeline  # noqa: E402

WORDS = "the a man woman is was in paris france london john mary lives works at google and of new york city . , !".split()
VOCAB = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *WORDS, *"abcdefghijklmnopqrstuvwxyz", *(f"##{c}" for c in "abcdefghijklmnopqrstuvwxyz")]
LABELS = ["O", "B-PER", "I-PER", "B-LOC", "I-LOC", "B-ORG", "I-ORG", "MISC"]
SENTENCES = [
    "john lives in paris, france.",
    "mary works at google in new york city!",
    "the woman was in londonderry and zanzibar",
    "hello ☃ world, said bob",
    "a",
    "johnny and marybeth work at googleplex in new yorkshire and paris and london and the city of france",
]
STRATEGIES = ["none", "simple", "first", "average", "max"]


def _save(directory, max_length, seed):
    config = transformers.BertConfig(
        vocab_size=len(VOCAB), hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=37, max_position_embeddings=64,
        num_labels=len(LABELS), id2label=dict(enumerate(LABELS)), label2id={label: i for i, label in enumerate(LABELS)},
    )
    torch.manual_seed(seed)
    model = transformers.BertForTokenClassification(config).eval()
    with torch.no_grad():  # sharper, varied labels so that grouping has work to do
        model.classifier.weight.mul_(40.0)
    model.save_pretrained(directory)
    (directory / "vocab.txt").write_text("\n".join(VOCAB) + "\n", encoding="utf-8")
    (directory / "tokenizer_config.json").write_text(json.dumps({"model_max_length": max_length, "do_lower_case": True}), encoding="utf-8")
    return str(directory)


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory):
    root = tmp_path_factory.mktemp("token_classification")
    return {"ner": _save(root / "ner", 64, 0), "short": _save(root / "short", 14, 1)}


@functools.lru_cache(maxsize=None)
def pair(task, path):
    return pipeline(task, model=path), transformers.pipeline(task, model=path)


def assert_close(ours, theirs, tol=1e-4, path="out", diffs=None):
    """Nested results equal: floats (numpy ones too) within ``tol``, everything else identical."""
    if isinstance(theirs, (float, np.floating)):
        assert isinstance(ours, float), f"{path}: {ours!r} is not a float"
        assert math.isclose(ours, float(theirs), abs_tol=tol), f"{path}: {ours} != {theirs}"
        if diffs is not None:
            diffs.append(abs(ours - float(theirs)))
    elif isinstance(theirs, dict):
        assert isinstance(ours, dict) and set(ours) == set(theirs), f"{path}: keys {sorted(ours)} != {sorted(theirs)}"
        for key in theirs:
            assert_close(ours[key], theirs[key], tol, f"{path}.{key}", diffs)
    elif isinstance(theirs, (list, tuple)):
        assert isinstance(ours, list) and len(ours) == len(theirs), f"{path}: {ours} != {theirs}"
        for i, (a, b) in enumerate(zip(ours, theirs)):
            assert_close(a, b, tol, f"{path}[{i}]", diffs)
    else:
        if isinstance(theirs, np.integer):
            theirs = int(theirs)
        assert ours == theirs and type(ours) is type(theirs), f"{path}: {ours!r} != {theirs!r}"


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_aggregation_strategies_match_transformers(checkpoints, strategy):
    ours, theirs = pair("token-classification", checkpoints["ner"])
    expected = theirs(SENTENCES, aggregation_strategy=strategy)
    got = ours(SENTENCES, aggregation_strategy=strategy, batch_size=4)
    assert_close(got, expected)
    assert sum(len(x) for x in expected) > 0
    if strategy != "none":
        assert any(len(e["word"].split()) > 1 or "##" not in e["word"] for x in got for e in x)


def test_single_string_ignore_labels_and_ner_alias(checkpoints):
    ours, theirs = pair("ner", checkpoints["ner"])
    for kwargs in ({}, {"ignore_labels": []}, {"ignore_labels": ["O", "MISC"], "aggregation_strategy": "simple"}, {"ignore_labels": ["PER"], "aggregation_strategy": "first"}):
        assert_close(ours(SENTENCES[1], **kwargs), theirs(SENTENCES[1], **kwargs))
    everything = ours(SENTENCES[0], ignore_labels=[])
    assert [e["index"] for e in everything] == list(range(1, len(everything) + 1))  # every token but [CLS]/[SEP]
    assert {e["entity"] for e in everything} <= set(LABELS)


def test_defaults_at_construction_and_batching_change_nothing(checkpoints):
    ours, _ = pair("token-classification", checkpoints["ner"])
    built = pipeline("token-classification", model=checkpoints["ner"], aggregation_strategy="average")
    one_by_one = [ours(s, aggregation_strategy="average") for s in SENTENCES]
    assert_close(built(SENTENCES, batch_size=3), one_by_one, tol=1e-5)
    assert_close(list(built(iter(SENTENCES), batch_size=2)), one_by_one, tol=1e-5)


@pytest.mark.parametrize("strategy", ["simple", "first", "average", "max"])
@pytest.mark.parametrize("stride", [2, 5])
def test_long_inputs_with_stride_match_transformers(checkpoints, strategy, stride):
    ours, theirs = pair("token-classification", checkpoints["short"])
    expected = theirs(SENTENCES, aggregation_strategy=strategy, stride=stride)
    got = ours(SENTENCES, aggregation_strategy=strategy, stride=stride, batch_size=8)
    assert_close(got, expected)
    # The long sentence needs several windows, and entities reach its end.
    assert len(ours.tokenizer(SENTENCES[-1])["input_ids"]) > 2 * 14
    assert max(e["end"] for e in got[-1]) > len(SENTENCES[-1]) // 2


def test_truncation_without_stride_matches_transformers(checkpoints):
    ours, theirs = pair("token-classification", checkpoints["short"])
    assert_close(ours(SENTENCES[-1], aggregation_strategy="none"), theirs(SENTENCES[-1], aggregation_strategy="none"))


def test_input_errors_name_the_argument(checkpoints):
    ours, _ = pair("token-classification", checkpoints["short"])
    with pytest.raises(TypeError, match="inputs=None"):
        ours(None)
    with pytest.raises(TypeError, match="string or a list of strings"):
        ours(["fine", 3])
    with pytest.raises(ValueError, match="empty list"):
        ours([])
    with pytest.raises(ValueError, match="aggregation_strategy must be one of"):
        ours("john", aggregation_strategy="longest")
    with pytest.raises(TypeError, match="ignore_labels must be a list"):
        ours("john", ignore_labels="O")
    with pytest.raises(ValueError, match="stride must be less than tokenizer.model_max_length"):
        ours("john", stride=14, aggregation_strategy="simple")
    with pytest.raises(ValueError, match="aggregation_strategy='none'"):
        ours("john", stride=2, aggregation_strategy="none")
    with pytest.raises(TypeError, match="unexpected keyword arguments"):
        ours("john", top_k=3)
