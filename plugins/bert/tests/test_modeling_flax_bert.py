"""BERT (Flax): the shared Flax model tests on a tiny config, BERT specifics, and equivalence with our PyTorch BERT."""

from __future__ import annotations

import logging

import numpy as np
import pytest

jax = pytest.importorskip("jax")
pytest.importorskip("flax")
import jax.numpy as jnp  # noqa: E402

from polyformers.conversion import flatten_dict, flax_key_to_pt, to_pt_state  # noqa: E402
from polyformers.flax_msgpack import read_flax_msgpack  # noqa: E402
from polyformers.testing.flax_model_tester import FlaxModelTesterMixin, first_output, flat_params, max_abs_diff  # noqa: E402
from polyformers_bert.configuration_bert import BertConfig  # noqa: E402
from polyformers_bert.modeling_flax_bert import (  # noqa: E402
    FlaxBertForCausalLM,
    FlaxBertForMaskedLM,
    FlaxBertForMultipleChoice,
    FlaxBertForNextSentencePrediction,
    FlaxBertForPreTraining,
    FlaxBertForQuestionAnswering,
    FlaxBertForSequenceClassification,
    FlaxBertForTokenClassification,
    FlaxBertModel,
)

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
ALL_CLASSES = (
    FlaxBertModel,
    FlaxBertForPreTraining,
    FlaxBertForCausalLM,
    FlaxBertForMaskedLM,
    FlaxBertForNextSentencePrediction,
    FlaxBertForSequenceClassification,
    FlaxBertForMultipleChoice,
    FlaxBertForTokenClassification,
    FlaxBertForQuestionAnswering,
)


def tiny_config(**overrides) -> BertConfig:
    return BertConfig(**{**TINY, **overrides})


