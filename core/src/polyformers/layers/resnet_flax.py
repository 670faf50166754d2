"""The ResNet feature backbone of :mod:`polyformers.layers.resnet` in JAX/Flax (linen), both layouts.

Parameter paths join with "." into the PyTorch names (through
:func:`polyformers.conversion.flax_key_to_pt`): timm's ``conv1``/``layer1/0/conv1``/``layer1/0/downsample/0``
or Transformers' own ``embedder/embedder/convolution``/``encoder/stages/0/layers/0/layer/0/...``.
The module names are the checkpoint format: keep them. The frozen batch norm keeps its statistics
as *parameters* named ``scale``, ``bias``, ``mean`` and ``var`` (-> ``weight``, ``bias``,
``running_mean``, ``running_var``) behind ``stop_gradient``: the core's Flax model carries the
``params`` collection only, and these are buffers in PyTorch, never trained.

Feature maps are NHWC (B, H, W, C); padding is explicit, as PyTorch's. Importing this module
imports JAX and Flax.
"""

from __future__ import annotations

from typing import Any, Sequence

import jax
from flax import linen as nn

from ..activations_flax import ACT2FN
from .resnet_spec import ResNetSpec, native_dilation_error, resnet_block_schedule

TORCH_NORM_EPS = 1e-5  # PyTorch's BatchNorm default

__all__ = ["FlaxFrozenBatchNorm2d", "FlaxResNetBackbone", "FlaxTimmResNet", "build_flax_resnet", "conv2d", "max_pool_3x3_s2"]


class FlaxFrozenBatchNorm2d(nn.Module):
    """Batch norm with fixed statistics and affine terms (params ``scale``, ``bias``, ``mean``, ``var``; never trained)."""

    features: int
    eps: float = TORCH_NORM_EPS

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        weight = jax.lax.stop_gradient(self.param("scale", nn.initializers.ones, (self.features,)))
        bias = jax.lax.stop_gradient(self.param("bias", nn.initializers.zeros, (self.features,)))
        mean = jax.lax.stop_gradient(self.param("mean", nn.initializers.zeros, (self.features,)))
        var = jax.lax.stop_gradient(self.param("var", nn.initializers.ones, (self.features,)))
        scale = weight * jax.lax.rsqrt(var + self.eps)
        return x * scale + (bias - mean * scale)


