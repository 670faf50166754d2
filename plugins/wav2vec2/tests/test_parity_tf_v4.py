"""Parity with Transformers 4.46.3's TensorFlow Wav2Vec2 (the oracle): files cross both ways, outputs match.

A ``tf_model.h5`` (or TensorFlow-format safetensors, or shards) written by Transformers'
``TFWav2Vec2Model``/``ForCTC``/``ForSequenceClassification`` loads into ours with the same outputs
and losses, and ours loads into Transformers' with nothing missing, unexpected or mismatched;
our PyTorch model reads Transformers' ``tf_model.h5`` with ``from_tf=True``. Runs in the oracle
environment (Transformers 4.x with TensorFlow and tf-keras); skipped elsewhere. Transformers' TF
models need Keras 2 (``TF_USE_LEGACY_KERAS=1``); ours use Keras 3 in the same process.

Known, documented differences (see :mod:`polyformers_wav2vec2.modeling_tf_wav2vec2`), kept out of
the compared configs: with ``do_stable_layer_norm`` our last hidden state in ``hidden_states`` is
taken before the final LayerNorm (Transformers 5.x, like our PyTorch model; 4.x's is after it),
and Transformers' TF model has no adapters.
"""

from __future__ import annotations

import os
import re

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")  # before TensorFlow first resolves tf.keras

import numpy as np  # noqa: E402
import pytest  # noqa: E402

transformers = pytest.importorskip("transformers")
if not transformers.__version__.startswith("4."):
    pytest.skip("TensorFlow parity needs Transformers 4.x (the oracle-v4 env); 5.x has no TF models", allow_module_level=True)
tf = pytest.importorskip("tensorflow")
try:
    from transformers import TFWav2Vec2Model as _probe  # noqa: F401  (needs tf-keras)
except (ImportError, RuntimeError, ValueError) as exc:  # pragma: no cover
    pytest.skip(f"Transformers' TF models are unavailable here: {exc}", allow_module_level=True)

from polyformers.testing.tf_model_tester import max_abs_diff  # noqa: E402
from polyformers_wav2vec2 import modeling_tf_wav2vec2  # noqa: E402

TINY = dict(
    vocab_size=12,
    hidden_size=16,
    num_hidden_layers=2,
    num_attention_heads=2,
    intermediate_size=37,
    conv_dim=(8, 8),
    conv_kernel=(10, 3),
    conv_stride=(5, 3),
    num_conv_pos_embeddings=4,
    num_conv_pos_embedding_groups=2,
    classifier_proj_size=6,
)
VARIANTS = {
    "group": dict(feat_extract_norm="group"),
    "layer-conv_bias-weighted": dict(feat_extract_norm="layer", conv_bias=True, use_weighted_layer_sum=True, num_conv_pos_embeddings=5),
    "layer-stable": dict(feat_extract_norm="layer", do_stable_layer_norm=True),
}
CLASS_NAMES = ("TFWav2Vec2Model", "TFWav2Vec2ForCTC", "TFWav2Vec2ForSequenceClassification")
BATCH, SAMPLES = 2, 1600
ATOL = 1e-5
FORMATS = {"h5": {}, "safetensors": {"safe_serialization": True}, "sharded-h5": {"max_shard_size": "20KB"}}
CASES = [(c, v, "h5") for c in CLASS_NAMES for v in VARIANTS] + [
    ("TFWav2Vec2ForCTC", "group", "safetensors"),
    ("TFWav2Vec2ForSequenceClassification", "layer-conv_bias-weighted", "sharded-h5"),
]
IDS = [f"{c}-{v}-{f}" for c, v, f in CASES]


def config_dict(variant: str) -> dict:
    return dict(TINY, **VARIANTS[variant])


def labelled_inputs(class_name: str, seed: int = 0) -> dict[str, tf.Tensor]:
    rng = np.random.RandomState(seed)
    mask = np.ones((BATCH, SAMPLES), dtype=np.int32)
    mask[1, 1100:] = 0
    inputs = {"input_values": rng.randn(BATCH, SAMPLES).astype(np.float32), "attention_mask": mask}
    if class_name == "TFWav2Vec2ForCTC":
        inputs["labels"] = np.array([[1, 2, 3, 4], [5, 6, -100, -100]], dtype=np.int32)
    if class_name == "TFWav2Vec2ForSequenceClassification":
        inputs["labels"] = np.array([0, 1], dtype=np.int32)
    return {k: tf.constant(v) for k, v in inputs.items()}


def run(model, class_name: str):
    return model(labelled_inputs(class_name), output_hidden_states=True, output_attentions=True, training=False)


