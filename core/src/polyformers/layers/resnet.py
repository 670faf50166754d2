"""A ResNet feature backbone with frozen batch norm in PyTorch, in both weight layouts Transformers writes.

:class:`TimmResNet` has timm's names (``conv1``, ``layer1.0.conv1``, ``layer1.0.downsample.0``),
:class:`ResNetBackbone` Transformers' own (``embedder.embedder.convolution``,
``encoder.stages.0.layers.0.layer.0.convolution``); :func:`build_resnet` picks by
``spec.layout``. The attribute names are the checkpoint format: keep them as they are, even
where they read oddly (``embedder.embedder``, ``layer.0``). The layouts, the key translation and
the dilation schedule are in :mod:`polyformers.layers.resnet_spec`.

Shared by the vision plugins (DETR first) so that none depends on another's plugin for it.
Importing this module imports PyTorch; ``import polyformers`` does not import it.

Shapes: B batch, C channels, H x W feature map.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from ..activations import ACT2FN
from .resnet_spec import ResNetSpec, native_dilation_error, resnet_block_schedule

__all__ = [
    "FrozenBatchNorm2d",
    "ResNetBackbone",
    "ResNetSpec",
    "TimmBasicBlock",
    "TimmBottleneck",
    "TimmResNet",
    "build_resnet",
]


class FrozenBatchNorm2d(nn.Module):
    """BatchNorm2d with fixed statistics and affine parameters, all four stored as buffers.

    The epsilon is added before the rsqrt, as in Transformers (torchvision's version has none,
    which gives NaNs for backbones other than torchvision's ResNets).
    """

    def __init__(self, num_features: int, eps: float = 1e-5) -> None:
        super().__init__()
        self.eps = eps
        self.register_buffer("weight", torch.ones(num_features))
        self.register_buffer("bias", torch.zeros(num_features))
        self.register_buffer("running_mean", torch.zeros(num_features))
        self.register_buffer("running_var", torch.ones(num_features))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        scale = self.weight.reshape(1, -1, 1, 1) * (self.running_var.reshape(1, -1, 1, 1) + self.eps).rsqrt()
        bias = self.bias.reshape(1, -1, 1, 1) - self.running_mean.reshape(1, -1, 1, 1) * scale
        return x * scale + bias


def _select(features: list[torch.Tensor], out_indices: tuple[int, ...]) -> list[torch.Tensor]:
    return [features[i] for i in out_indices]


# --- Transformers' own ResNet layout ---------------------------------------------------------------


class ResNetConvLayer(nn.Module):
    def __init__(self, in_channels: int, out_channels: int, kernel_size: int = 3, stride: int = 1, activation: str | None = "relu") -> None:
        super().__init__()
        self.convolution = nn.Conv2d(in_channels, out_channels, kernel_size, stride=stride, padding=kernel_size // 2, bias=False)
        self.normalization = FrozenBatchNorm2d(out_channels)
        self.activation = ACT2FN[activation] if activation is not None else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.activation(self.normalization(self.convolution(x)))


class ResNetEmbeddings(nn.Module):
    def __init__(self, spec: ResNetSpec) -> None:
        super().__init__()
        self.embedder = ResNetConvLayer(spec.num_channels, spec.embedding_size, kernel_size=7, stride=2, activation=spec.hidden_act)
        self.pooler = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)

    def forward(self, pixel_values: torch.Tensor) -> torch.Tensor:
        return self.pooler(self.embedder(pixel_values))


class ResNetShortCut(nn.Module):
    def __init__(self, in_channels: int, out_channels: int, stride: int) -> None:
        super().__init__()
        self.convolution = nn.Conv2d(in_channels, out_channels, kernel_size=1, stride=stride, bias=False)
        self.normalization = FrozenBatchNorm2d(out_channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.normalization(self.convolution(x))


class ResNetBasicLayer(nn.Module):
    def __init__(self, in_channels: int, out_channels: int, stride: int = 1, activation: str = "relu", **_: Any) -> None:
        super().__init__()
        needs_shortcut = in_channels != out_channels or stride != 1
        self.shortcut = ResNetShortCut(in_channels, out_channels, stride) if needs_shortcut else nn.Identity()
        self.layer = nn.Sequential(
            ResNetConvLayer(in_channels, out_channels, stride=stride, activation=activation),
            ResNetConvLayer(out_channels, out_channels, activation=None),
        )
        self.activation = ACT2FN[activation]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.activation(self.layer(x) + self.shortcut(x))


class ResNetBottleNeckLayer(nn.Module):
    """1x1 reduce, 3x3 (the stride, unless ``downsample_in_bottleneck``), 1x1 expand."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        stride: int = 1,
        activation: str = "relu",
        reduction: int = 4,
        downsample_in_bottleneck: bool = False,
    ) -> None:
        super().__init__()
        needs_shortcut = in_channels != out_channels or stride != 1
        reduced = out_channels // reduction
        self.shortcut = ResNetShortCut(in_channels, out_channels, stride) if needs_shortcut else nn.Identity()
        self.layer = nn.Sequential(
            ResNetConvLayer(in_channels, reduced, kernel_size=1, stride=stride if downsample_in_bottleneck else 1, activation=activation),
            ResNetConvLayer(reduced, reduced, stride=1 if downsample_in_bottleneck else stride, activation=activation),
            ResNetConvLayer(reduced, out_channels, kernel_size=1, activation=None),
        )
        self.activation = ACT2FN[activation]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.activation(self.layer(x) + self.shortcut(x))


