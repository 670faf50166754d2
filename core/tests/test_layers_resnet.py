"""The shared ResNet backbone (``polyformers.layers``): schedule and names without a framework,
then PyTorch shapes and layouts, then TensorFlow and Flax against PyTorch on the same weights.

Framework parts skip when the framework is missing; nothing here imports a plugin.
"""

from __future__ import annotations

import numpy as np
import pytest

from polyformers.layers.resnet_spec import (
    ResNetSpec,
    native_to_timm_key,
    resnet_block_schedule,
    timm_to_native_key,
    to_layout_key,
)

SIZE = 64  # image side: stride 32 leaves 2x2, stride 16 leaves 4x4
TOL = 1e-5

# Tiny specs covering both layouts, both block types, dilation and downsample_in_bottleneck.
TIMM_BASIC = ResNetSpec(layout="timm", embedding_size=8, hidden_sizes=(8, 16, 16, 32), depths=(2, 1, 1, 2), layer_type="basic", out_indices=(0, 1, 2, 3, 4))
TIMM_DC5 = ResNetSpec(**{**TIMM_BASIC.__dict__, "dilation": True})
TIMM_BOTTLENECK = ResNetSpec(layout="timm", embedding_size=8, hidden_sizes=(16, 16, 32, 32), depths=(1, 2, 1, 2), out_indices=(2, 4))
NATIVE_BASIC = ResNetSpec(**{**TIMM_BASIC.__dict__, "layout": "native"})
NATIVE_BOTTLENECK = ResNetSpec(
    layout="native", embedding_size=8, hidden_sizes=(16, 16, 32, 32), depths=(1, 2, 1, 2), downsample_in_bottleneck=True,
    downsample_in_first_stage=True, out_indices=(1, 2, 3, 4),
)
SPECS = {"timm_basic": TIMM_BASIC, "timm_dc5": TIMM_DC5, "timm_bottleneck": TIMM_BOTTLENECK, "native_basic": NATIVE_BASIC, "native_bottleneck": NATIVE_BOTTLENECK}


# --- framework-free ------------------------------------------------------------------------------------


def test_block_schedule_is_timms():
    """(stride, first_dilation, dilation) per block, as timm's make_blocks gives them (output_stride 32 and 16)."""
    plain, down = (1, 1, 1), (2, 1, 1)
    assert resnet_block_schedule((3, 4, 6, 3)) == [[plain] * 3, [down] + [plain] * 3, [down] + [plain] * 5, [down] + [plain] * 2]
    assert resnet_block_schedule((2, 2, 2, 2), dilation=True) == [[plain, plain], [down, plain], [down, plain], [(1, 1, 2), (1, 2, 2)]]
    assert resnet_block_schedule((1, 1), downsample_in_first_stage=True) == [[down], [down]]


def test_key_translation_round_trips():
    for native in (
        "embedder.embedder.convolution.weight",
        "embedder.embedder.normalization.running_var",
        "encoder.stages.1.layers.0.shortcut.convolution.weight",
        "encoder.stages.1.layers.0.shortcut.normalization.bias",
        "encoder.stages.3.layers.1.layer.2.normalization.running_mean",
    ):
        assert timm_to_native_key(native_to_timm_key(native)) == native
    assert native_to_timm_key("encoder.stages.1.layers.0.shortcut.normalization.bias") == "layer2.0.downsample.1.bias"
    assert native_to_timm_key("encoder.stages.0.layers.1.layer.1.convolution.weight") == "layer1.1.conv2.weight"
    assert timm_to_native_key("layer4.2.conv3.weight") == "encoder.stages.3.layers.2.layer.2.convolution.weight"
    assert to_layout_key("conv1.weight", "timm") == "conv1.weight"  # already in the layout: unchanged
    assert to_layout_key("conv1.weight", "native") == "embedder.embedder.convolution.weight"
    with pytest.raises(ValueError, match="layout must be one of"):
        to_layout_key("conv1.weight", "keras")


