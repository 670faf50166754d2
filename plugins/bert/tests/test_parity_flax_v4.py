"""Parity with Transformers 4.46.3's Flax BERT (the oracle; 5.x has no Flax models): files cross both ways.

A ``flax_model.msgpack`` written by Transformers loads here with the outputs of Transformers'
own model, and ours loads there; for every head. Runs in the oracle-v4 environment; skipped
elsewhere. Transformers' Flax LayerNorm uses Flax's fast variance, ours PyTorch's two-pass one:
on these inputs the two agree far below the tolerance.
"""

from __future__ import annotations

import numpy as np
import pytest

transformers = pytest.importorskip("transformers")
if not transformers.__version__.startswith("4."):
    pytest.skip("Flax parity needs Transformers 4.x (the oracle-v4 environment)", allow_module_level=True)
pytest.importorskip("flax")

import jax.numpy as jnp  # noqa: E402

from polyformers.conversion import flatten_dict  # noqa: E402
from polyformers.testing.flax_model_tester import max_abs_diff  # noqa: E402
from polyformers_bert import modeling_flax_bert as ours_module  # noqa: E402

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
PARITY_ATOL = 1e-5
CLASSES = (
    "FlaxBertModel",
    "FlaxBertForPreTraining",
    "FlaxBertForCausalLM",
    "FlaxBertForMaskedLM",
    "FlaxBertForNextSentencePrediction",
    "FlaxBertForSequenceClassification",
    "FlaxBertForMultipleChoice",
    "FlaxBertForTokenClassification",
    "FlaxBertForQuestionAnswering",
)


def config_kwargs(class_name: str) -> dict:
    if class_name == "FlaxBertForCausalLM":  # a real decoder, with cross-attention
        return dict(TINY, is_decoder=True, add_cross_attention=True)
    return dict(TINY)


