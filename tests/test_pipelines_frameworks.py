"""Every pipeline task with framework="tf" and "flax" gives the PyTorch pipeline's results."""

from __future__ import annotations

import pytest

pytest.importorskip("tensorflow")
pytest.importorskip("flax")
import torch  # noqa: E402

from polyformers import (  # noqa: E402
    BertConfig,
    BertForMaskedLM,
    BertForQuestionAnswering,
    BertForSequenceClassification,
    BertForTokenClassification,
    BertModel,
    FlaxBertForMaskedLM,
    TFBertForSequenceClassification,
    pipeline,
)

WORDS = ["paris", "is", "the", "capital", "of", "france", "berlin", "germany", "a", "city", "river", "big", "small", "what", "where", "##s", "."]
VOCAB = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *WORDS]
TINY = dict(vocab_size=len(VOCAB), hidden_size=16, num_hidden_layers=2, num_attention_heads=2, intermediate_size=24, max_position_embeddings=64)
TEXTS = ["paris is the capital of france .", "berlin is a big city", "the river"]


def checkpoint(tmp_path, model_class, name, **config_kwargs):
    directory = tmp_path / name
    torch.manual_seed(0)
    model_class(BertConfig(**TINY, **config_kwargs)).save_pretrained(directory)
    (directory / "vocab.txt").write_text("\n".join(VOCAB) + "\n")
    return directory


def close(a, b, atol=1e-4):
    """Results equal but for float noise in scores and vectors."""
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(close(a[k], b[k], atol) for k in a)
    if isinstance(a, (list, tuple)):
        return len(a) == len(b) and all(close(x, y, atol) for x, y in zip(a, b))
    if isinstance(a, float):
        return abs(a - b) <= atol
    return a == b


CASES = [
    ("feature-extraction", BertModel, {}, TEXTS, {}),
    ("sentence-embeddings", BertModel, {}, TEXTS, {}),
    ("fill-mask", BertForMaskedLM, {}, ["paris is the [MASK] of france .", "[MASK] is a city"], {"top_k": 3}),
    ("text-classification", BertForSequenceClassification, {"num_labels": 3}, TEXTS, {"top_k": None}),
    ("token-classification", BertForTokenClassification, {"id2label": {0: "O", 1: "B-LOC", 2: "I-LOC"}}, TEXTS, {"aggregation_strategy": "simple", "ignore_labels": []}),
    ("question-answering", BertForQuestionAnswering, {}, None, {}),
    ("zero-shot-classification", BertForSequenceClassification, {"id2label": {0: "contradiction", 1: "neutral", 2: "entailment"}}, TEXTS, {"candidate_labels": ["city", "river"]}),
]


@pytest.mark.parametrize("framework", ["tf", "flax"])
@pytest.mark.parametrize("task,model_class,config_kwargs,inputs,call_kwargs", CASES, ids=[c[0] for c in CASES])
def test_framework_pipelines_match_pytorch(tmp_path, framework, task, model_class, config_kwargs, inputs, call_kwargs):
    directory = checkpoint(tmp_path, model_class, task, **config_kwargs)
    reference = pipeline(task, model=str(directory), batch_size=2)
    other = pipeline(task, model=str(directory), framework=framework, batch_size=2)
    if task == "question-answering":
        args = dict(question=["where is paris ?", "what is berlin ?"], context="paris is the capital of france . berlin is a big city")
        expected, actual = reference(**args), other(**args)
    else:
        expected, actual = reference(inputs, **call_kwargs), other(inputs, **call_kwargs)
    assert close(expected, actual), (expected, actual)


def test_loaded_tf_and_flax_models_are_accepted(tmp_path):
    directory = checkpoint(tmp_path, BertForMaskedLM, "mlm")
    flax_model = FlaxBertForMaskedLM.from_pretrained(directory, from_pt=True)
    flax_pipe = pipeline("fill-mask", model=flax_model, tokenizer=str(directory))
    assert close(flax_pipe("paris is the [MASK] ."), pipeline("fill-mask", model=str(directory))("paris is the [MASK] ."))
    classifier = checkpoint(tmp_path, BertForSequenceClassification, "cls")
    tf_model = TFBertForSequenceClassification.from_pretrained(classifier)
    with pytest.raises(ValueError, match="framework='flax' but the model is a 'tf' model"):
        pipeline("text-classification", model=tf_model, tokenizer=str(classifier), framework="flax")
    assert pipeline("text-classification", model=tf_model, tokenizer=str(classifier))("paris")[0]["label"].startswith("LABEL_")


def test_default_model_only_from_the_local_cache(tmp_path, monkeypatch):
    """A task's default model is used when it is in the hub cache; otherwise the error says to pass model=."""
    cache = tmp_path / "hub"
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ValueError, match="default, 'sentence-transformers/all-MiniLM-L6-v2', is not in the local cache"):
        pipeline("sentence-embeddings", cache_dir=str(cache))
    snapshot = cache / "models--sentence-transformers--all-MiniLM-L6-v2" / "snapshots" / ("a" * 40)
    source = checkpoint(tmp_path, BertModel, "minilm-like")
    snapshot.mkdir(parents=True)
    for item in source.iterdir():
        (snapshot / item.name).write_bytes(item.read_bytes())
    (cache / "models--sentence-transformers--all-MiniLM-L6-v2" / "refs").mkdir()
    (cache / "models--sentence-transformers--all-MiniLM-L6-v2" / "refs" / "main").write_text("a" * 40)
    embed = pipeline("sentence-embeddings", cache_dir=str(cache))
    assert len(embed("paris")) == TINY["hidden_size"]
