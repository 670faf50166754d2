"""DETR (Flax): parity with our PyTorch DETR on tiny configs (both ResNet layouts, sine and learned
position embeddings, a padded pixel mask), the set loss, msgpack -> PyTorch, the auto class, and a
few optax training steps on synthetic rectangles.

Kept to few compilations: the two CPU cores are shared, and each model class and config compiles once.
"""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")
jax = pytest.importorskip("jax")
pytest.importorskip("flax")
pytest.importorskip("scipy")

import jax.numpy as jnp  # noqa: E402

from polyformers_detr.configuration_detr import DetrConfig  # noqa: E402
from polyformers_detr.modeling_detr import DetrForObjectDetection, DetrForSegmentation, DetrModel  # noqa: E402
from polyformers_detr.modeling_flax_detr import (  # noqa: E402
    FlaxDetrForObjectDetection,
    FlaxDetrForSegmentation,
    FlaxDetrModel,
    detr_loss_from_indices,
    hungarian_match,
    interpolate_bilinear,
    interpolate_nearest,
)

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


def tiny_config(**overrides) -> DetrConfig:
    return DetrConfig(**{"backbone_config": dict(TINY_RESNET), "use_timm_backbone": False, **TINY, **overrides})


def timm_config(**overrides) -> DetrConfig:
    # resnet18 is the smallest timm layout; 32x32 images keep it cheap.
    return DetrConfig(**{"use_timm_backbone": True, "backbone": "resnet18", "backbone_config": None, **TINY, **overrides})


def randomize_buffers(model: torch.nn.Module, seed: int) -> None:
    """Non-trivial frozen batch norm statistics, so that their conversion is checked too, and
    parameters moved off their (small, zero-bias) initialisation so that the heads' outputs vary."""
    g = torch.Generator().manual_seed(seed)
    for parameter in model.parameters():
        parameter.add_(torch.randn(parameter.shape, generator=g) * 0.1)
    for name, buffer in model.named_buffers():
        if name.endswith(("running_var", "weight")):
            buffer.copy_(torch.rand(buffer.shape, generator=g) * 0.5 + 0.75)
        elif name.endswith(("running_mean", "bias")):
            buffer.copy_(torch.randn(buffer.shape, generator=g) * 0.1)


def make_labels(num_labels: int, with_masks: bool, size: int, seed: int = 0, counts=(2, 3)) -> list[dict]:
    g = torch.Generator().manual_seed(seed)
    labels = []
    for n in counts:
        center = torch.rand(n, 2, generator=g) * 0.5 + 0.25
        box_size = torch.rand(n, 2, generator=g) * 0.3 + 0.1
        target = {"class_labels": torch.randint(0, num_labels, (n,), generator=g), "boxes": torch.cat([center, box_size], -1)}
        if with_masks:
            target["masks"] = (torch.rand(n, size, size, generator=g) > 0.5).float()
        labels.append(target)
    return labels


