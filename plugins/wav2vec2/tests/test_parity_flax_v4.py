"""Parity with Transformers 4.46.3's Flax Wav2Vec2 (the oracle; 5.x has no Flax models): files cross both ways.

Transformers' Flax Wav2Vec2 runs only ``feat_extract_norm="layer"`` with
``do_stable_layer_norm=True``, so that is the variant compared here (with and without the conv
adapter); the others are checked against our PyTorch model in test_modeling_flax_wav2vec2.py.
Runs in the oracle-v4 environment; skipped elsewhere.

One documented difference: with ``do_stable_layer_norm`` Transformers 4.x Flax returns, as the
last of ``hidden_states``, the output of the final LayerNorm; ours follows Transformers 5.x
PyTorch (and our PyTorch model) and returns the last layer's output before it. Every other
hidden state, ``last_hidden_state``, ``extract_features``, the attentions and the logits agree.
"""

from __future__ import annotations

import numpy as np
import pytest

transformers = pytest.importorskip("transformers")
if not transformers.__version__.startswith("4."):
    pytest.skip("Flax parity needs Transformers 4.x (the oracle-v4 environment)", allow_module_level=True)
pytest.importorskip("flax")

from polyformers.conversion import flatten_dict  # noqa: E402
from polyformers.testing.flax_model_tester import max_abs_diff  # noqa: E402
from polyformers_wav2vec2 import modeling_flax_wav2vec2 as ours_module  # noqa: E402

TINY = dict(
    vocab_size=12,
    hidden_size=16,
    num_hidden_layers=2,
    num_attention_heads=2,
    intermediate_size=20,
    conv_dim=(16, 16),
    conv_kernel=(5, 3),
    conv_stride=(3, 2),
    conv_bias=True,
    num_conv_pos_embeddings=16,
    num_conv_pos_embedding_groups=2,
    feat_extract_norm="layer",
    do_stable_layer_norm=True,
    mask_time_prob=0.05,  # both sides then have masked_spec_embed
)
VARIANTS = {"stable": {}, "adapter": dict(add_adapter=True, output_hidden_size=8, num_adapter_layers=2)}
CLASSES = ("FlaxWav2Vec2Model", "FlaxWav2Vec2ForCTC")
CASES = [(c, v) for c in CLASSES for v in VARIANTS]
IDS = [f"{c}-{v}" for c, v in CASES]
BATCH, SAMPLES = 2, 1600
PARITY_ATOL = 1e-5


def parity_inputs() -> dict[str, np.ndarray]:
    rng = np.random.RandomState(0)
    mask = np.ones((BATCH, SAMPLES), dtype=np.int64)
    mask[-1, 1000:] = 0
    return {"input_values": rng.randn(BATCH, SAMPLES).astype(np.float32), "attention_mask": mask}


def run(model, **kwargs):
    return model(**parity_inputs(), output_hidden_states=True, output_attentions=True, **kwargs)


def compare(ours, theirs) -> float:
    """Every output Transformers returns against ours, hidden states but the documented last one; the worst difference."""
    assert set(ours.keys()) == set(theirs.keys()), (sorted(ours.keys()), sorted(theirs.keys()))
    diffs = {key: max_abs_diff(ours[key], theirs[key]) for key in theirs.keys() if key != "hidden_states"}
    assert len(ours["hidden_states"]) == len(theirs["hidden_states"])
    diffs["hidden_states[:-1]"] = max_abs_diff(ours["hidden_states"][:-1], theirs["hidden_states"][:-1])
    assert max(diffs.values()) <= PARITY_ATOL, f"outputs differ from Transformers: {diffs}"
    return max(diffs.values())


def pair(class_name: str):
    return getattr(transformers, class_name), getattr(ours_module, class_name)


@pytest.mark.parametrize("class_name,variant", CASES, ids=IDS)
def test_transformers_msgpack_loads_here(tmp_path, class_name, variant):
    theirs_class, ours_class = pair(class_name)
    theirs = theirs_class(transformers.Wav2Vec2Config(**TINY, **VARIANTS[variant]), seed=0)
    theirs.save_pretrained(tmp_path)
    ours, info = ours_class.from_pretrained(tmp_path, output_loading_info=True)
    assert info["missing_keys"] == [] and info["unexpected_keys"] == [] and info["mismatched_keys"] == [], info
    compare(run(ours), run(theirs))


@pytest.mark.parametrize("class_name,variant", CASES, ids=IDS)
def test_our_msgpack_loads_in_transformers(tmp_path, class_name, variant):
    theirs_class, ours_class = pair(class_name)
    ours = ours_class(ours_class.config_class(**TINY, **VARIANTS[variant]), seed=1)
    ours.save_pretrained(tmp_path)
    theirs = theirs_class.from_pretrained(tmp_path)
    ours_flat, theirs_flat = flatten_dict(ours.params), flatten_dict(theirs.params)
    assert ours_flat.keys() == theirs_flat.keys()
    assert all(np.array_equal(np.asarray(ours_flat[k]), np.asarray(theirs_flat[k])) for k in ours_flat)
    compare(run(ours), run(theirs))


def test_last_hidden_state_convention(tmp_path):
    """Theirs: hidden_states[-1] is the final LayerNorm's output; ours: its input (Transformers 5.x PyTorch)."""
    theirs_class, ours_class = pair("FlaxWav2Vec2Model")
    theirs = theirs_class(transformers.Wav2Vec2Config(**TINY), seed=0)
    theirs.save_pretrained(tmp_path)
    ours = ours_class.from_pretrained(tmp_path)
    ours_out, theirs_out = run(ours), run(theirs)
    assert max_abs_diff(theirs_out.hidden_states[-1], theirs_out.last_hidden_state) == 0.0
    assert max_abs_diff(ours_out.hidden_states[-1], ours_out.last_hidden_state) > 1e-2
    params = ours.params["encoder"]["layer_norm"]
    last = np.asarray(ours_out.hidden_states[-1], dtype=np.float64)
    normed = (last - last.mean(-1, keepdims=True)) / np.sqrt(last.var(-1, keepdims=True) + 1e-5) * np.asarray(params["scale"]) + np.asarray(params["bias"])
    assert max_abs_diff(normed, theirs_out.hidden_states[-1]) <= PARITY_ATOL


def test_mask_time_indices_match(tmp_path):
    theirs_class, ours_class = pair("FlaxWav2Vec2ForCTC")
    theirs = theirs_class(transformers.Wav2Vec2Config(**TINY), seed=0)
    theirs.save_pretrained(tmp_path)
    ours = ours_class.from_pretrained(tmp_path)
    frames = ours._get_feat_extract_output_lengths(SAMPLES)
    assert frames == int(theirs._get_feat_extract_output_lengths(SAMPLES))
    mask = np.zeros((BATCH, frames), dtype=bool)
    mask[0, 3:9] = mask[1, 20:25] = True
    compare(run(ours, mask_time_indices=mask), run(theirs, mask_time_indices=mask))


@pytest.mark.parametrize("direction", ["theirs_to_ours", "ours_to_theirs"])
def test_flax_safetensors_cross_both_ways(tmp_path, direction):
    """model.safetensors with {"format": "flax"}."""
    theirs_class, ours_class = pair("FlaxWav2Vec2ForCTC")
    if direction == "theirs_to_ours":
        writer, reader = theirs_class(transformers.Wav2Vec2Config(**TINY), seed=2), ours_class
    else:
        writer, reader = ours_class(ours_class.config_class(**TINY), seed=2), theirs_class
    writer.save_pretrained(tmp_path, safe_serialization=True)
    compare(run(reader.from_pretrained(tmp_path)), run(writer))
