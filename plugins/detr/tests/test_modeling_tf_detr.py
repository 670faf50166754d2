"""DETR (TensorFlow, Keras 3) against our PyTorch DETR: one set of seeded random weights in both.

A PyTorch model is saved with ``save_pretrained``; the TensorFlow class loads it with
``from_pt=True`` and must give the same logits, boxes, masks, hidden states, loss and loss terms
(padded ``pixel_mask``, sine and learned position embeddings, both ResNet layouts). Then the
TensorFlow model's ``tf_model.h5`` goes back into PyTorch with ``from_tf=True``. Last, a few
GradientTape steps on coloured rectangles lower the loss.
"""

from __future__ import annotations

import numpy as np
import pytest

tf = pytest.importorskip("tensorflow")
torch = pytest.importorskip("torch")

import keras  # noqa: E402

from polyformers.conversion import tf_name_to_pt  # noqa: E402
from polyformers_detr import modeling_detr  # noqa: E402
from polyformers_detr.configuration_detr import DetrConfig  # noqa: E402
from polyformers_detr.modeling_tf_detr import (  # noqa: E402
    TFDetrForObjectDetection,
    TFDetrForSegmentation,
    TFDetrModel,
    resize_nearest,
    sine_position_embedding,
)

# d_model + heads must be divisible by 8 for the mask head's GroupNorm: 16 + 8.
TINY = dict(
    d_model=16,
    encoder_layers=1,
    decoder_layers=1,
    encoder_ffn_dim=20,
    decoder_ffn_dim=20,
    encoder_attention_heads=8,
    decoder_attention_heads=8,
    num_queries=5,
    num_labels=3,
    dropout=0.0,
)
TINY_RESNET = dict(
    model_type="resnet",
    embedding_size=8,
    hidden_sizes=[8, 16, 16, 32],
    depths=[1, 1, 1, 1],
    layer_type="basic",
    out_features=["stage1", "stage2", "stage3", "stage4"],
)
BATCH, SIZE = 2, 64
TOL = 1e-4
CLASSES = ("DetrModel", "DetrForObjectDetection", "DetrForSegmentation")
TF_CLASSES = {"DetrModel": TFDetrModel, "DetrForObjectDetection": TFDetrForObjectDetection, "DetrForSegmentation": TFDetrForSegmentation}


def tiny_config(**overrides) -> DetrConfig:
    return DetrConfig(**{"backbone_config": dict(TINY_RESNET), "use_timm_backbone": False, **TINY, **overrides})


def timm_config(**overrides) -> DetrConfig:
    """timm's resnet18 layout (conv1, layer1.0.bn1...), the smallest timm ResNet DETR supports."""
    return DetrConfig(**{"use_timm_backbone": True, "backbone": "resnet18", "use_pretrained_backbone": False, **TINY, **overrides})


def max_abs_diff(a, b) -> float:
    a = a.detach().numpy() if isinstance(a, torch.Tensor) else np.asarray(a)
    b = b.detach().numpy() if isinstance(b, torch.Tensor) else np.asarray(b)
    assert a.shape == b.shape, (a.shape, b.shape)
    return float(np.max(np.abs(a.astype(np.float64) - b.astype(np.float64)))) if a.size else 0.0