def parity_inputs(class_name: str, seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.RandomState(seed)
    shape = (BATCH, CHOICES, SEQ) if class_name == "FlaxBertForMultipleChoice" else (BATCH, SEQ)
    inputs = {
        "input_ids": rng.randint(1, TINY["vocab_size"], shape),
        "token_type_ids": rng.randint(0, 2, shape),
        "attention_mask": np.ones(shape, dtype=np.int64),
    }
    inputs["attention_mask"][-1, ..., SEQ - 3 :] = 0
    if class_name == "FlaxBertForCausalLM":
        inputs["encoder_hidden_states"] = rng.randn(BATCH, 5, TINY["hidden_size"]).astype(np.float32)
        inputs["encoder_attention_mask"] = np.array([[1, 1, 1, 1, 1], [1, 1, 1, 0, 0], [1, 1, 1, 1, 0]])
    return inputs


def run(model, class_name: str, **kwargs):
    return model(**parity_inputs(class_name), output_hidden_states=True, output_attentions=True, **kwargs)


def compare(ours, theirs) -> float:
    """Every output Transformers returns against ours; the worst difference."""
    assert set(ours.keys()) == set(theirs.keys()), (sorted(ours.keys()), sorted(theirs.keys()))
    diffs = {key: max_abs_diff(ours[key], theirs[key]) for key in theirs.keys()}
    assert max(diffs.values()) <= PARITY_ATOL, f"outputs differ from Transformers: {diffs}"
    return max(diffs.values())


def pair(class_name: str):
    theirs_class = getattr(transformers, class_name)
    ours_class = getattr(ours_module, class_name)
    return theirs_class, ours_class


@pytest.mark.parametrize("class_name", CLASSES)
def test_transformers_msgpack_loads_here(tmp_path, class_name):
    theirs_class, ours_class = pair(class_name)
    theirs = theirs_class(transformers.BertConfig(**config_kwargs(class_name)), seed=0)
    theirs.save_pretrained(tmp_path)
    ours, info = ours_class.from_pretrained(tmp_path, output_loading_info=True)
    assert info["missing_keys"] == [] and info["unexpected_keys"] == [] and info["mismatched_keys"] == [], info
    compare(run(ours, class_name), run(theirs, class_name))


@pytest.mark.parametrize("class_name", CLASSES)
def test_our_msgpack_loads_in_transformers(tmp_path, class_name):
    theirs_class, ours_class = pair(class_name)
    ours = ours_class(ours_class.config_class(**config_kwargs(class_name)), seed=1)
    ours.save_pretrained(tmp_path)
    theirs = theirs_class.from_pretrained(tmp_path)
    ours_flat, theirs_flat = flatten_dict(ours.params), flatten_dict(theirs.params)
    assert ours_flat.keys() == theirs_flat.keys()
    assert all(np.array_equal(np.asarray(ours_flat[k]), np.asarray(theirs_flat[k])) for k in ours_flat)
    compare(run(ours, class_name), run(theirs, class_name))


@pytest.mark.parametrize("direction", ["theirs_to_ours", "ours_to_theirs"])
@pytest.mark.parametrize("layout", ["safetensors", "sharded_msgpack"])
def test_other_layouts_cross_both_ways(tmp_path, direction, layout):
    """model.safetensors with {"format": "flax"}, and a sharded flax_model.msgpack with its index."""
    class_name = "FlaxBertForMaskedLM"
    theirs_class, ours_class = pair(class_name)
    save_kwargs = {"safe_serialization": True} if layout == "safetensors" else {"max_shard_size": "20KB"}
    if direction == "theirs_to_ours":
        writer, reader = theirs_class(transformers.BertConfig(**TINY), seed=2), ours_class
    else:
        writer, reader = ours_class(ours_class.config_class(**TINY), seed=2), theirs_class
    writer.save_pretrained(tmp_path, **save_kwargs)
    if layout == "sharded_msgpack":
        assert (tmp_path / "flax_model.msgpack.index.json").is_file()
    compare(run(reader.from_pretrained(tmp_path), class_name), run(writer, class_name))


def test_decoding_caches_interchange(tmp_path):
    """The "cache" collection has Transformers' names and shapes; step-by-step decoding agrees."""
    class_name = "FlaxBertForCausalLM"
    theirs_class, ours_class = pair(class_name)
    theirs = theirs_class(transformers.BertConfig(**config_kwargs(class_name)), seed=0)
    theirs.save_pretrained(tmp_path)
    ours = ours_class.from_pretrained(tmp_path)
    ours_cache, theirs_cache = ours.init_cache(BATCH, SEQ), theirs.init_cache(BATCH, SEQ)
    shapes = lambda cache: {k: v.shape for k, v in flatten_dict(cache).items()}  # noqa: E731
    assert shapes(ours_cache) == shapes(theirs_cache)

    inputs = parity_inputs(class_name)
    ids = inputs["input_ids"]
    encoder = {k: inputs[k] for k in ("encoder_hidden_states", "encoder_attention_mask")}
    full_mask = np.ones((BATCH, SEQ), dtype=np.int64)

    def step(model, start, stop, cache):
        # Transformers needs explicit positions and a max_length-long mask while decoding.
        positions = np.broadcast_to(np.arange(start, stop), (BATCH, stop - start))
        return model(ids[:, start:stop], past_key_values=cache, attention_mask=full_mask, position_ids=positions, **encoder)

    for start, stop in ((0, 4), (4, 5), (5, 6)):
        ours_out, theirs_out = step(ours, start, stop, ours_cache), step(theirs, start, stop, theirs_cache)
        assert max_abs_diff(ours_out.logits, theirs_out.logits) <= PARITY_ATOL
        ours_cache, theirs_cache = ours_out.past_key_values, theirs_out.past_key_values
    # The last token with the caches swapped: ours carries on from theirs and the other way round.
    expected = step(theirs, 6, 7, theirs_cache).logits
    assert max_abs_diff(step(ours, 6, 7, theirs_cache).logits, expected) <= PARITY_ATOL
    assert max_abs_diff(step(theirs, 6, 7, ours_cache).logits, expected) <= PARITY_ATOL


def test_head_mask_matches(tmp_path):
    theirs_class, ours_class = pair("FlaxBertModel")
    theirs = theirs_class(transformers.BertConfig(**TINY), seed=0)
    theirs.save_pretrained(tmp_path)
    ours = ours_class.from_pretrained(tmp_path)
    head_mask = np.array([[1, 0, 1, 1], [0, 1, 1, 0]])  # Transformers casts the mask to integers: 0/1 only
    compare(run(ours, "FlaxBertModel", head_mask=head_mask), run(theirs, "FlaxBertModel", head_mask=head_mask))


def test_bf16_computation_matches(tmp_path):
    theirs_class, ours_class = pair("FlaxBertForSequenceClassification")
    theirs = theirs_class(transformers.BertConfig(**TINY), seed=0, dtype=jnp.bfloat16)
    theirs.save_pretrained(tmp_path)
    ours = ours_class.from_pretrained(tmp_path, dtype=jnp.bfloat16)
    a = ours(**parity_inputs("FlaxBertForSequenceClassification")).logits
    b = theirs(**parity_inputs("FlaxBertForSequenceClassification")).logits
    assert a.dtype == b.dtype == jnp.bfloat16
    assert max_abs_diff(a, b) < 3e-2  # bfloat16 keeps 8 bits of mantissa; the kernels round differently


def test_tensorflow_safetensors_load_here(tmp_path):
    """A model.safetensors written by Transformers' TF model ({"format": "tf"}) loads through PyTorch's names."""
    pytest.importorskip("tensorflow")
    theirs = transformers.TFBertForMaskedLM(transformers.BertConfig(**TINY))
    inputs = parity_inputs("FlaxBertForMaskedLM")
    expected = theirs(**inputs).logits.numpy()
    theirs.save_pretrained(tmp_path, safe_serialization=True)
    from safetensors import safe_open

    with safe_open(tmp_path / "model.safetensors", framework="numpy") as f:
        assert f.metadata()["format"] == "tf"
    ours, info = ours_module.FlaxBertForMaskedLM.from_pretrained(tmp_path, output_loading_info=True)
    assert info["missing_keys"] == [] and info["unexpected_keys"] == [] and info["mismatched_keys"] == [], info
    assert max_abs_diff(ours(**inputs).logits, expected) <= PARITY_ATOL
