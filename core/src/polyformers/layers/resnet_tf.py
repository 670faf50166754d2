"""The ResNet feature backbone of :mod:`polyformers.layers.resnet` in TensorFlow (Keras 3), both layouts.

Layers are named so that :func:`polyformers.conversion.tf_name_to_pt` maps every variable to the
PyTorch name with the standard table alone: under a model's prefix, ``embedder/embedder/convolution/kernel:0``
-> ``embedder.embedder.convolution.weight`` (native), ``layer1_._0/conv1/kernel:0`` ->
``layer1.0.conv1.weight`` (timm); list items are ``name_._N`` (Transformers' TF convention,
read as ``name.N``). The layer names are the checkpoint format: keep them.

Feature maps are NHWC (B, H, W, C). Padding of convolutions and max-pooling is explicit (PyTorch
pads both sides alike, Keras' "same" does not for stride 2); the frozen batch norm follows
PyTorch's formula (epsilon before the rsqrt). Importing this module imports TensorFlow.
"""

from __future__ import annotations

from typing import Any

import keras
import tensorflow as tf

from ..activations_tf import get_tf_activation
from .resnet_spec import ResNetSpec, native_dilation_error, resnet_block_schedule

TORCH_NORM_EPS = 1e-5  # PyTorch's BatchNorm default

__all__ = [
    "TFBuiltOnCall",
    "TFFrozenBatchNorm2d",
    "TFPaddedConv2D",
    "TFResNetBackbone",
    "TFTimmResNet",
    "build_tf_resnet",
    "list_name",
    "max_pool_3x3_s2",
]


def list_name(name: str, index: int) -> str:
    """The Keras name of item ``index`` of list ``name``: ``name_._index``, read as ``name.index`` by tf_name_to_pt."""
    return f"{name}_._{index}"


class TFPaddedConv2D(keras.layers.Conv2D):
    """A Conv2D padded like PyTorch's ``padding=p``: ``p`` zeros on every side, then a valid convolution."""

    def __init__(
        self, filters: int, kernel_size: int, strides: int = 1, padding: int = 0, use_bias: bool = True, dilation_rate: int = 1, **kwargs: Any
    ):
        super().__init__(filters, kernel_size, strides=strides, padding="valid", use_bias=use_bias, dilation_rate=dilation_rate, **kwargs)
        self.pad = padding

    def compute_output_shape(self, input_shape: Any) -> Any:
        padded = [input_shape[0], *(None if s is None else s + 2 * self.pad for s in input_shape[1:3]), input_shape[3]]
        return super().compute_output_shape(padded)

    def call(self, inputs: tf.Tensor) -> tf.Tensor:
        if self.pad:
            inputs = tf.pad(inputs, [[0, 0], [self.pad, self.pad], [self.pad, self.pad], [0, 0]])
        return super().call(inputs)


class TFFrozenBatchNorm2d(keras.layers.Layer):
    """Batch norm with fixed statistics and affine parameters, all four non-trainable.

    ``gamma``/``beta``/``moving_mean``/``moving_variance`` are read as PyTorch's ``weight``/``bias``/
    ``running_mean``/``running_var``. The epsilon goes before the rsqrt, as in PyTorch's version.
    """

    def __init__(self, epsilon: float = TORCH_NORM_EPS, **kwargs: Any):
        super().__init__(**kwargs)
        self.epsilon = epsilon

    def build(self, input_shape: Any) -> None:
        channels = input_shape[-1]
        self.gamma = self.add_weight(shape=(channels,), initializer="ones", trainable=False, name="gamma")
        self.beta = self.add_weight(shape=(channels,), initializer="zeros", trainable=False, name="beta")
        self.moving_mean = self.add_weight(shape=(channels,), initializer="zeros", trainable=False, name="moving_mean")
        self.moving_variance = self.add_weight(shape=(channels,), initializer="ones", trainable=False, name="moving_variance")

    def call(self, x: tf.Tensor) -> tf.Tensor:
        scale = self.gamma * tf.math.rsqrt(self.moving_variance + self.epsilon)
        bias = self.beta - self.moving_mean * scale
        return x * scale + bias


def max_pool_3x3_s2(x: tf.Tensor) -> tf.Tensor:
    """PyTorch's ``MaxPool2d(3, stride=2, padding=1)``: -inf padding on every side."""
    x = tf.pad(x, [[0, 0], [1, 1], [1, 1], [0, 0]], constant_values=float("-inf"))
    return tf.nn.max_pool2d(x, ksize=3, strides=2, padding="VALID")