def bert_inputs(config: BertConfig, model_class: type, seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.RandomState(seed)
    shape = (BATCH, CHOICES, SEQ) if model_class is FlaxBertForMultipleChoice else (BATCH, SEQ)
    inputs = {
        "input_ids": rng.randint(1, config.vocab_size, shape),
        "token_type_ids": rng.randint(0, 2, shape),
        "attention_mask": np.ones(shape, dtype=np.int64),
    }
    inputs["attention_mask"][-1, ..., SEQ - 2 :] = 0  # the last row is padded
    return inputs


class TestFlaxBertModels(FlaxModelTesterMixin):
    all_model_classes = ALL_CLASSES
    base_model_class = FlaxBertModel
    train_model_class = FlaxBertForSequenceClassification

    def get_config(self) -> BertConfig:
        return tiny_config()

    def get_inputs(self, config, model_class):
        return bert_inputs(config, model_class)

    def get_train_batch(self, config, model_class):
        # Label = whether token 5 occurs: learnable from the tokens, not just memorised.
        rng = np.random.RandomState(0)
        input_ids = rng.randint(6, config.vocab_size, (8, SEQ))
        labels = np.arange(8) % 2
        input_ids[labels == 1, 3] = 5
        return {"input_ids": input_ids, "attention_mask": np.ones_like(input_ids)}, labels


# --- BERT-specific behaviour ---------------------------------------------------------------------


def _model(model_class, seed=0, **overrides):
    return model_class(tiny_config(**overrides), seed=seed)


def test_param_tree_matches_transformers_layout():
    """Names and nesting of Transformers 4.x's Flax BERT (so msgpack files interchange)."""
    keys = {"/".join(k) for k in flatten_dict(_model(FlaxBertForPreTraining).params)}
    assert "bert/encoder/layer/1/attention/self/query/kernel" in keys
    assert "bert/embeddings/LayerNorm/scale" in keys and "cls/predictions/bias" in keys
    assert "cls/predictions/decoder/kernel" not in keys, "tied: the decoder reads the word embeddings"
    assert len(keys) == 46
    untied = {"/".join(k) for k in flatten_dict(_model(FlaxBertForMaskedLM, tie_word_embeddings=False).params)}
    assert "cls/predictions/decoder/kernel" in untied and not any(k.startswith("bert/pooler") for k in untied)
    relative = flatten_dict(_model(FlaxBertModel, position_embedding_type="relative_key").params)
    assert relative[("encoder", "layer", "0", "attention", "self", "distance_embedding", "embedding")].shape == (127, 8)
    assert ("embeddings", "position_embeddings", "embedding") in relative  # kept, as in PyTorch checkpoints


@pytest.mark.parametrize("position_embedding_type", ["absolute", "relative_key", "relative_key_query"])
def test_decoder_cache_matches_full_forward(position_embedding_type):
    """Decoding token by token with init_cache/past_key_values gives the logits of one full forward."""
    model = _model(FlaxBertForCausalLM, is_decoder=True, add_cross_attention=True, position_embedding_type=position_embedding_type)
    rng = np.random.RandomState(3)
    ids = rng.randint(1, 99, (2, 6))
    encoder_states = rng.randn(2, 5, 32).astype(np.float32)
    encoder_mask = np.ones((2, 5), dtype=np.int64)
    encoder_mask[1, 3:] = 0
    kwargs = dict(encoder_hidden_states=encoder_states, encoder_attention_mask=encoder_mask)
    full = model(ids, **kwargs).logits
    out = model(ids[:, :3], **kwargs, past_key_values=model.init_cache(2, 6))
    steps, past = [out.logits], out.past_key_values
    for t in range(3, 6):
        out = model(ids[:, t : t + 1], **kwargs, past_key_values=past)
        past = out.past_key_values
        steps.append(out.logits)
    assert max_abs_diff(jnp.concatenate(steps, axis=1), full) < 1e-5
    assert int(past["bert"]["encoder"]["layer"]["0"]["attention"]["self"]["cache_index"]) == 6
    as_tuple = model(ids[:, :1], **kwargs, past_key_values=model.init_cache(2, 6), return_dict=False)
    assert isinstance(as_tuple[1], dict), "the cache follows the logits in the tuple, as in Transformers"


def test_cache_needs_a_decoder():
    model = _model(FlaxBertForCausalLM)
    with pytest.raises(ValueError, match="is_decoder=True"):
        model.init_cache(1, 4)
    with pytest.raises(ValueError, match="is_decoder=True"):
        model(np.ones((1, 2), dtype=np.int64), past_key_values={})


@pytest.mark.parametrize("position_embedding_type", ["relative_key", "relative_key_query"])
def test_relative_positions_ignore_left_padding(position_embedding_type):
    """With only relative positions, masked tokens in front shift nothing: outputs stay equal."""
    model = _model(FlaxBertModel, position_embedding_type=position_embedding_type)
    ids = np.random.RandomState(4).randint(1, 99, (1, 5))
    padded = np.concatenate([np.zeros((1, 2), dtype=ids.dtype), ids], axis=1)
    mask = np.array([[0, 0, 1, 1, 1, 1, 1]])
    plain = model(ids).last_hidden_state
    shifted = model(padded, attention_mask=mask).last_hidden_state[:, 2:]
    absolute = _model(FlaxBertModel)
    assert max_abs_diff(plain, shifted) < 1e-5
    assert max_abs_diff(absolute(ids).last_hidden_state, absolute(padded, attention_mask=mask).last_hidden_state[:, 2:]) > 1e-3


def test_head_mask():
    model = _model(FlaxBertModel)
    inputs = bert_inputs(model.config, FlaxBertModel)
    plain = model(**inputs).last_hidden_state
    ones = model(**inputs, head_mask=np.ones(4)).last_hidden_state
    mask = np.ones((2, 4))
    mask[0, 1] = 0
    masked = model(**inputs, head_mask=mask, output_attentions=True)
    assert max_abs_diff(plain, ones) < 1e-5
    assert float(jnp.abs(masked.attentions[0][:, 1]).max()) == 0.0
    assert float(jnp.abs(masked.attentions[1][:, 1]).max()) > 0.0
    assert max_abs_diff(plain, masked.last_hidden_state) > 1e-4
    with pytest.raises(ValueError, match="head_mask has 3 layers"):
        model(**inputs, head_mask=np.ones((3, 4)))


def test_too_long_input_error():
    with pytest.raises(ValueError, match="max_position_embeddings=64"):
        _model(FlaxBertModel)(np.ones((1, 65), dtype=np.int64))


def test_heads_must_divide_hidden_size():
    with pytest.raises(ValueError, match=r"hidden size \(32\) is not a multiple .* \(5\)"):
        _model(FlaxBertModel, num_attention_heads=5)


def test_cross_attention_needs_a_decoder():
    with pytest.raises(ValueError, match="needs is_decoder=True"):
        _model(FlaxBertModel, add_cross_attention=True)


@pytest.mark.parametrize("hidden_act", ["gelu_new", "relu", "silu", "gelu_pytorch_tanh"])
def test_hidden_act_variants_run(hidden_act):
    model = _model(FlaxBertForMaskedLM, hidden_act=hidden_act)
    assert bool(jnp.isfinite(model(**bert_inputs(model.config, FlaxBertForMaskedLM)).logits).all())


def test_gradient_checkpointing_gives_same_gradients():
    model = _model(FlaxBertForSequenceClassification)
    inputs = bert_inputs(model.config, FlaxBertForSequenceClassification)

    def grads():
        loss = lambda params: model(**inputs, params=params, train=True, dropout_rng=jax.random.PRNGKey(0)).logits.sum()  # noqa: E731
        return jax.jit(jax.grad(loss))(model.params)  # jitted: an eager backward pass is slow to run op by op

    plain = grads()
    model.enable_gradient_checkpointing()
    checkpointed = grads()
    assert max_abs_diff(jax.tree_util.tree_leaves(plain), jax.tree_util.tree_leaves(checkpointed)) < 1e-6


def test_params_setter_checks_completeness():
    model = _model(FlaxBertModel)
    params = flatten_dict(model.params)
    del params[("pooler", "dense", "kernel")]
    from polyformers.conversion import unflatten_dict

    with pytest.raises(ValueError, match="pooler.dense.kernel"):
        model.params = unflatten_dict(params)


def test_bad_dtype_is_refused():
    with pytest.raises(ValueError, match="float32, bfloat16, float16"):
        FlaxBertModel(tiny_config(), dtype=jnp.int32)


def test_auto_classes_resolve_flax_bert(tmp_path):
    from polyformers.registry import get_model_class

    try:
        get_model_class("bert", "masked-lm", "flax")
    except ValueError:
        pytest.skip("the polyformers-bert plugin does not register its Flax classes yet")
    import polyformers

    _model(FlaxBertForMaskedLM).save_pretrained(tmp_path)
    assert type(polyformers.FlaxAutoModelForMaskedLM.from_pretrained(tmp_path)) is FlaxBertForMaskedLM
    assert type(polyformers.FlaxAutoModel.from_pretrained(tmp_path)) is FlaxBertModel
    assert polyformers.FlaxBertForMaskedLM is FlaxBertForMaskedLM


# --- equivalence with our PyTorch BERT -----------------------------------------------------------

torch = pytest.importorskip("torch")
from polyformers_bert import modeling_bert  # noqa: E402

VARIANTS = {
    "absolute": {},
    "relative_key": dict(position_embedding_type="relative_key"),
    "relative_key_query": dict(position_embedding_type="relative_key_query"),
}
EQUIVALENCE_ATOL = 1e-5


def pt_class_of(flax_class: type) -> type:
    name = flax_class.__name__.removeprefix("Flax")
    return getattr(modeling_bert, "BertLMHeadModel" if name == "BertForCausalLM" else name)


def variant_config(flax_class: type, variant: str) -> BertConfig:
    overrides = dict(VARIANTS[variant])
    if flax_class is FlaxBertForCausalLM:  # a real decoder, with cross-attention
        overrides.update(is_decoder=True, add_cross_attention=True)
    return tiny_config(**overrides)


def forward_kwargs(config: BertConfig) -> dict:
    kwargs = dict(output_hidden_states=True, output_attentions=True)
    if config.add_cross_attention:
        rng = np.random.RandomState(5)
        kwargs["encoder_hidden_states"] = rng.randn(BATCH, 5, config.hidden_size).astype(np.float32)
        kwargs["encoder_attention_mask"] = np.array([[1, 1, 1, 1, 1], [1, 1, 1, 0, 0], [1, 1, 1, 1, 0]])
    return kwargs


def run_pt(model, inputs: dict, kwargs: dict):
    tensors = {k: torch.from_numpy(np.asarray(v)) for k, v in {**inputs, **kwargs}.items() if isinstance(v, np.ndarray)}
    flags = {k: v for k, v in kwargs.items() if not isinstance(v, np.ndarray)}
    if model.config.is_decoder:
        flags["use_cache"] = False
    with torch.no_grad():
        return model(**tensors, **flags)


def compare(flax_out, pt_out) -> float:
    """Every output the Flax model returns against PyTorch's; the worst difference."""
    worst = 0.0
    for key, value in flax_out.items():
        expected = pt_out[key]
        if isinstance(value, tuple):
            expected = tuple(t.numpy() for t in expected)
        else:
            expected = expected.numpy()
        diff = max_abs_diff(value, expected)
        assert diff <= EQUIVALENCE_ATOL, f"{key} differs from PyTorch by {diff}"
        worst = max(worst, diff)
    assert set(flax_out.keys()) == set(pt_out.keys()) - {"loss", "past_key_values"}
    return worst


def pt_model(flax_class: type, config: BertConfig, seed: int = 0):
    torch.manual_seed(seed)
    return pt_class_of(flax_class)(config).eval()


EQUIVALENCE_CASES = [(c, v) for c in ALL_CLASSES for v in VARIANTS]


@pytest.mark.parametrize("flax_class,variant", EQUIVALENCE_CASES, ids=[f"{c.__name__}-{v}" for c, v in EQUIVALENCE_CASES])
def test_equivalence_with_pytorch_through_files(tmp_path, flax_class, variant):
    """PyTorch -> Flax through model.safetensors ("pt" format), and Flax -> PyTorch through
    flax_model.msgpack (read without JAX, names and layouts converted): every output within 1e-5,
    clean loading reports both ways."""
    from safetensors.torch import save_file

    config = variant_config(flax_class, variant)
    inputs, kwargs = bert_inputs(config, flax_class), forward_kwargs(config)
    pt = pt_model(flax_class, config)
    pt.save_pretrained(tmp_path / "pt")
    flax_model, info = flax_class.from_pretrained(tmp_path / "pt", output_loading_info=True)
    assert info["missing_keys"] == [] and info["unexpected_keys"] == [] and info["mismatched_keys"] == [], info
    compare(flax_model(**inputs, **kwargs), run_pt(pt, inputs, kwargs))

    flax_model = flax_class(config, seed=1)
    flax_model.save_pretrained(tmp_path / "flax")
    state = to_pt_state(flatten_dict(read_flax_msgpack(tmp_path / "flax" / "flax_model.msgpack")), flax_key_to_pt)
    save_file({k: torch.from_numpy(v) for k, v in state.items()}, tmp_path / "flax" / "model.safetensors", metadata={"format": "pt"})
    pt, info = pt_class_of(flax_class).from_pretrained(tmp_path / "flax", output_loading_info=True)
    assert info["missing_keys"] == [] and info["unexpected_keys"] == [] and info["mismatched_keys"] == [], info
    compare(flax_model(**inputs, **kwargs), run_pt(pt, inputs, kwargs))


@pytest.mark.parametrize("flax_class", [FlaxBertForPreTraining, FlaxBertForQuestionAnswering])
def test_pytorch_bin_and_in_memory_state_dict(tmp_path, flax_class):
    """from_pt=True reads pytorch_model.bin (safe unpickler); state_dict= converts a live PyTorch model."""
    config = tiny_config()
    pt = pt_model(flax_class, config)
    pt.save_pretrained(tmp_path, safe_serialization=False)
    with pytest.raises(OSError, match="from_pt=True"):
        flax_class.from_pretrained(tmp_path)
    inputs, kwargs = bert_inputs(config, flax_class), forward_kwargs(config)
    expected = run_pt(pt, inputs, kwargs)
    compare(flax_class.from_pretrained(tmp_path, from_pt=True)(**inputs, **kwargs), expected)
    in_memory, info = flax_class.from_pretrained(None, config=config, state_dict=pt.state_dict(), from_pt=True, output_loading_info=True)
    assert info["unexpected_keys"] == [] and info["missing_keys"] == []
    compare(in_memory(**inputs, **kwargs), expected)


def test_flax_params_to_pytorch_in_memory():
    config = tiny_config()
    flax_model = FlaxBertForMaskedLM(config, seed=2)
    state = to_pt_state(flat_params(flax_model.params), flax_key_to_pt)
    pt = modeling_bert.BertForMaskedLM.from_pretrained(None, config=config, state_dict={k: torch.from_numpy(np.array(v)) for k, v in state.items()})
    inputs, kwargs = bert_inputs(config, FlaxBertForMaskedLM), forward_kwargs(config)
    compare(flax_model(**inputs, **kwargs), run_pt(pt.eval(), inputs, kwargs))


def test_pytorch_from_flax_flag(tmp_path):
    """Our PyTorch from_pretrained(from_flax=True) on a directory written by the Flax model."""
    config = tiny_config()
    flax_model = FlaxBertForSequenceClassification(config, seed=3)
    flax_model.save_pretrained(tmp_path)
    try:
        pt = modeling_bert.BertForSequenceClassification.from_pretrained(tmp_path, from_flax=True)
    except NotImplementedError:
        pytest.skip("PyTorch from_flax=True is not implemented yet")
    inputs, kwargs = bert_inputs(config, FlaxBertForSequenceClassification), forward_kwargs(config)
    compare(flax_model(**inputs, **kwargs), run_pt(pt, inputs, kwargs))


def test_untied_decoder_and_other_activation_match_pytorch(tmp_path):
    config = tiny_config(tie_word_embeddings=False, hidden_act="gelu_new", classifier_dropout=0.3)
    pt = pt_model(FlaxBertForMaskedLM, config)
    pt.save_pretrained(tmp_path)
    flax_model = FlaxBertForMaskedLM.from_pretrained(tmp_path)
    assert ("cls", "predictions", "decoder", "kernel") in flatten_dict(flax_model.params)
    inputs, kwargs = bert_inputs(config, FlaxBertForMaskedLM), forward_kwargs(config)
    compare(flax_model(**inputs, **kwargs), run_pt(pt, inputs, kwargs))


def test_head_mask_and_pruned_heads_match_pytorch(tmp_path):
    config = tiny_config()
    pt = pt_model(FlaxBertModel, config)
    inputs = bert_inputs(config, FlaxBertModel)
    head_mask = np.array([[1.0, 0.5, 0.0, 1.0], [0.0, 1.0, 1.0, 0.25]], dtype=np.float32)
    pt.save_pretrained(tmp_path / "full")
    flax_model = FlaxBertModel.from_pretrained(tmp_path / "full")
    kwargs = dict(forward_kwargs(config), head_mask=head_mask)
    compare(flax_model(**inputs, **kwargs), run_pt(pt, inputs, kwargs))

    pt.prune_heads({0: [0, 2], 1: [3]})
    pt.save_pretrained(tmp_path / "pruned")
    pruned = FlaxBertModel.from_pretrained(tmp_path / "pruned")
    assert pruned.params["encoder"]["layer"]["0"]["attention"]["self"]["query"]["kernel"].shape == (32, 16)
    out = pruned(**inputs, output_hidden_states=True)
    expected = run_pt(pt, inputs, dict(output_hidden_states=True))
    assert max_abs_diff(out.last_hidden_state, expected.last_hidden_state.numpy()) < EQUIVALENCE_ATOL
    assert max_abs_diff(out.hidden_states, tuple(h.numpy() for h in expected.hidden_states)) < EQUIVALENCE_ATOL


def test_decoder_with_cache_matches_pytorch_full_forward(tmp_path):
    config = tiny_config(is_decoder=True, add_cross_attention=True, position_embedding_type="relative_key_query")
    pt = pt_model(FlaxBertForCausalLM, config)
    pt.save_pretrained(tmp_path)
    flax_model = FlaxBertForCausalLM.from_pretrained(tmp_path)
    ids = np.random.RandomState(6).randint(1, 99, (BATCH, SEQ))
    kwargs = {k: v for k, v in forward_kwargs(config).items() if k.startswith("encoder")}
    expected = run_pt(pt, {"input_ids": ids}, kwargs).logits.numpy()
    out = flax_model(ids[:, :4], **kwargs, past_key_values=flax_model.init_cache(BATCH, SEQ))
    steps, past = [out.logits], out.past_key_values
    for t in range(4, SEQ):
        out = flax_model(ids[:, t : t + 1], **kwargs, past_key_values=past)
        steps.append(out.logits)
        past = out.past_key_values
    assert max_abs_diff(jnp.concatenate(steps, axis=1), expected) < EQUIVALENCE_ATOL


def test_bf16_pytorch_checkpoint(tmp_path, caplog):
    """A bfloat16 PyTorch checkpoint converts without a float32 detour and keeps its dtype (with a warning)."""
    config = tiny_config()
    pt = pt_model(FlaxBertModel, config).to(torch.bfloat16)
    pt.save_pretrained(tmp_path)
    with caplog.at_level(logging.WARNING):
        flax_model = FlaxBertModel.from_pretrained(tmp_path)
    assert {leaf.dtype for leaf in jax.tree_util.tree_leaves(flax_model.params)} == {jnp.dtype(jnp.bfloat16)}
    assert "bfloat16" in caplog.text and "to_fp32" in caplog.text
    embedding = flax_model.params["embeddings"]["word_embeddings"]["embedding"]
    assert np.array_equal(np.asarray(embedding, dtype=np.float32), pt.embeddings.word_embeddings.weight.detach().float().numpy())
    assert first_output(flax_model(**bert_inputs(config, FlaxBertModel))).dtype == jnp.float32  # computation dtype
