"""Parity with Transformers 4.46.3's TensorFlow BERT (the oracle): files cross both ways, outputs match.

A ``tf_model.h5`` (or TensorFlow-format safetensors, or shards) written by Transformers' TF model
loads into ours with the same outputs and losses, and ours loads into Transformers' with nothing
missing, unexpected or mismatched. Runs in the oracle environment (Transformers 4.x with
TensorFlow and tf-keras); skipped elsewhere. Transformers' TF models need Keras 2
(``TF_USE_LEGACY_KERAS=1``); ours use Keras 3 in the same process.
"""

from __future__ import annotations

import os

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")  # before TensorFlow first resolves tf.keras

import numpy as np  # noqa: E402
import pytest  # noqa: E402

transformers = pytest.importorskip("transformers")
if not transformers.__version__.startswith("4."):
    pytest.skip("TensorFlow parity needs Transformers 4.x (the bert-oracle-v4 env); 5.x has no TF models", allow_module_level=True)
tf = pytest.importorskip("tensorflow")
try:
    from transformers import TFBertModel as _probe  # noqa: F401  (needs tf-keras)
except (ImportError, RuntimeError, ValueError) as exc:  # pragma: no cover
    pytest.skip(f"Transformers' TF models are unavailable here: {exc}", allow_module_level=True)

from polyformers.testing.tf_model_tester import max_abs_diff  # noqa: E402
from polyformers_bert import modeling_tf_bert  # noqa: E402

TINY = dict(
    vocab_size=99,
    hidden_size=32,
    num_hidden_layers=2,
    num_attention_heads=4,
    intermediate_size=37,
    max_position_embeddings=64,
    type_vocab_size=4,
)
BATCH, SEQ, CHOICES = 3, 7, 4
ATOL = 1e-5
CLASS_NAMES = (
    "TFBertModel",
    "TFBertForPreTraining",
    "TFBertLMHeadModel",
    "TFBertForMaskedLM",
    "TFBertForNextSentencePrediction",
    "TFBertForSequenceClassification",
    "TFBertForMultipleChoice",
    "TFBertForTokenClassification",
    "TFBertForQuestionAnswering",
)
COMPARED = (
    "loss",
    "logits",
    "prediction_logits",
    "seq_relationship_logits",
    "start_logits",
    "end_logits",
    "last_hidden_state",
    "pooler_output",
    "hidden_states",
    "attentions",
)


def labelled_inputs(class_name: str, seed: int = 0) -> dict[str, tf.Tensor]:
    """Inputs with labels, in Transformers' TensorFlow argument names."""
    rng = np.random.RandomState(seed)
    shape = (BATCH, CHOICES, SEQ) if class_name == "TFBertForMultipleChoice" else (BATCH, SEQ)
    inputs = {
        "input_ids": rng.randint(1, TINY["vocab_size"], shape),
        "token_type_ids": rng.randint(0, 2, shape),
        "attention_mask": np.ones(shape, dtype=np.int64),
    }
    inputs["attention_mask"][-1, ..., SEQ - 3 :] = 0
    if class_name in ("TFBertForMaskedLM", "TFBertLMHeadModel", "TFBertForPreTraining"):
        inputs["labels"] = rng.randint(0, TINY["vocab_size"], (BATCH, SEQ))
        inputs["labels"][:, 0] = -100
    if class_name == "TFBertForPreTraining":
        inputs["next_sentence_label"] = rng.randint(0, 2, (BATCH,))
    if class_name == "TFBertForNextSentencePrediction":
        inputs["next_sentence_label"] = np.array([0, 1, -100])
    if class_name in ("TFBertForSequenceClassification",):
        inputs["labels"] = rng.randint(0, 2, (BATCH,))
    if class_name == "TFBertForMultipleChoice":
        inputs["labels"] = rng.randint(0, CHOICES, (BATCH,))
    if class_name == "TFBertForTokenClassification":
        inputs["labels"] = rng.randint(0, 2, (BATCH, SEQ))
        inputs["labels"][:, -1] = -100
    if class_name == "TFBertForQuestionAnswering":
        inputs["start_positions"] = rng.randint(0, SEQ, (BATCH,))
        inputs["end_positions"] = rng.randint(0, SEQ, (BATCH,))
    return {k: tf.constant(v.astype(np.int32)) for k, v in inputs.items()}