def conv2d(
    features: int,
    kernel: int,
    stride: int = 1,
    use_bias: bool = False,
    name: str | None = None,
    kernel_init: Any = None,
    dilation: int = 1,
) -> nn.Conv:
    """A square ``nn.Conv`` padded as PyTorch's ``padding=dilation * (kernel // 2)`` (He-normal, fan-out init by default)."""
    # Explicit symmetric padding: "SAME" pads strided convolutions differently from PyTorch.
    pad = dilation * (kernel // 2)
    return nn.Conv(
        features,
        (kernel, kernel),
        strides=(stride, stride),
        padding=((pad, pad), (pad, pad)),
        kernel_dilation=(dilation, dilation),
        use_bias=use_bias,
        kernel_init=kernel_init or nn.initializers.variance_scaling(2.0, "fan_out", "normal"),
        name=name,
    )


def max_pool_3x3_s2(x: jax.Array) -> jax.Array:
    """PyTorch's ``MaxPool2d(3, stride=2, padding=1)`` on NHWC (the padding is -inf, as PyTorch's)."""
    return nn.max_pool(x, (3, 3), strides=(2, 2), padding=((1, 1), (1, 1)))


# --- Transformers' own ResNetBackbone layout: embedder/embedder/{convolution,normalization}, encoder/stages/N/layers/M/...


class FlaxResNetConvLayer(nn.Module):
    features: int
    kernel_size: int = 3
    stride: int = 1
    activation: str | None = "relu"

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        x = conv2d(self.features, self.kernel_size, self.stride, name="convolution")(x)
        x = FlaxFrozenBatchNorm2d(self.features, name="normalization")(x)
        return ACT2FN[self.activation](x) if self.activation is not None else x


class FlaxResNetShortCut(nn.Module):
    features: int
    stride: int

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        x = conv2d(self.features, 1, self.stride, name="convolution")(x)
        return FlaxFrozenBatchNorm2d(self.features, name="normalization")(x)


class FlaxResNetLayerStack(nn.Module):
    """The ``layer`` sequence of a residual block: conv layers named ``0``, ``1``(, ``2``)."""

    specs: Sequence[tuple[int, int, int, str | None]]  # (features, kernel, stride, activation)

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        for i, (features, kernel, stride, activation) in enumerate(self.specs):
            x = FlaxResNetConvLayer(features, kernel, stride, activation, name=str(i))(x)
        return x


class FlaxResNetBlock(nn.Module):
    """Basic (two 3x3) or bottleneck (1x1 reduce, 3x3, 1x1 expand) residual block, Transformers' names."""

    in_channels: int
    out_channels: int
    stride: int
    layer_type: str
    activation: str
    downsample_in_bottleneck: bool = False

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        o, s, act = self.out_channels, self.stride, self.activation
        shortcut = x
        if self.in_channels != o or s != 1:
            shortcut = FlaxResNetShortCut(o, s, name="shortcut")(x)
        if self.layer_type == "bottleneck":
            r = o // 4
            first, second = (s, 1) if self.downsample_in_bottleneck else (1, s)
            specs = ((r, 1, first, act), (r, 3, second, act), (o, 1, 1, None))
        else:
            specs = ((o, 3, s, act), (o, 3, 1, None))
        return ACT2FN[act](FlaxResNetLayerStack(specs, name="layer")(x) + shortcut)


class FlaxResNetStage(nn.Module):
    """One stage: its blocks sit under ``layers``."""

    spec: ResNetSpec
    in_channels: int
    out_channels: int
    stride: int
    depth: int

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        return FlaxResNetStageLayers(self.spec, self.in_channels, self.out_channels, self.stride, self.depth, name="layers")(x)


class FlaxResNetStageLayers(nn.Module):
    spec: ResNetSpec
    in_channels: int
    out_channels: int
    stride: int
    depth: int

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        spec = self.spec
        for i in range(self.depth):
            in_channels, stride = (self.in_channels, self.stride) if i == 0 else (self.out_channels, 1)
            x = FlaxResNetBlock(
                in_channels, self.out_channels, stride, spec.layer_type, spec.hidden_act, spec.downsample_in_bottleneck, name=str(i)
            )(x)
        return x


class FlaxResNetStages(nn.Module):
    spec: ResNetSpec

    @nn.compact
    def __call__(self, x: jax.Array) -> list[jax.Array]:
        spec = self.spec
        in_sizes = [spec.embedding_size, *spec.hidden_sizes[:-1]]
        features = []
        for n, (i, o, s, d) in enumerate(zip(in_sizes, spec.hidden_sizes, spec.stage_strides(), spec.depths)):
            x = FlaxResNetStage(spec, i, o, s, d, name=str(n))(x)
            features.append(x)
        return features


class FlaxResNetEncoder(nn.Module):
    spec: ResNetSpec

    @nn.compact
    def __call__(self, x: jax.Array) -> list[jax.Array]:
        return FlaxResNetStages(self.spec, name="stages")(x)


class FlaxResNetEmbeddings(nn.Module):
    spec: ResNetSpec

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        x = FlaxResNetConvLayer(self.spec.embedding_size, 7, 2, self.spec.hidden_act, name="embedder")(x)
        return max_pool_3x3_s2(x)


class FlaxResNetBackbone(nn.Module):
    """Transformers' ``ResNetBackbone`` layout; returns the feature maps of ``out_indices`` (0 = stem, after pooling)."""

    spec: ResNetSpec

    @nn.compact
    def __call__(self, pixel_values: jax.Array) -> list[jax.Array]:
        if self.spec.dilation:
            raise native_dilation_error()
        stem = FlaxResNetEmbeddings(self.spec, name="embedder")(pixel_values)
        features = [stem, *FlaxResNetEncoder(self.spec, name="encoder")(stem)]
        return [features[i] for i in self.spec.out_indices]


# --- timm's layout: conv1, bn1, layer1..layerN / M / {conv1, bn1, ..., downsample/0, downsample/1}


class FlaxTimmDownsample(nn.Module):
    features: int
    stride: int

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        x = conv2d(self.features, 1, self.stride, name="0")(x)
        return FlaxFrozenBatchNorm2d(self.features, name="1")(x)


class FlaxTimmBlock(nn.Module):
    in_channels: int
    out_channels: int
    stride: int
    layer_type: str
    first_dilation: int = 1  # of the first 3x3 convolution (the one that may stride)
    dilation: int = 1  # of the basic block's second 3x3 convolution

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        o, s = self.out_channels, self.stride
        if self.layer_type == "bottleneck":  # (features, kernel, stride, dilation)
            w = o // 4
            specs = ((w, 1, 1, 1), (w, 3, s, self.first_dilation), (o, 1, 1, 1))
        else:
            specs = ((o, 3, s, self.first_dilation), (o, 3, 1, self.dilation))
        out = x
        for n, (features, kernel, stride, dilation) in enumerate(specs, start=1):
            out = conv2d(features, kernel, stride, name=f"conv{n}", dilation=dilation)(out)
            out = FlaxFrozenBatchNorm2d(features, name=f"bn{n}")(out)
            if n < len(specs):
                out = nn.relu(out)
        shortcut = x
        if self.in_channels != o or s != 1:
            shortcut = FlaxTimmDownsample(o, s, name="downsample")(x)
        return nn.relu(out + shortcut)


class FlaxTimmLayer(nn.Module):
    in_channels: int
    out_channels: int
    blocks: Sequence[tuple[int, int, int]]  # per block (stride, first_dilation, dilation)
    layer_type: str

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        for i, (stride, first_dilation, dilation) in enumerate(self.blocks):
            in_channels = self.in_channels if i == 0 else self.out_channels
            x = FlaxTimmBlock(in_channels, self.out_channels, stride, self.layer_type, first_dilation, dilation, name=str(i))(x)
        return x


class FlaxTimmResNet(nn.Module):
    """timm's ``resnetNN`` (``features_only``): index 0 of the features is the stem before max-pooling."""

    spec: ResNetSpec

    @nn.compact
    def __call__(self, pixel_values: jax.Array) -> list[jax.Array]:
        spec = self.spec
        stem = conv2d(spec.embedding_size, 7, 2, name="conv1")(pixel_values)
        stem = nn.relu(FlaxFrozenBatchNorm2d(spec.embedding_size, name="bn1")(stem))
        features = [stem]
        x = max_pool_3x3_s2(stem)
        in_sizes = [spec.embedding_size, *spec.hidden_sizes[:-1]]
        schedule = resnet_block_schedule(spec.depths, spec.downsample_in_first_stage, spec.dilation)
        for n, (i, o, blocks) in enumerate(zip(in_sizes, spec.hidden_sizes, schedule), start=1):
            x = FlaxTimmLayer(i, o, tuple(blocks), spec.layer_type, name=f"layer{n}")(x)
            features.append(x)
        return [features[i] for i in spec.out_indices]


def build_flax_resnet(spec: ResNetSpec, **kwargs: Any) -> nn.Module:
    """The backbone in ``spec.layout`` (``kwargs``, e.g. ``name``, go to the module)."""
    return FlaxTimmResNet(spec, **kwargs) if spec.layout == "timm" else FlaxResNetBackbone(spec, **kwargs)