def compare(ours, theirs, stable: bool) -> dict[str, float]:
    diffs = {}
    for key in ("logits", "last_hidden_state", "extract_features", "hidden_states", "attentions"):
        a, b = ours.get(key), theirs.get(key)
        if a is None and b is None:
            continue
        assert a is not None and b is not None, f"{key}: only {'ours' if a is not None else 'theirs'} has it"
        if key == "hidden_states" and stable:
            # 4.x gives the last one after the final LayerNorm; ours (5.x, as our PyTorch model) before it.
            a, b = a[:-1], b[:-1]
        diffs[key] = max_abs_diff(a, b)
    assert diffs and max(diffs.values()) <= ATOL, diffs
    if ours.get("loss") is not None or theirs.get("loss") is not None:
        assert np.shape(ours["loss"]) == np.shape(theirs["loss"])
        # A CTC sum over ~100 frames is ~400: compared relatively.
        np.testing.assert_allclose(np.ravel(ours["loss"]), np.ravel(theirs["loss"]), rtol=1e-6)
        diffs["loss"] = max_abs_diff(ours["loss"], theirs["loss"])
    return diffs


def theirs_model(class_name: str, variant: str):
    tf.random.set_seed(0)
    model = getattr(transformers, class_name)(transformers.Wav2Vec2Config(**config_dict(variant)))
    model.build_in_name_scope()
    return model


def ours_model(class_name: str, variant: str):
    import keras

    keras.utils.set_random_seed(1)
    model = getattr(modeling_tf_wav2vec2, class_name)(modeling_tf_wav2vec2.Wav2Vec2Config(**config_dict(variant)))
    model.build_in_name_scope()
    return model


@pytest.mark.filterwarnings("ignore::UserWarning")
@pytest.mark.parametrize("class_name,variant,fmt", CASES, ids=IDS)
def test_transformers_checkpoint_loads_here(tmp_path, class_name, variant, fmt):
    theirs = theirs_model(class_name, variant)
    theirs.save_pretrained(tmp_path, **FORMATS[fmt])
    ours, info = getattr(modeling_tf_wav2vec2, class_name).from_pretrained(tmp_path, output_loading_info=True)
    assert info["missing_keys"] == [] and info["unexpected_keys"] == [] and info["mismatched_keys"] == [], info
    compare(run(ours, class_name), run(theirs, class_name), stable=VARIANTS[variant].get("do_stable_layer_norm", False))


@pytest.mark.filterwarnings("ignore::UserWarning")
@pytest.mark.parametrize("class_name,variant,fmt", CASES, ids=IDS)
def test_our_checkpoint_loads_in_transformers(tmp_path, class_name, variant, fmt):
    ours = ours_model(class_name, variant)
    ours.save_pretrained(tmp_path, **FORMATS[fmt])
    theirs, info = getattr(transformers, class_name).from_pretrained(tmp_path, output_loading_info=True)
    # Transformers' CTC head has an unnamed Dropout ("dropout_154", numbered per process) that its
    # loader reports missing from any file, its own included: a layer without variables.
    missing = [k for k in info["missing_keys"] if not re.fullmatch(r"dropout_\d+", k)]
    assert not missing and not info["unexpected_keys"] and not info["mismatched_keys"], info
    compare(run(ours, class_name), run(theirs, class_name), stable=VARIANTS[variant].get("do_stable_layer_norm", False))


@pytest.mark.filterwarnings("ignore::UserWarning")
@pytest.mark.parametrize("variant", list(VARIANTS))
def test_our_pytorch_model_reads_transformers_tf_h5(tmp_path, variant):
    """Transformers' weight-normed positional conv (weight_g (k, 1, 1)) loads into our PyTorch model."""
    torch = pytest.importorskip("torch")
    from polyformers_wav2vec2.modeling_wav2vec2 import Wav2Vec2ForCTC

    theirs = theirs_model("TFWav2Vec2ForCTC", variant)
    theirs.save_pretrained(tmp_path)
    pt_model, info = Wav2Vec2ForCTC.from_pretrained(tmp_path, from_tf=True, output_loading_info=True)
    assert not info["missing_keys"] and not info["unexpected_keys"] and not info["mismatched_keys"], info
    inputs = labelled_inputs("TFWav2Vec2ForCTC")
    with torch.no_grad():
        ours = pt_model(**{k: torch.tensor(v.numpy().astype(np.int64) if k == "labels" else v.numpy()) for k, v in inputs.items()})
    expected = theirs(inputs, training=False)
    assert max_abs_diff(ours.logits.numpy(), expected.logits) <= ATOL
    np.testing.assert_allclose(ours.loss.numpy(), np.ravel(expected.loss)[0], rtol=1e-5)