def test_spec_validates_and_describes():
    assert TIMM_BASIC.channels == [8, 8, 16, 16, 32] and NATIVE_BOTTLENECK.stage_strides() == [2, 2, 2, 2]
    assert ResNetSpec(layout="timm", hidden_sizes=[1, 2], depths=[1, 1]).hidden_sizes == (1, 2)  # lists become tuples
    assert hash(TIMM_BASIC) == hash(ResNetSpec(**TIMM_BASIC.__dict__))
    resnet50 = ResNetSpec.from_timm_name("resnet50", num_channels=1)
    assert (resnet50.layer_type, resnet50.depths, resnet50.hidden_sizes, resnet50.num_channels) == ("bottleneck", (3, 4, 6, 3), (256, 512, 1024, 2048), 1)
    with pytest.raises(ValueError, match="needs a timm backbone"):
        ResNetSpec(layout="native", dilation=True)
    with pytest.raises(ValueError, match="got 2 hidden_sizes"):
        ResNetSpec(layout="timm", hidden_sizes=(8, 16), depths=(1, 1, 1))
    with pytest.raises(ValueError, match="layer_type"):
        ResNetSpec(layout="timm", layer_type="dense")
    with pytest.raises(ValueError, match="supported"):
        ResNetSpec.from_timm_name("efficientnet_b0")


def test_layers_package_imports_no_framework():
    import subprocess
    import sys

    code = "import sys, polyformers.layers, polyformers.layers.resnet_spec; print(sorted({m.split('.')[0] for m in sys.modules} & {'torch', 'tensorflow', 'jax', 'flax'}))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == "[]"


# --- PyTorch ---------------------------------------------------------------------------------------------


def _torch_backbone(spec: ResNetSpec, seed: int = 0):
    """The PyTorch backbone with random weights and random frozen-norm statistics (so the norms matter)."""
    torch = pytest.importorskip("torch")
    from polyformers.layers.resnet import FrozenBatchNorm2d, build_resnet

    torch.manual_seed(seed)
    model = build_resnet(spec).eval()
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, FrozenBatchNorm2d):
                n = module.weight.numel()
                module.weight.copy_(torch.rand(n) + 0.5)
                module.bias.copy_(torch.randn(n) * 0.1)
                module.running_mean.copy_(torch.randn(n) * 0.1)
                module.running_var.copy_(torch.rand(n) + 0.5)
    return model


