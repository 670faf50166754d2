"""question-answering: parity with Transformers 4.x's pipeline (5.x removed the task) on tiny random
BERT checkpoints that Transformers saves: doc_stride, max_answer_len, top_k,
handle_impossible_answer, several questions/contexts, contexts longer than max_seq_len."""

from __future__ import annotations

import functools
import json
import math

import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")
if not transformers.__version__.startswith("4."):
    pytest.skip(f"the question-answering oracle is Transformers 4.x, found {transformers.__version__}", allow_module_level=True)

from polyformers.pipelines import pipeline  # noqa: E402

WORDS = "the a man woman is was in paris france london john mary lives works at google and of new york city . , ! ? who where what does capital".split()
VOCAB = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *WORDS, *"abcdefghijklmnopqrstuvwxyz", *(f"##{c}" for c in "abcdefghijklmnopqrstuvwxyz")]
CONTEXT = "john lives in paris, the capital of france. mary works at google in new york city."
LONG_CONTEXT = " ".join([CONTEXT, "the woman was in londonderry and zanzibar, said bob.", CONTEXT, "who knows where ☃ lives?"])
QUESTIONS = ["where does john live?", "who works at google?", "what is the capital of france?"]


def _save(directory, max_length, seed):
    config = transformers.BertConfig(vocab_size=len(VOCAB), hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=37, max_position_embeddings=512)
    torch.manual_seed(seed)
    model = transformers.BertForQuestionAnswering(config).eval()
    with torch.no_grad():  # sharper start/end distributions, as a trained head has
        model.qa_outputs.weight.mul_(20.0)
    model.save_pretrained(directory)
    (directory / "vocab.txt").write_text("\n".join(VOCAB) + "\n", encoding="utf-8")
    (directory / "tokenizer_config.json").write_text(json.dumps({"model_max_length": max_length, "do_lower_case": True}), encoding="utf-8")
    return str(directory)


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory):
    root = tmp_path_factory.mktemp("question_answering")
    return {"qa": _save(root / "qa", 512, 0), "short": _save(root / "short", 48, 1)}


@functools.lru_cache(maxsize=None)
def pair(path):
    return pipeline("question-answering", model=path), transformers.pipeline("question-answering", model=path)


def assert_close(ours, theirs, tol=1e-4, path="out"):
    if isinstance(theirs, float):
        assert isinstance(ours, float) and math.isclose(ours, theirs, abs_tol=tol), f"{path}: {ours} != {theirs}"
    elif isinstance(theirs, dict):
        assert isinstance(ours, dict) and set(ours) == set(theirs), f"{path}: {ours} != {theirs}"
        for key in theirs:
            assert_close(ours[key], theirs[key], tol, f"{path}.{key}")
    elif isinstance(theirs, (list, tuple)):
        assert isinstance(ours, list) and len(ours) == len(theirs), f"{path}: {ours} != {theirs}"
        for i, (a, b) in enumerate(zip(ours, theirs)):
            assert_close(a, b, tol, f"{path}[{i}]")
    else:
        assert ours == theirs and type(ours) is type(theirs), f"{path}: {ours!r} != {theirs!r}"


CASES = [
    {},
    {"top_k": 3},
    {"top_k": 5, "max_answer_len": 3},
    {"max_answer_len": 1},
    {"handle_impossible_answer": True},
    {"handle_impossible_answer": True, "top_k": 4},
    {"align_to_words": False, "top_k": 2},
]


@pytest.mark.parametrize("kwargs", CASES, ids=lambda k: ",".join(f"{a}={b}" for a, b in k.items()) or "defaults")
def test_one_question_matches_transformers(checkpoints, kwargs):
    ours, theirs = pair(checkpoints["qa"])
    for question in QUESTIONS:
        assert_close(ours(question=question, context=CONTEXT, **kwargs), theirs(question=question, context=CONTEXT, **kwargs))