class TFBuiltOnCall(keras.layers.Layer):
    """A container whose sublayers create their variables on first call, from the shapes they see
    (the backbone's channels follow the image's); its own build has nothing to do."""

    def build(self, input_shape: Any = None) -> None:
        pass


# --- Transformers' own ResNet layout ---------------------------------------------------------------


class TFResNetConvLayer(TFBuiltOnCall):
    def __init__(self, out_channels: int, kernel_size: int = 3, stride: int = 1, activation: str | None = "relu", **kwargs: Any):
        super().__init__(**kwargs)
        self.convolution = TFPaddedConv2D(out_channels, kernel_size, strides=stride, padding=kernel_size // 2, use_bias=False, name="convolution")
        self.normalization = TFFrozenBatchNorm2d(name="normalization")
        self.activation = get_tf_activation(activation) if activation is not None else None

    def call(self, x: tf.Tensor) -> tf.Tensor:
        x = self.normalization(self.convolution(x))
        return self.activation(x) if self.activation is not None else x


class TFResNetShortCut(TFBuiltOnCall):
    def __init__(self, out_channels: int, stride: int, **kwargs: Any):
        super().__init__(**kwargs)
        self.convolution = TFPaddedConv2D(out_channels, 1, strides=stride, use_bias=False, name="convolution")
        self.normalization = TFFrozenBatchNorm2d(name="normalization")

    def call(self, x: tf.Tensor) -> tf.Tensor:
        return self.normalization(self.convolution(x))


class TFResNetLayer(TFBuiltOnCall):
    """Transformers' ResNet basic or bottleneck layer: ``shortcut`` and ``layer_._0``.. convolutions."""

    def __init__(self, spec: ResNetSpec, in_channels: int, out_channels: int, stride: int, **kwargs: Any):
        super().__init__(**kwargs)
        act = spec.hidden_act
        self.shortcut = TFResNetShortCut(out_channels, stride, name="shortcut") if in_channels != out_channels or stride != 1 else None
        if spec.layer_type == "bottleneck":
            reduced = out_channels // 4
            in_bottleneck = spec.downsample_in_bottleneck
            convs = [
                (reduced, 1, stride if in_bottleneck else 1, act),
                (reduced, 3, 1 if in_bottleneck else stride, act),
                (out_channels, 1, 1, None),
            ]
        else:
            convs = [(out_channels, 3, stride, act), (out_channels, 3, 1, None)]
        self.layer = [TFResNetConvLayer(c, k, s, a, name=list_name("layer", i)) for i, (c, k, s, a) in enumerate(convs)]
        self.activation = get_tf_activation(act)

    def call(self, x: tf.Tensor) -> tf.Tensor:
        residual = x if self.shortcut is None else self.shortcut(x)
        for conv in self.layer:
            x = conv(x)
        return self.activation(x + residual)


class TFResNetStage(TFBuiltOnCall):
    def __init__(self, spec: ResNetSpec, in_channels: int, out_channels: int, stride: int, depth: int, **kwargs: Any):
        super().__init__(**kwargs)
        self.layers = [
            TFResNetLayer(spec, in_channels if i == 0 else out_channels, out_channels, stride if i == 0 else 1, name=list_name("layers", i))
            for i in range(depth)
        ]

    def call(self, x: tf.Tensor) -> tf.Tensor:
        for layer in self.layers:
            x = layer(x)
        return x


class TFResNetEmbeddings(TFBuiltOnCall):
    def __init__(self, spec: ResNetSpec, **kwargs: Any):
        super().__init__(**kwargs)
        self.embedder = TFResNetConvLayer(spec.embedding_size, kernel_size=7, stride=2, activation=spec.hidden_act, name="embedder")

    def call(self, x: tf.Tensor) -> tf.Tensor:
        return max_pool_3x3_s2(self.embedder(x))


class TFResNetEncoder(TFBuiltOnCall):
    def __init__(self, spec: ResNetSpec, **kwargs: Any):
        super().__init__(**kwargs)
        in_sizes = [spec.embedding_size, *spec.hidden_sizes[:-1]]
        self.stages = [
            TFResNetStage(spec, i, o, s, d, name=list_name("stages", n))
            for n, (i, o, s, d) in enumerate(zip(in_sizes, spec.hidden_sizes, spec.stage_strides(), spec.depths))
        ]

    def call(self, x: tf.Tensor) -> list[tf.Tensor]:
        """Every stage's output, in order."""
        features = []
        for stage in self.stages:
            x = stage(x)
            features.append(x)
        return features


class TFResNetBackbone(TFBuiltOnCall):
    """Transformers' ``ResNetBackbone`` layout: ``embedder/embedder/*``, ``encoder/stages_._N/layers_._M/*``."""

    def __init__(self, spec: ResNetSpec, **kwargs: Any):
        super().__init__(**kwargs)
        if spec.dilation:
            raise native_dilation_error()
        self.out_indices = list(spec.out_indices)
        self.embedder = TFResNetEmbeddings(spec, name="embedder")
        self.encoder = TFResNetEncoder(spec, name="encoder")

    def call(self, pixel_values: tf.Tensor) -> list[tf.Tensor]:
        stem = self.embedder(pixel_values)  # index 0: the stem, after max-pooling
        features = [stem, *self.encoder(stem)]
        return [features[i] for i in self.out_indices]


# --- timm's layout -------------------------------------------------------------------------------------


class TFTimmBlock(TFBuiltOnCall):
    """timm's BasicBlock or Bottleneck: ``conv1``/``bn1``.., ``downsample_._0`` / ``downsample_._1``."""

    def __init__(
        self, layer_type: str, in_channels: int, out_channels: int, stride: int = 1, first_dilation: int = 1, dilation: int = 1, **kwargs: Any
    ):
        super().__init__(**kwargs)
        if layer_type == "bottleneck":  # (channels, kernel, stride, dilation); 3x3 padding = dilation, as timm's
            width = out_channels // 4
            convs = [(width, 1, 1, 1), (width, 3, stride, first_dilation), (out_channels, 1, 1, 1)]
        else:
            convs = [(out_channels, 3, stride, first_dilation), (out_channels, 3, 1, dilation)]
        self.convs = [
            TFPaddedConv2D(c, k, strides=s, padding=d * (k // 2), dilation_rate=d, use_bias=False, name=f"conv{i + 1}")
            for i, (c, k, s, d) in enumerate(convs)
        ]
        self.bns = [TFFrozenBatchNorm2d(name=f"bn{i + 1}") for i in range(len(convs))]
        self.downsample = None
        if in_channels != out_channels or stride != 1:
            self.downsample = [
                TFPaddedConv2D(out_channels, 1, strides=stride, use_bias=False, name=list_name("downsample", 0)),
                TFFrozenBatchNorm2d(name=list_name("downsample", 1)),
            ]

    def call(self, x: tf.Tensor) -> tf.Tensor:
        shortcut = x if self.downsample is None else self.downsample[1](self.downsample[0](x))
        out = x
        for i, (conv, bn) in enumerate(zip(self.convs, self.bns)):
            out = bn(conv(out))
            if i < len(self.convs) - 1:
                out = tf.nn.relu(out)
        return tf.nn.relu(out + shortcut)


class TFTimmResNet(TFBuiltOnCall):
    """timm's ``resnetNN`` (``features_only``) layout: ``conv1``, ``bn1``, ``layer1_._0``.. (read as ``layer1.0``)."""

    def __init__(self, spec: ResNetSpec, **kwargs: Any):
        super().__init__(**kwargs)
        self.out_indices = list(spec.out_indices)
        self.conv1 = TFPaddedConv2D(spec.embedding_size, 7, strides=2, padding=3, use_bias=False, name="conv1")
        self.bn1 = TFFrozenBatchNorm2d(name="bn1")
        in_sizes = [spec.embedding_size, *spec.hidden_sizes[:-1]]
        self.stages = []
        schedule = resnet_block_schedule(spec.depths, spec.downsample_in_first_stage, spec.dilation)
        for n, (i, o, stage) in enumerate(zip(in_sizes, spec.hidden_sizes, schedule), start=1):
            # each block: (stride, first_dilation, dilation); only the first one strides or changes width
            blocks = [TFTimmBlock(spec.layer_type, i if b == 0 else o, o, *args, name=list_name(f"layer{n}", b)) for b, args in enumerate(stage)]
            self.stages.append(blocks)

    def call(self, pixel_values: tf.Tensor) -> list[tf.Tensor]:
        stem = tf.nn.relu(self.bn1(self.conv1(pixel_values)))
        features = [stem]  # index 0 in timm's feature_info is before the max-pool
        x = max_pool_3x3_s2(stem)
        for blocks in self.stages:
            for block in blocks:
                x = block(x)
            features.append(x)
        return [features[i] for i in self.out_indices]


def build_tf_resnet(spec: ResNetSpec, **kwargs: Any) -> TFBuiltOnCall:
    """The backbone in ``spec.layout`` (``kwargs``, e.g. ``name``, go to the Keras layer)."""
    return TFTimmResNet(spec, **kwargs) if spec.layout == "timm" else TFResNetBackbone(spec, **kwargs)