def image_inputs(size: int = SIZE, seed: int = 0) -> dict:
    g = torch.Generator().manual_seed(seed)
    pixel_mask = torch.ones(BATCH, size, size, dtype=torch.long)
    # The second image is padded on the right and at the bottom, enough to mask positions of the
    # coarsest (stride 32) feature map too.
    pixel_mask[-1, :, size * 3 // 8 :] = 0
    pixel_mask[-1, size * 5 // 8 :, :] = 0
    return {"pixel_values": torch.randn(BATCH, 3, size, size, generator=g), "pixel_mask": pixel_mask}


def to_numpy_labels(labels: list[dict]) -> list[dict]:
    return [{k: v.numpy() for k, v in t.items()} for t in labels]


def diff(a, b) -> float:
    a = a.detach().numpy() if isinstance(a, torch.Tensor) else np.asarray(a)
    b = b.detach().numpy() if isinstance(b, torch.Tensor) else np.asarray(b)
    assert a.shape == b.shape, f"shapes {a.shape} vs {b.shape}"
    return float(np.abs(a - b).max())


def pt_and_flax(tmp_path, pt_class, flax_class, config, seed=0):
    torch.manual_seed(seed)
    pt_model = pt_class(config).eval()
    with torch.no_grad():
        randomize_buffers(pt_model, seed)
    pt_model.save_pretrained(tmp_path / "pt")
    flax_model, info = flax_class.from_pretrained(tmp_path / "pt", from_pt=True, output_loading_info=True)
    assert info["missing_keys"] == [] and info["unexpected_keys"] == [] and info["mismatched_keys"] == []
    return pt_model, flax_model


CASES = {
    # name: (PyTorch class, Flax class, config factory, image size)
    "model-sine": (DetrModel, FlaxDetrModel, lambda: tiny_config(), SIZE),
    "detection-learned": (DetrForObjectDetection, FlaxDetrForObjectDetection, lambda: tiny_config(position_embedding_type="learned"), SIZE),
    "segmentation-sine": (DetrForSegmentation, FlaxDetrForSegmentation, lambda: tiny_config(), SIZE),
    "detection-timm-aux": (DetrForObjectDetection, FlaxDetrForObjectDetection, lambda: timm_config(auxiliary_loss=True, decoder_layers=2), 32),
    # DC5: timm's output_stride=16, layer4 dilated instead of strided.
    "segmentation-timm-dilation": (DetrForSegmentation, FlaxDetrForSegmentation, lambda: timm_config(dilation=True), SIZE),
}


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    """Every case's PyTorch and Flax outputs (with labels for the heads), computed once."""
    out = {}
    for name, (pt_class, flax_class, make_config, size) in CASES.items():
        config = make_config()
        tmp_path = tmp_path_factory.mktemp(name)
        pt_model, flax_model = pt_and_flax(tmp_path, pt_class, flax_class, config)
        inputs = image_inputs(size)
        labels = None
        if pt_class is not DetrModel:
            labels = make_labels(config.num_labels, pt_class is DetrForSegmentation, size)
        flags = {"output_attentions": True, "output_hidden_states": True} if name == "model-sine" else {}
        with torch.no_grad():
            pt_out = pt_model(**inputs, labels=labels, **flags) if labels is not None else pt_model(**inputs, **flags)
        flax_inputs = {k: v.numpy() for k, v in inputs.items()} | flags
        if labels is not None:
            flax_inputs["labels"] = to_numpy_labels(labels)
        flax_out = flax_model(**flax_inputs)
        out[name] = (pt_model, flax_model, pt_out, flax_out, tmp_path)
    return out


@pytest.mark.parametrize("name", list(CASES))
def test_outputs_match_pytorch(results, name):
    _, _, pt_out, flax_out, _ = results[name]
    fields = ["last_hidden_state", "encoder_last_hidden_state"]
    if hasattr(flax_out, "logits"):
        fields += ["logits", "pred_boxes"]
    if hasattr(flax_out, "pred_masks"):
        fields.append("pred_masks")
        assert flax_out.pred_masks.shape == (BATCH, 5, SIZE // 4, SIZE // 4)
    if name == "model-sine":
        fields += ["encoder_attentions", "encoder_hidden_states", "decoder_attentions", "cross_attentions", "decoder_hidden_states"]
    for field in fields:
        pt_value, flax_value = pt_out[field], flax_out[field]
        if isinstance(pt_value, tuple):
            assert len(pt_value) == len(flax_value), field
            assert max(diff(a, b) for a, b in zip(pt_value, flax_value)) < TOL, field
        else:
            assert diff(pt_value, flax_value) < TOL, field


@pytest.mark.parametrize("name", [n for n, case in CASES.items() if case[0] is not DetrModel])
def test_loss_matches_pytorch(results, name):
    _, _, pt_out, flax_out, _ = results[name]
    assert diff(pt_out.loss, flax_out.loss) < TOL
    assert set(pt_out.loss_dict) == set(flax_out.loss_dict)
    for key, value in pt_out.loss_dict.items():
        assert diff(value, flax_out.loss_dict[key]) < TOL, key
    if name == "segmentation-sine":
        assert {"loss_mask", "loss_dice"} <= set(flax_out.loss_dict)
    if name == "detection-timm-aux":
        assert {"loss_ce_0", "loss_bbox_0", "loss_giou_0"} <= set(flax_out.loss_dict)


def test_dilation_last_feature_map_has_stride_16(results):
    _, flax_model, pt_out, flax_out, _ = results["segmentation-timm-dilation"]
    assert flax_out.encoder_last_hidden_state.shape == (BATCH, (SIZE // 16) ** 2, 16)  # 4x4 positions, not 2x2
    layer4 = flax_model.params["detr"]["model"]["backbone"]["conv_encoder"]["model"]["layer4"]
    assert set(layer4) == {"0", "1"} and "downsample" in layer4["0"]  # the 1x1 shortcut stays: 256 -> 512 channels


def test_msgpack_loads_into_pytorch(results, tmp_path):
    """Flax save_pretrained (flax_model.msgpack) -> our PyTorch from_flax=True: the same tensors, both ResNet layouts."""
    for name in ("segmentation-sine", "detection-timm-aux"):
        pt_model, flax_model, _, _, _ = results[name]
        flax_model.save_pretrained(tmp_path / name)
        assert (tmp_path / name / "flax_model.msgpack").exists()
        reloaded, info = type(pt_model).from_pretrained(tmp_path / name, from_flax=True, output_loading_info=True)
        assert info["missing_keys"] == [] and info["unexpected_keys"] == []
        expected = pt_model.state_dict()
        for key, tensor in reloaded.state_dict().items():
            assert torch.equal(tensor, expected[key]), key


def test_interpolation_matches_torch():
    x = torch.randn(2, 3, 5, 7)
    for size in ((10, 14), (3, 4), (8, 11)):
        nearest = torch.nn.functional.interpolate(x, size=size, mode="nearest")
        ours = interpolate_nearest(jnp.asarray(x.numpy()), size, axes=(2, 3))
        assert diff(nearest, ours) == 0.0
        bilinear = torch.nn.functional.interpolate(x, size=size, mode="bilinear", align_corners=False)
        assert diff(bilinear, interpolate_bilinear(jnp.asarray(x.numpy()), size)) < 1e-5


def test_auto_class_resolves():
    from polyformers import FlaxAutoModel, FlaxAutoModelForObjectDetection

    config = tiny_config()
    assert type(FlaxAutoModelForObjectDetection.from_config(config, _do_init=False)) is FlaxDetrForObjectDetection
    assert type(FlaxAutoModel.from_config(config, _do_init=False)) is FlaxDetrModel


def rectangles(num_images: int, size: int, num_labels: int, seed: int) -> tuple[np.ndarray, list[dict]]:
    """Images with one or two coloured rectangles on grey; the colour is the class."""
    rng = np.random.default_rng(seed)
    colours = np.eye(3, dtype=np.float32)[:num_labels] * 2 - 1
    images = np.zeros((num_images, 3, size, size), np.float32)
    labels = []
    for i in range(num_images):
        classes, boxes = [], []
        for _ in range(rng.integers(1, 3)):
            w, h = rng.integers(size // 4, size // 2, 2)
            x0, y0 = rng.integers(0, size - w), rng.integers(0, size - h)
            c = int(rng.integers(num_labels))
            images[i, :, y0 : y0 + h, x0 : x0 + w] = colours[c][:, None, None]
            classes.append(c)
            boxes.append([(x0 + w / 2) / size, (y0 + h / 2) / size, w / size, h / size])
        labels.append({"class_labels": np.array(classes), "boxes": np.array(boxes, np.float32)})
    return images, labels


def test_training_lowers_the_loss():
    import optax

    config = tiny_config()
    model = FlaxDetrForObjectDetection(config, _do_init=False)
    params = jax.jit(model.init_weights, static_argnames="input_shape")(jax.random.PRNGKey(0), input_shape=(1, 3, SIZE, SIZE))
    images, labels = rectangles(4, SIZE, config.num_labels, seed=0)
    pixel_values = jnp.transpose(jnp.asarray(images), (0, 2, 3, 1))  # NHWC, as the module takes it
    pixel_mask = jnp.ones(pixel_values.shape[:3], "i4")
    optimizer = optax.adam(1e-2)
    opt_state = optimizer.init(params)

    @jax.jit
    def step(params, opt_state, indices):
        def loss_fn(params):
            outputs = model.module.apply({"params": params}, pixel_values, pixel_mask)
            return detr_loss_from_indices(config, outputs, labels, indices)[0]

        loss, grads = jax.value_and_grad(loss_fn)(params)
        updates, opt_state = optimizer.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), opt_state, loss

    losses = []
    for _ in range(15):
        outputs = model(images, params=params)  # match on the current predictions, outside jit
        indices = hungarian_match(config, outputs.logits, outputs.pred_boxes, labels)
        params, opt_state, loss = step(params, opt_state, indices)
        losses.append(float(loss))
    assert np.isfinite(losses).all()
    assert losses[-1] < 0.9 * losses[0], losses


def test_flax_module_does_not_import_torch():
    import subprocess
    import sys

    code = "import sys, polyformers_detr.modeling_flax_detr; assert 'torch' not in sys.modules, 'torch was imported'"
    subprocess.run([sys.executable, "-c", code], check=True)


def test_pt_checkpoint_in_other_spellings_loads(tmp_path):
    """A segmentation checkpoint, in the timm ResNet layout and Transformers 5 names, into a native-layout Flax detection model."""
    from polyformers.conversion import flatten_dict, flax_key_to_pt, to_pt_layout
    from polyformers_detr.checkpoint_names import native_to_timm_key

    config = tiny_config()
    torch.manual_seed(0)
    pt_model = DetrForSegmentation(config)
    with torch.no_grad():
        randomize_buffers(pt_model, 0)
    reference = {k: v.numpy() for k, v in pt_model.state_dict().items()}
    backbone = "detr.model.backbone.conv_encoder.model."
    foreign = {}
    for key, value in reference.items():
        if key.startswith(backbone):
            key = "detr.model.backbone.model." + native_to_timm_key(key[len(backbone) :])  # v5 place, timm layout
        foreign[key.replace(".out_proj.", ".o_proj.")] = value  # v5 attention output name
    model, params, info = FlaxDetrForObjectDetection.from_pretrained(
        None, config=config, state_dict=foreign, from_pt=True, output_loading_info=True, _do_init=False
    )
    assert info["missing_keys"] == []
    assert all(k.startswith(("mask_head.", "bbox_attention.")) for k in info["unexpected_keys"]), info["unexpected_keys"]
    for path, array in flatten_dict(params).items():
        name, layout = flax_key_to_pt(path, array.ndim)
        expected = reference["detr." + name]
        assert np.array_equal(to_pt_layout(np.asarray(array), layout), expected), name