def test_input_forms_match_transformers(checkpoints):
    ours, theirs = pair(checkpoints["qa"])
    assert_close(ours(question=QUESTIONS, context=CONTEXT), theirs(question=QUESTIONS, context=CONTEXT))
    contexts = [CONTEXT, LONG_CONTEXT, "paris"]
    assert_close(ours(question=QUESTIONS, context=contexts, top_k=2, batch_size=4), theirs(question=QUESTIONS, context=contexts, top_k=2))
    example = {"question": QUESTIONS[0], "context": CONTEXT}
    assert_close(ours(example), theirs(example))
    assert_close(ours([example, {"question": QUESTIONS[1], "context": LONG_CONTEXT}]), theirs([example, {"question": QUESTIONS[1], "context": LONG_CONTEXT}]))
    assert_close(ours([example]), theirs([example]))  # a list of one gives one dict, as in Transformers


@pytest.mark.parametrize("kwargs", [
    {"max_seq_len": 32, "doc_stride": 8},
    {"max_seq_len": 40, "doc_stride": 16, "top_k": 4},
    {"max_seq_len": 24, "doc_stride": 4, "handle_impossible_answer": True, "top_k": 3},
    {"max_seq_len": 30, "doc_stride": 10, "max_answer_len": 4, "top_k": 6},
], ids=["32-8", "40-16-k4", "24-4-null", "30-10-len4"])
def test_context_longer_than_max_seq_len_matches_transformers(checkpoints, kwargs):
    ours, theirs = pair(checkpoints["qa"])
    for question in QUESTIONS[:2]:
        got = ours(question=question, context=LONG_CONTEXT, batch_size=3, **kwargs)
        assert_close(got, theirs(question=question, context=LONG_CONTEXT, **kwargs))
    assert len(ours.preprocess({"question": QUESTIONS[0], "context": LONG_CONTEXT}, max_seq_len=kwargs["max_seq_len"], doc_stride=kwargs["doc_stride"])) > 2


def test_model_max_length_sets_max_seq_len_and_doc_stride(checkpoints):
    ours, theirs = pair(checkpoints["short"])  # model_max_length 48: windows of 48, doc_stride 24
    assert len(ours.preprocess({"question": QUESTIONS[0], "context": LONG_CONTEXT})) > 2
    for kwargs in ({}, {"top_k": 3}, {"handle_impossible_answer": True}):
        assert_close(ours(question=QUESTIONS, context=LONG_CONTEXT, **kwargs), theirs(question=QUESTIONS, context=LONG_CONTEXT, **kwargs))


def test_batching_changes_nothing(checkpoints):
    ours, _ = pair(checkpoints["qa"])
    contexts = [CONTEXT, LONG_CONTEXT, "mary works at google"]
    alone = [ours(question=q, context=c, max_seq_len=32, doc_stride=8, top_k=2) for q, c in zip(QUESTIONS, contexts)]
    assert_close(ours(question=QUESTIONS, context=contexts, max_seq_len=32, doc_stride=8, top_k=2, batch_size=16), alone, tol=1e-5)


def test_input_errors_name_the_argument(checkpoints):
    ours, _ = pair(checkpoints["qa"])
    with pytest.raises(ValueError, match="context=None"):
        ours(question="who?")
    with pytest.raises(ValueError, match="question must not be empty"):
        ours(question="", context=CONTEXT)
    with pytest.raises(ValueError, match="2 questions and 1 contexts"):
        ours(question=QUESTIONS[:2], context=[CONTEXT])
    with pytest.raises(TypeError, match="context must be a string"):
        ours({"question": "who?", "context": 3})
    with pytest.raises(ValueError, match="has no 'context' key"):
        ours({"question": "who?"})
    with pytest.raises(ValueError, match="top_k must be an int >= 1"):
        ours(question="who?", context=CONTEXT, top_k=0)
    with pytest.raises(ValueError, match="max_answer_len must be an int >= 1"):
        ours(question="who?", context=CONTEXT, max_answer_len=0)
    with pytest.raises(ValueError, match=r"doc_stride \(64\) is larger than max_seq_len \(32\)"):
        ours(question="who?", context=CONTEXT, max_seq_len=32, doc_stride=64)
    with pytest.raises(TypeError, match="got no inputs"):
        ours()
