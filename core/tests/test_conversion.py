"""Weight-name and layout conversion between PyTorch, TensorFlow and Flax (numpy only)."""

from __future__ import annotations

import numpy as np
import pytest

from polyformers.conversion import (
    Layout,
    flatten_dict,
    flax_key_to_pt,
    from_pt_layout,
    pt_weights_for,
    tf_name_to_pt,
    to_pt_layout,
    to_pt_state,
    unflatten_dict,
)


@pytest.mark.parametrize("tf_name,ndim,expected", [
    ("tf_bert_model/bert/encoder/layer_._3/attention/self/query/kernel:0", 2, ("bert.encoder.layer.3.attention.self.query.weight", Layout.TRANSPOSE)),
    ("tf_bert_for_masked_lm/mlm___cls/predictions/bias:0", 1, ("cls.predictions.bias", Layout.SAME)),
    ("tf_bert_model/bert/embeddings/position_embeddings/embeddings:0", 2, ("bert.embeddings.position_embeddings.weight", Layout.SAME)),
    ("tf_bert_model/bert/embeddings/LayerNorm/gamma:0", 1, ("bert.embeddings.LayerNorm.weight", Layout.SAME)),
    ("tf_bert_model/bert/embeddings/LayerNorm/beta:0", 1, ("bert.embeddings.LayerNorm.bias", Layout.SAME)),
    ("model/conv/kernel:0", 4, ("conv.weight", Layout.CONV2D)),
    ("model/bn/moving_variance:0", 1, ("bn.running_var", Layout.SAME)),
])
def test_tf_names(tf_name, ndim, expected):
    assert tf_name_to_pt(tf_name, ndim) == expected


@pytest.mark.parametrize("path,ndim,expected", [
    (("bert", "encoder", "layer", "0", "output", "dense", "kernel"), 2, ("bert.encoder.layer.0.output.dense.weight", Layout.TRANSPOSE)),
    (("params", "embeddings", "word_embeddings", "embedding"), 2, ("embeddings.word_embeddings.weight", Layout.SAME)),
    (("cls", "predictions", "transform", "LayerNorm", "scale"), 1, ("cls.predictions.transform.LayerNorm.weight", Layout.SAME)),
    (("feature_extractor", "conv", "kernel"), 3, ("feature_extractor.conv.weight", Layout.CONV1D)),
])
def test_flax_names(path, ndim, expected):
    assert flax_key_to_pt(path, ndim) == expected


@pytest.mark.parametrize("layout,pt_shape", [(Layout.TRANSPOSE, (3, 5)), (Layout.CONV1D, (4, 3, 2)), (Layout.CONV2D, (4, 3, 2, 5)), (Layout.SAME, (7,))])
def test_layouts_are_inverse(layout, pt_shape):
    array = np.random.default_rng(0).standard_normal(pt_shape)
    other = from_pt_layout(array, layout)
    if layout is Layout.CONV2D:
        assert other.shape == (2, 5, 3, 4)  # (h, w, in, out)
    assert np.array_equal(to_pt_layout(other, layout), array)


def test_pt_to_flax_and_back_with_prefix_and_ties():
    rng = np.random.default_rng(0)
    pt = {  # a backbone checkpoint (no "bert." prefix), old gamma/beta names
        "embeddings.word_embeddings.weight": rng.standard_normal((10, 4)),
        "embeddings.LayerNorm.gamma": rng.standard_normal(4),
        "encoder.layer.0.dense.weight": rng.standard_normal((6, 4)),
        "pooler.dense.weight": rng.standard_normal((4, 4)),
    }
    target = {  # a task model's Flax params, with the prefix
        ("bert", "embeddings", "word_embeddings", "embedding"): (10, 4),
        ("bert", "embeddings", "LayerNorm", "scale"): (4,),
        ("bert", "encoder", "layer", "0", "dense", "kernel"): (4, 6),
        ("cls", "predictions", "decoder", "kernel"): (4, 10),
        ("cls", "predictions", "bias"): (10,),
    }
    weights, report = pt_weights_for(
        pt, target, flax_key_to_pt, base_model_prefix="bert",
        tied_sources={"cls.predictions.decoder.weight": "bert.embeddings.word_embeddings.weight"},
    )
    assert np.array_equal(weights[("bert", "encoder", "layer", "0", "dense", "kernel")], pt["encoder.layer.0.dense.weight"].T)
    assert np.array_equal(weights[("cls", "predictions", "decoder", "kernel")], pt["embeddings.word_embeddings.weight"].T)
    assert report.missing_keys == [("cls", "predictions", "bias")]
    assert report.unexpected_keys == ["pooler.dense.weight"]
    back = to_pt_state(weights, flax_key_to_pt)
    assert np.array_equal(back["bert.encoder.layer.0.dense.weight"], pt["encoder.layer.0.dense.weight"])


def test_mismatched_shapes_are_reported():
    pt = {"dense.weight": np.zeros((3, 2))}
    weights, report = pt_weights_for(pt, {"model/dense/kernel:0": (3, 3)}, tf_name_to_pt)
    assert weights == {} and report.mismatched_keys == [("model/dense/kernel:0", (2, 3), (3, 3))]


def test_flatten_round_trip():
    tree = {"a": {"b": {"kernel": 1}, "c": 2}}
    assert unflatten_dict(flatten_dict(tree)) == tree


def test_plugins_extend_the_tf_table_with_data():
    renames = ((r"/encoder_block_(\d+)/", r"/layer/\1/"),)  # a family whose TF layers are named otherwise
    assert tf_name_to_pt("m/enc/encoder_block_2/dense/kernel:0", 2, renames=renames) == ("enc.layer.2.dense.weight", Layout.TRANSPOSE)