def make_inputs(seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    pixel_mask = np.ones((BATCH, SIZE, SIZE), dtype=np.int64)
    pixel_mask[-1, :, 40:] = 0  # the second image is padded on the right and at the bottom
    pixel_mask[-1, 48:, :] = 0
    return {"pixel_values": rng.standard_normal((BATCH, 3, SIZE, SIZE)).astype(np.float32), "pixel_mask": pixel_mask}


def make_labels(num_labels: int, with_masks: bool, seed: int = 0, counts=(2, 3)) -> list[dict[str, np.ndarray]]:
    rng = np.random.default_rng(seed)
    labels = []
    for n in counts:
        center = rng.random((n, 2)) * 0.5 + 0.25
        size = rng.random((n, 2)) * 0.3 + 0.1
        target = {"class_labels": rng.integers(0, num_labels, n), "boxes": np.concatenate([center, size], -1).astype(np.float32)}
        if with_masks:
            target["masks"] = (rng.random((n, SIZE, SIZE)) > 0.5).astype(np.float32)
        labels.append(target)
    return labels


def torch_labels(labels):
    return [{k: torch.from_numpy(np.asarray(v)) for k, v in t.items()} for t in labels]


def seeded_pt_model(class_name: str, config: DetrConfig, seed: int = 0):
    """Our PyTorch model with random weights, frozen batch-norm statistics included (they start at 0 / 1)."""
    torch.manual_seed(seed)
    model = getattr(modeling_detr, class_name)(config).eval()
    g = torch.Generator().manual_seed(seed + 1)
    with torch.no_grad():
        for name, buffer in model.named_buffers():
            if name.endswith(("running_var", "weight")):
                buffer.copy_(torch.rand(buffer.shape, generator=g) * 0.5 + 0.75)
            elif name.endswith(("running_mean", "bias")):
                buffer.copy_(torch.randn(buffer.shape, generator=g) * 0.1)
    return model


def pt_run(model, inputs, labels=None, **kwargs):
    pt_inputs = {k: torch.from_numpy(v) for k, v in inputs.items()}
    if labels is not None:
        pt_inputs["labels"] = torch_labels(labels)
    with torch.no_grad():
        return model(**pt_inputs, **kwargs)


def tf_run(model, inputs, labels=None, **kwargs):
    tf_inputs = {k: tf.constant(v) for k, v in inputs.items()}
    if labels is not None:
        tf_inputs["labels"] = labels
    return model(**tf_inputs, training=False, **kwargs)


def compare(pt_out, tf_out, class_name: str) -> dict[str, float]:
    keys = ["last_hidden_state", "encoder_last_hidden_state"]
    if class_name != "DetrModel":
        keys += ["logits", "pred_boxes"]
    if class_name == "DetrForSegmentation":
        keys.append("pred_masks")
    diffs = {key: max_abs_diff(pt_out[key], tf_out[key]) for key in keys}
    assert all(d < TOL for d in diffs.values()), diffs
    return diffs


def load_tf_from_pt(tmp_path, class_name: str, config: DetrConfig, seed: int = 0):
    pt_model = seeded_pt_model(class_name, config, seed)
    pt_model.save_pretrained(tmp_path / "pt")
    tf_model, info = TF_CLASSES[class_name].from_pretrained(tmp_path / "pt", from_pt=True, output_loading_info=True)
    assert info["missing_keys"] == [] and info["unexpected_keys"] == [] and info["mismatched_keys"] == [], info
    return pt_model, tf_model


# --- building blocks -----------------------------------------------------------------------------------------------


def test_sine_position_embedding_matches_pytorch():
    mask = np.ones((2, 5, 7), dtype=bool)
    mask[1, 3:, :] = False
    mask[1, :, 4:] = False
    expected = modeling_detr.DetrSinePositionEmbedding(8, normalize=True)((2, 16, 5, 7), "cpu", torch.float32, torch.from_numpy(mask))
    ours = sine_position_embedding(2, 5, 7, tf.constant(mask), 8)  # (B, H, W, D)
    assert max_abs_diff(expected.permute(0, 2, 3, 1), ours) < 1e-5


@pytest.mark.parametrize("in_size,out_size", [(64, 16), (64, 2), (5, 12), (13, 4)])
def test_nearest_resize_matches_pytorch(in_size, out_size):
    x = np.random.default_rng(0).standard_normal((2, in_size, in_size)).astype(np.float32)
    expected = torch.nn.functional.interpolate(torch.from_numpy(x)[None], size=(out_size, out_size))[0]
    assert max_abs_diff(expected, resize_nearest(tf.constant(x), (out_size, out_size))) == 0.0


def test_variable_names_map_to_pytorch_names():
    """Every TF variable maps, through the standard table alone, onto one of our PyTorch parameters or buffers."""
    for class_name in CLASSES:
        config = tiny_config(position_embedding_type="learned")
        keras.utils.set_random_seed(0)
        tf_model = TF_CLASSES[class_name](config)
        tf_model.build_in_name_scope()
        pt_names = set(getattr(modeling_detr, class_name)(config).state_dict())
        if class_name == "DetrModel":  # our TF base model keeps its layers under "model/", as Transformers' TF models do
            pt_names = {"model." + n for n in pt_names}
        tf_names = {tf_name_to_pt(f"{tf_model.name}/{n}", len(v.shape))[0] for n, v in tf_model._named_variables().items()}
        assert tf_names == pt_names, (sorted(tf_names - pt_names)[:5], sorted(pt_names - tf_names)[:5])
        if class_name == "DetrForObjectDetection":
            assert "model/backbone/conv_encoder/model/embedder/embedder/convolution/kernel:0" in tf_model._named_variables()


# --- PyTorch -> TensorFlow ---------------------------------------------------------------------------------------------

PARITY_CASES = [(c, p) for c in CLASSES for p in ("sine", "learned")]


@pytest.mark.parametrize("class_name,position", PARITY_CASES, ids=[f"{c}-{p}" for c, p in PARITY_CASES])
def test_pt_to_tf_outputs_and_loss(tmp_path, class_name, position):
    config = tiny_config(position_embedding_type=position)
    pt_model, tf_model = load_tf_from_pt(tmp_path, class_name, config)
    inputs = make_inputs()
    labels = None if class_name == "DetrModel" else make_labels(config.num_labels, class_name == "DetrForSegmentation")
    pt_out, tf_out = pt_run(pt_model, inputs, labels), tf_run(tf_model, inputs, labels)
    compare(pt_out, tf_out, class_name)
    if labels is not None:
        assert abs(float(pt_out.loss) - float(tf_out.loss)) < TOL
        assert sorted(pt_out.loss_dict) == sorted(tf_out.loss_dict)
        for key, value in pt_out.loss_dict.items():
            assert abs(float(value) - float(tf_out.loss_dict[key])) < TOL, key


def test_auxiliary_loss_and_hidden_states(tmp_path):
    config = tiny_config(decoder_layers=2, encoder_layers=2, auxiliary_loss=True)
    pt_model, tf_model = load_tf_from_pt(tmp_path, "DetrForObjectDetection", config)
    inputs, labels = make_inputs(1), make_labels(config.num_labels, False, seed=1)
    pt_out = pt_run(pt_model, inputs, labels, output_hidden_states=True, output_attentions=True)
    tf_out = tf_run(tf_model, inputs, labels, output_hidden_states=True, output_attentions=True)
    compare(pt_out, tf_out, "DetrForObjectDetection")
    assert sorted(pt_out.loss_dict) == sorted(tf_out.loss_dict) and "loss_giou_0" in tf_out.loss_dict
    for key, value in pt_out.loss_dict.items():
        assert abs(float(value) - float(tf_out.loss_dict[key])) < TOL, key
    assert abs(float(pt_out.loss) - float(tf_out.loss)) < TOL
    for key in ("decoder_hidden_states", "encoder_hidden_states", "encoder_attentions", "decoder_attentions", "cross_attentions"):
        assert len(pt_out[key]) == len(tf_out[key]), key
        for a, b in zip(pt_out[key], tf_out[key]):
            assert max_abs_diff(a, b) < TOL, key


def test_inputs_embeds_and_tuple_outputs(tmp_path):
    """``inputs_embeds`` (B, S, D) bypasses the backbone as in PyTorch; ``return_dict=False`` gives the tuple."""
    config = tiny_config(auxiliary_loss=True, decoder_layers=2)
    pt_model, tf_model = load_tf_from_pt(tmp_path, "DetrModel", config)
    embeds = np.random.default_rng(8).standard_normal((BATCH, 9, config.d_model)).astype(np.float32)
    pt_out = pt_run(pt_model, {"inputs_embeds": embeds})
    tf_out = tf_run(tf_model, {"inputs_embeds": embeds})
    for key in ("last_hidden_state", "encoder_last_hidden_state", "intermediate_hidden_states"):
        assert max_abs_diff(pt_out[key], tf_out[key]) < TOL, key
    as_tuple = tf_run(tf_model, make_inputs(), return_dict=False)
    assert isinstance(as_tuple, tuple) and max_abs_diff(as_tuple[0], tf_run(tf_model, make_inputs()).last_hidden_state) == 0.0


def test_timm_layout(tmp_path):
    """timm names (conv1, layer2.0.downsample.0) in TensorFlow; a native-named checkpoint is renamed into them."""
    config = timm_config()
    pt_model, tf_model = load_tf_from_pt(tmp_path, "DetrForObjectDetection", config)
    names = tf_model._named_variables()
    assert "model/backbone/conv_encoder/model/layer2_._0/downsample_._0/kernel:0" in names
    assert "model/backbone/conv_encoder/model/bn1/moving_variance:0" in names
    inputs, labels = make_inputs(2), make_labels(config.num_labels, False, seed=2)
    pt_out, tf_out = pt_run(pt_model, inputs, labels), tf_run(tf_model, inputs, labels)
    compare(pt_out, tf_out, "DetrForObjectDetection")
    assert abs(float(pt_out.loss) - float(tf_out.loss)) < TOL
    # Freezing as in PyTorch: the stem and layer1 frozen, layer2..4 trainable, batch norm never.
    trainable = {v.path.split("/", 1)[1] for v in tf_model.trainable_variables}
    assert any("layer2_._0/conv1/kernel" in n for n in trainable)
    assert not any("layer1_._0" in n or n.endswith("model/conv1/kernel") or "moving_" in n or "/bn" in n for n in trainable)


def test_dilation_matches_pytorch(tmp_path):
    """DC5 (timm's output_stride=16): layer4 keeps stride 1 and dilates; masks, boxes and loss as in PyTorch."""
    config = timm_config(dilation=True)
    pt_model, tf_model = load_tf_from_pt(tmp_path, "DetrForSegmentation", config)
    inputs, labels = make_inputs(3), make_labels(config.num_labels, True, seed=3)
    pt_out, tf_out = pt_run(pt_model, inputs, labels), tf_run(tf_model, inputs, labels)
    diffs = compare(pt_out, tf_out, "DetrForSegmentation")
    assert abs(float(pt_out.loss) - float(tf_out.loss)) < TOL, (float(pt_out.loss), float(tf_out.loss), diffs)
    # 64 / 16 = 4: the encoder sees 4x4 positions (2x2 without dilation).
    assert tuple(tf_out.encoder_last_hidden_state.shape) == (BATCH, 16, 16)
    resnet = tf_model.detr.model.backbone.conv_encoder.model
    features = resnet(tf.transpose(tf.constant(inputs["pixel_values"]), (0, 2, 3, 1)))
    assert [tuple(f.shape[1:3]) for f in features] == [(16, 16), (8, 8), (4, 4), (4, 4)]
    assert [b.convs[0].dilation_rate for b in resnet.stages[3]] == [(1, 1), (2, 2)]
    assert all(b.convs[1].dilation_rate == (2, 2) and b.convs[1].strides == (1, 1) for b in resnet.stages[3])


def test_segmentation_reads_a_detection_checkpoint(tmp_path):
    """PyTorch checkpoint names of another class (``model.*`` into ``detr.model.*``) are moved on load."""
    config = tiny_config()
    seeded_pt_model("DetrForObjectDetection", config).save_pretrained(tmp_path)
    tf_model, info = TFDetrForSegmentation.from_pretrained(tmp_path, from_pt=True, output_loading_info=True)
    assert info["unexpected_keys"] == [] and all(k.startswith(("mask_head", "bbox_attention")) for k in info["missing_keys"]), info


def test_transformers_checkpoint_loads(tmp_path):
    """A checkpoint written by Hugging Face Transformers' (PyTorch-only) DETR loads with from_pt=True and gives its outputs."""
    transformers = pytest.importorskip("transformers")
    if int(transformers.__version__.split(".")[0]) != 5:
        pytest.skip("this parity test uses Transformers 5.x")
    resnet = {k: v for k, v in TINY_RESNET.items() if k != "model_type"}
    torch.manual_seed(0)
    theirs = transformers.DetrForSegmentation(transformers.DetrConfig(backbone_config=transformers.ResNetConfig(**resnet), **TINY)).eval()
    theirs.save_pretrained(tmp_path)
    ours, info = TFDetrForSegmentation.from_pretrained(tmp_path, from_pt=True, output_loading_info=True)
    assert info["missing_keys"] == [] and info["unexpected_keys"] == [] and info["mismatched_keys"] == [], info
    inputs, labels = make_inputs(5), make_labels(3, True, seed=5)
    expected, actual = pt_run(theirs, inputs, labels), tf_run(ours, inputs, labels)
    compare(expected, actual, "DetrForSegmentation")
    assert abs(float(expected.loss) - float(actual.loss)) < TOL
    for key, value in expected.loss_dict.items():
        assert abs(float(value) - float(actual.loss_dict[key])) < TOL, key


def test_tf_checkpoints_move_between_classes(tmp_path):
    """tf_model.h5 of the detection model into the segmentation model (``model/`` -> ``detr/model/``) and back."""
    keras.utils.set_random_seed(0)
    detection = TFDetrForObjectDetection(tiny_config())
    detection.build_in_name_scope()
    detection.save_pretrained(tmp_path / "detection")
    segmentation, info = TFDetrForSegmentation.from_pretrained(tmp_path / "detection", output_loading_info=True)
    assert info["unexpected_keys"] == [] and all(k.startswith(("mask_head", "bbox_attention")) for k in info["missing_keys"]), info
    inputs = make_inputs(6)
    expected = tf_run(detection, inputs)
    assert max_abs_diff(expected.logits, tf_run(segmentation, inputs).logits) == 0.0
    segmentation.save_pretrained(tmp_path / "segmentation")
    for cls in (TFDetrForObjectDetection, TFDetrModel):
        back, info = cls.from_pretrained(tmp_path / "segmentation", output_loading_info=True)
        assert info["missing_keys"] == [], info
        assert max_abs_diff(expected.last_hidden_state, tf_run(back, inputs).last_hidden_state) == 0.0


def test_tf_function_and_xla_match_eager():
    keras.utils.set_random_seed(0)
    model = TFDetrForSegmentation(tiny_config())
    model.build_in_name_scope()
    inputs = {k: tf.constant(v) for k, v in make_inputs(7).items()}
    eager = model(inputs)
    for compiled in (tf.function(model), tf.function(model, jit_compile=True)):
        outputs = compiled(inputs)
        for key in ("logits", "pred_boxes", "pred_masks", "last_hidden_state"):
            assert max_abs_diff(eager[key], outputs[key]) < 1e-5, key


# --- TensorFlow -> PyTorch ---------------------------------------------------------------------------------------------


H5_CASES = [(c, "native") for c in CLASSES] + [("DetrForObjectDetection", "timm")]


@pytest.mark.parametrize("class_name,layout", H5_CASES, ids=[f"{c}-{l}" for c, l in H5_CASES])
def test_tf_h5_into_pytorch(tmp_path, class_name, layout):
    config = tiny_config(position_embedding_type="learned") if layout == "native" else timm_config()
    keras.utils.set_random_seed(3)
    tf_model = TF_CLASSES[class_name](config)
    tf_model.build_in_name_scope()
    tf_model.save_pretrained(tmp_path)
    pt_model, info = getattr(modeling_detr, class_name).from_pretrained(tmp_path, from_tf=True, output_loading_info=True)
    assert info["missing_keys"] == [] and info["unexpected_keys"] == [] and info["mismatched_keys"] == [], info
    inputs = make_inputs(4)
    compare(pt_run(pt_model.eval(), inputs), tf_run(tf_model, inputs), class_name)
    reloaded = TF_CLASSES[class_name].from_pretrained(tmp_path)
    assert max_abs_diff(tf_run(reloaded, inputs).last_hidden_state, tf_run(tf_model, inputs).last_hidden_state) == 0.0


def test_auto_class_resolves():
    from polyformers import TFAutoModel, TFAutoModelForObjectDetection

    config = tiny_config()
    assert type(TFAutoModelForObjectDetection.from_config(config)) is TFDetrForObjectDetection
    assert type(TFAutoModel.from_config(config)) is TFDetrModel


# --- training ------------------------------------------------------------------------------------------------------------


def rectangles(num_images: int = 4, seed: int = 0) -> tuple[np.ndarray, list[dict[str, np.ndarray]]]:
    """64 x 64 images with 1-2 solid rectangles, red (class 0), green (1) or blue (2), on a dark background."""
    rng = np.random.default_rng(seed)
    images = np.full((num_images, 3, SIZE, SIZE), -1.0, dtype=np.float32)
    labels = []
    for i in range(num_images):
        classes, boxes = [], []
        for _ in range(1 + i % 2):
            w, h = rng.integers(12, 28, 2)
            x0, y0 = rng.integers(0, SIZE - w), rng.integers(0, SIZE - h)
            c = int(rng.integers(0, 3))
            images[i, c, y0 : y0 + h, x0 : x0 + w] = 1.0
            classes.append(c)
            boxes.append([(x0 + w / 2) / SIZE, (y0 + h / 2) / SIZE, w / SIZE, h / SIZE])
        labels.append({"class_labels": np.array(classes), "boxes": np.array(boxes, dtype=np.float32)})
    return images, labels


def test_training_lowers_the_loss():
    """A few AdamW steps with GradientTape; the native ResNet stays frozen, as in PyTorch."""
    keras.utils.set_random_seed(0)
    model = TFDetrForObjectDetection(tiny_config(auxiliary_loss=True, decoder_layers=2))
    model.build_in_name_scope()
    images, labels = rectangles()
    optimizer = keras.optimizers.AdamW(learning_rate=1e-2)
    assert not any("backbone" in v.path for v in model.trainable_variables)
    losses = []
    for _ in range(12):
        with tf.GradientTape() as tape:
            loss = model(tf.constant(images), labels=labels, training=True).loss
        grads = tape.gradient(loss, model.trainable_variables)
        optimizer.apply_gradients(zip(grads, model.trainable_variables))
        losses.append(float(loss))
    assert losses[-1] < 0.9 * losses[0], losses