def run(model, class_name: str):
    return model(labelled_inputs(class_name), output_hidden_states=True, output_attentions=True, training=False)


def compare(ours, theirs) -> dict[str, float]:
    diffs = {}
    for key in COMPARED:
        a, b = ours.get(key), theirs.get(key)
        if a is None and b is None:
            continue
        assert a is not None and b is not None, f"{key}: only {'ours' if a is not None else 'theirs'} has it"
        diffs[key] = max_abs_diff(a, b)  # shapes must match too (losses: (1,) or one per example)
    assert diffs and max(diffs.values()) <= ATOL, diffs
    return diffs


def theirs_model(class_name: str):
    tf.random.set_seed(0)
    model = getattr(transformers, class_name)(transformers.BertConfig(**TINY))
    model.build_in_name_scope()
    return model


def ours_model(class_name: str):
    import keras

    keras.utils.set_random_seed(1)
    model = getattr(modeling_tf_bert, class_name)(modeling_tf_bert.BertConfig(**TINY))
    model.build_in_name_scope()
    return model


FORMATS = {"h5": {}, "safetensors": {"safe_serialization": True}, "sharded-h5": {"max_shard_size": "20KB"}}
# Every class in each single-file format; shards (sharding is class-independent) for two classes.
CASES = [(c, f) for c in CLASS_NAMES for f in ("h5", "safetensors")] + [(c, "sharded-h5") for c in ("TFBertForPreTraining", "TFBertForSequenceClassification")]


@pytest.mark.filterwarnings("ignore::UserWarning")
@pytest.mark.parametrize("class_name,fmt", CASES, ids=[f"{c}-{f}" for c, f in CASES])
def test_transformers_checkpoint_loads_here(tmp_path, class_name, fmt):
    theirs = theirs_model(class_name)
    theirs.save_pretrained(tmp_path, **FORMATS[fmt])
    ours, info = getattr(modeling_tf_bert, class_name).from_pretrained(tmp_path, output_loading_info=True)
    assert info["missing_keys"] == [] and info["unexpected_keys"] == [] and info["mismatched_keys"] == [], info
    compare(run(ours, class_name), run(theirs, class_name))


@pytest.mark.filterwarnings("ignore::UserWarning")
@pytest.mark.parametrize("class_name,fmt", CASES, ids=[f"{c}-{f}" for c, f in CASES])
def test_our_checkpoint_loads_in_transformers(tmp_path, class_name, fmt):
    ours = ours_model(class_name)
    ours.save_pretrained(tmp_path, **FORMATS[fmt])
    theirs, info = getattr(transformers, class_name).from_pretrained(tmp_path, output_loading_info=True)
    assert not info["missing_keys"] and not info["unexpected_keys"] and not info["mismatched_keys"], info
    compare(run(ours, class_name), run(theirs, class_name))


def test_decoder_with_cross_attention_and_cache_matches(tmp_path):
    config = dict(TINY, is_decoder=True, add_cross_attention=True)
    tf.random.set_seed(0)
    theirs = transformers.TFBertLMHeadModel(transformers.BertConfig(**config))
    theirs.build_in_name_scope()
    theirs.save_pretrained(tmp_path)
    ours = modeling_tf_bert.TFBertLMHeadModel.from_pretrained(tmp_path)
    rng = np.random.RandomState(2)
    ids = tf.constant(rng.randint(1, 99, (2, 6)).astype(np.int32))
    kwargs = dict(encoder_hidden_states=tf.constant(rng.randn(2, 5, 32).astype(np.float32)))
    assert max_abs_diff(ours(ids, **kwargs).logits, theirs(ids, **kwargs).logits) < ATOL
    step, theirs_step = ours(ids[:, :5], use_cache=True, **kwargs), theirs(ids[:, :5], use_cache=True, **kwargs)
    assert max_abs_diff(step.past_key_values, theirs_step.past_key_values) < ATOL
    last = ours(ids[:, 5:], past_key_values=step.past_key_values, use_cache=True, **kwargs)
    theirs_last = theirs(ids[:, 5:], past_key_values=theirs_step.past_key_values, use_cache=True, **kwargs)
    assert max_abs_diff(last.logits, theirs_last.logits) < ATOL