class ResNetStage(nn.Module):
    def __init__(self, spec: ResNetSpec, in_channels: int, out_channels: int, stride: int, depth: int) -> None:
        super().__init__()
        layer = ResNetBottleNeckLayer if spec.layer_type == "bottleneck" else ResNetBasicLayer
        extra = {"downsample_in_bottleneck": spec.downsample_in_bottleneck}
        self.layers = nn.Sequential(
            layer(in_channels, out_channels, stride=stride, activation=spec.hidden_act, **extra),
            *[layer(out_channels, out_channels, activation=spec.hidden_act, **extra) for _ in range(depth - 1)],
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(x)


class ResNetEncoder(nn.Module):
    def __init__(self, spec: ResNetSpec) -> None:
        super().__init__()
        in_sizes = [spec.embedding_size, *spec.hidden_sizes[:-1]]
        self.stages = nn.ModuleList(
            ResNetStage(spec, i, o, s, d) for i, o, s, d in zip(in_sizes, spec.hidden_sizes, spec.stage_strides(), spec.depths)
        )


class ResNetBackbone(nn.Module):
    """Transformers' ``ResNetBackbone`` layout: ``embedder.embedder.*``, ``encoder.stages.N.layers.M.*``."""

    def __init__(self, spec: ResNetSpec) -> None:
        super().__init__()
        if spec.dilation:
            raise native_dilation_error()
        self.out_indices = spec.out_indices
        self.embedder = ResNetEmbeddings(spec)
        self.encoder = ResNetEncoder(spec)

    def forward(self, pixel_values: torch.Tensor) -> list[torch.Tensor]:
        features = [self.embedder(pixel_values)]  # index 0: the stem, after max-pooling
        for stage in self.encoder.stages:
            features.append(stage(features[-1]))
        return _select(features, self.out_indices)


# --- timm's layout -------------------------------------------------------------------------------------


class TimmBasicBlock(nn.Module):
    """3x3 (stride, ``first_dilation``), 3x3 (``dilation``); padding equals dilation, as timm's."""

    def __init__(self, in_channels: int, out_channels: int, stride: int = 1, first_dilation: int = 1, dilation: int = 1) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, stride=stride, padding=first_dilation, dilation=first_dilation, bias=False)
        self.bn1 = FrozenBatchNorm2d(out_channels)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, padding=dilation, dilation=dilation, bias=False)
        self.bn2 = FrozenBatchNorm2d(out_channels)
        self.downsample = _timm_downsample(in_channels, out_channels, stride)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.bn2(self.conv2(torch.relu(self.bn1(self.conv1(x)))))
        shortcut = x if self.downsample is None else self.downsample(x)
        return torch.relu(out + shortcut)


class TimmBottleneck(nn.Module):
    """1x1, 3x3 (stride, ``first_dilation``), 1x1; ``dilation`` only matters to the next block (timm's signature)."""

    def __init__(self, in_channels: int, out_channels: int, stride: int = 1, first_dilation: int = 1, dilation: int = 1) -> None:
        super().__init__()
        width = out_channels // 4
        self.conv1 = nn.Conv2d(in_channels, width, 1, bias=False)
        self.bn1 = FrozenBatchNorm2d(width)
        self.conv2 = nn.Conv2d(width, width, 3, stride=stride, padding=first_dilation, dilation=first_dilation, bias=False)
        self.bn2 = FrozenBatchNorm2d(width)
        self.conv3 = nn.Conv2d(width, out_channels, 1, bias=False)
        self.bn3 = FrozenBatchNorm2d(out_channels)
        self.downsample = _timm_downsample(in_channels, out_channels, stride)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = torch.relu(self.bn1(self.conv1(x)))
        out = torch.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        shortcut = x if self.downsample is None else self.downsample(x)
        return torch.relu(out + shortcut)


def _timm_downsample(in_channels: int, out_channels: int, stride: int) -> nn.Module | None:
    if in_channels == out_channels and stride == 1:
        return None
    return nn.Sequential(nn.Conv2d(in_channels, out_channels, 1, stride=stride, bias=False), FrozenBatchNorm2d(out_channels))


class TimmResNet(nn.Module):
    """timm's ``resnetNN`` with ``features_only=True`` layout: ``conv1``, ``bn1``, ``layer1``..``layerN``."""

    def __init__(self, spec: ResNetSpec) -> None:
        super().__init__()
        self.out_indices = spec.out_indices
        self.num_stages = len(spec.depths)
        self.conv1 = nn.Conv2d(spec.num_channels, spec.embedding_size, 7, stride=2, padding=3, bias=False)
        self.bn1 = FrozenBatchNorm2d(spec.embedding_size)
        self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        block = TimmBottleneck if spec.layer_type == "bottleneck" else TimmBasicBlock
        in_sizes = [spec.embedding_size, *spec.hidden_sizes[:-1]]
        schedule = resnet_block_schedule(spec.depths, spec.downsample_in_first_stage, spec.dilation)
        for n, (i, o, blocks) in enumerate(zip(in_sizes, spec.hidden_sizes, schedule), start=1):
            # each block: (stride, first_dilation, dilation); only the first one strides or changes width
            layer = [block(i if b == 0 else o, o, *args) for b, args in enumerate(blocks)]
            self.add_module(f"layer{n}", nn.Sequential(*layer))

    def forward(self, pixel_values: torch.Tensor) -> list[torch.Tensor]:
        stem = torch.relu(self.bn1(self.conv1(pixel_values)))
        features = [stem]  # index 0 in timm's feature_info is before the max-pool
        x = self.maxpool(stem)
        for n in range(1, self.num_stages + 1):
            x = getattr(self, f"layer{n}")(x)
            features.append(x)
        return _select(features, self.out_indices)


def build_resnet(spec: ResNetSpec) -> nn.Module:
    """The backbone in ``spec.layout``: :class:`TimmResNet` for ``"timm"``, :class:`ResNetBackbone` for ``"native"``."""
    return TimmResNet(spec) if spec.layout == "timm" else ResNetBackbone(spec)