def _pixels(channels: int = 3, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((2, channels, SIZE, SIZE)).astype(np.float32)  # (B, C, H, W)


def _torch_features(model, pixels: np.ndarray) -> list[np.ndarray]:
    import torch

    with torch.no_grad():
        return [f.numpy() for f in model(torch.from_numpy(pixels))]


@pytest.mark.parametrize(
    "spec, shapes",
    [
        # timm: index 0 is the stem before max-pooling (32x32), stages at strides 4..32
        (TIMM_BASIC, [(2, 8, 32, 32), (2, 8, 16, 16), (2, 16, 8, 8), (2, 16, 4, 4), (2, 32, 2, 2)]),
        # DC5: the last stage keeps stride 16
        (TIMM_DC5, [(2, 8, 32, 32), (2, 8, 16, 16), (2, 16, 8, 8), (2, 16, 4, 4), (2, 32, 4, 4)]),
        (TIMM_BOTTLENECK, [(2, 16, 8, 8), (2, 32, 2, 2)]),
        # native: index 0 is the stem after max-pooling (16x16)
        (NATIVE_BASIC, [(2, 8, 16, 16), (2, 8, 16, 16), (2, 16, 8, 8), (2, 16, 4, 4), (2, 32, 2, 2)]),
        (NATIVE_BOTTLENECK, [(2, 16, 8, 8), (2, 16, 4, 4), (2, 32, 2, 2), (2, 32, 1, 1)]),
    ],
    ids=["timm_basic", "timm_dc5", "timm_bottleneck", "native_basic", "native_bottleneck"],
)
def test_torch_feature_shapes(spec, shapes):
    model = _torch_backbone(spec)
    assert [f.shape for f in _torch_features(model, _pixels())] == shapes
    assert spec.channels == [s[1] for s in shapes]


def test_torch_parameter_names_are_transformers():
    timm, native = _torch_backbone(TIMM_BASIC), _torch_backbone(NATIVE_BASIC)
    timm_names, native_names = set(timm.state_dict()), set(native.state_dict())
    assert {"conv1.weight", "bn1.running_var", "layer2.0.downsample.0.weight", "layer2.0.downsample.1.bias", "layer1.1.conv2.weight"} <= timm_names
    assert {
        "embedder.embedder.convolution.weight",
        "encoder.stages.1.layers.0.shortcut.normalization.running_mean",
        "encoder.stages.0.layers.1.layer.1.convolution.weight",
    } <= native_names
    assert {native_to_timm_key(k) for k in native_names} == timm_names


def test_torch_layouts_compute_the_same_network():
    """Native weights renamed to timm's names give the same stage outputs (stem indices differ by the max-pool)."""
    import torch

    native = _torch_backbone(NATIVE_BASIC)
    timm = _torch_backbone(TIMM_BASIC, seed=1)
    timm.load_state_dict({native_to_timm_key(k): v for k, v in native.state_dict().items()})
    pixels = _pixels()
    ours, theirs = _torch_features(native, pixels), _torch_features(timm, pixels)
    for a, b in zip(ours[1:], theirs[1:]):
        assert np.abs(a - b).max() < TOL
    with torch.no_grad():
        assert np.abs(torch.nn.functional.max_pool2d(torch.from_numpy(theirs[0]), 3, 2, 1).numpy() - ours[0]).max() < TOL


def test_torch_native_dilation_is_refused():
    pytest.importorskip("torch")
    from polyformers.layers.resnet import ResNetBackbone

    with pytest.raises(ValueError, match="needs a timm backbone"):
        ResNetBackbone(ResNetSpec(layout="native", dilation=True))


# --- TensorFlow and Flax against PyTorch ------------------------------------------------------------------


@pytest.mark.parametrize("name", list(SPECS))
def test_tf_equals_torch(name):
    spec = SPECS[name]
    pt = _torch_backbone(spec)
    tf = pytest.importorskip("tensorflow")
    from polyformers.conversion import from_pt_layout, tf_name_to_pt
    from polyformers.layers.resnet_tf import build_tf_resnet

    pixels = _pixels()
    model = build_tf_resnet(spec, name="model")
    nhwc = tf.constant(pixels.transpose(0, 2, 3, 1))
    model(nhwc)  # creates the variables
    state = {k: v.numpy() for k, v in pt.state_dict().items()}
    assert len(model.variables) == len(state)
    for variable in model.variables:
        pt_name, layout = tf_name_to_pt(variable.path, len(variable.shape))  # drops the "model" scope
        variable.assign(from_pt_layout(state.pop(pt_name), layout))
    assert state == {}
    for a, b in zip(_torch_features(pt, pixels), model(nhwc)):
        assert np.abs(a - b.numpy().transpose(0, 3, 1, 2)).max() < TOL


@pytest.mark.parametrize("name", list(SPECS))
def test_flax_equals_torch(name):
    spec = SPECS[name]
    pt = _torch_backbone(spec)
    jax = pytest.importorskip("jax")
    pytest.importorskip("flax")
    from polyformers.conversion import flatten_dict, flax_key_to_pt, from_pt_layout, unflatten_dict
    from polyformers.layers.resnet_flax import build_flax_resnet

    pixels = _pixels()
    nhwc = pixels.transpose(0, 2, 3, 1)
    module = build_flax_resnet(spec)
    params = module.init(jax.random.PRNGKey(0), nhwc)["params"]
    state = {k: v.numpy() for k, v in pt.state_dict().items()}
    loaded = {}
    for path, leaf in flatten_dict(params).items():
        pt_name, layout = flax_key_to_pt(path, leaf.ndim)
        loaded[path] = from_pt_layout(state.pop(pt_name), layout)
        assert loaded[path].shape == leaf.shape, pt_name
    assert state == {}
    features = module.apply({"params": unflatten_dict(loaded)}, nhwc)
    for a, b in zip(_torch_features(pt, pixels), features):
        assert np.abs(a - np.asarray(b).transpose(0, 3, 1, 2)).max() < TOL
