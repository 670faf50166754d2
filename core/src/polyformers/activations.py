"""PyTorch activation functions by the names ``config.hidden_act`` uses in Transformers.

``"gelu"`` is the exact (erf) GELU; ``"gelu_new"``, ``"gelu_pytorch_tanh"`` and ``"gelu_fast"``
are tanh approximations (4e-4 apart from erf: never substitute one for the other).
"""

from __future__ import annotations

import math
from typing import Callable

import torch
from torch import nn


class NewGELUActivation(nn.Module):
    """The tanh approximation of GELU used by Google BERT and GPT-2 (``"gelu_new"``)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return 0.5 * x * (1.0 + torch.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * torch.pow(x, 3.0))))


class FastGELUActivation(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return 0.5 * x * (1.0 + torch.tanh(x * 0.7978845608 * (1.0 + 0.044715 * x * x)))


class QuickGELUActivation(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * torch.sigmoid(1.702 * x)


class GELUPythonActivation(nn.Module):
    """Exact GELU written out with erf (``"gelu_python"``)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * 0.5 * (1.0 + torch.erf(x / math.sqrt(2.0)))


_ACTIVATIONS: dict[str, Callable[[], nn.Module]] = {
    "gelu": nn.GELU,
    "gelu_python": GELUPythonActivation,
    "gelu_new": NewGELUActivation,
    "gelu_pytorch_tanh": lambda: nn.GELU(approximate="tanh"),
    "gelu_fast": FastGELUActivation,
    "quick_gelu": QuickGELUActivation,
    "relu": nn.ReLU,
    "relu6": nn.ReLU6,
    "leaky_relu": nn.LeakyReLU,
    "silu": nn.SiLU,
    "swish": nn.SiLU,
    "mish": nn.Mish,
    "tanh": nn.Tanh,
    "sigmoid": nn.Sigmoid,
    "linear": nn.Identity,
}


def get_activation(name: str | Callable) -> Callable:
    """The activation module for ``name``; a callable passes through unchanged."""
    if callable(name):
        return name
    if name not in _ACTIVATIONS:
        raise ValueError(f"Unknown activation {name!r} (config.hidden_act); expected one of {', '.join(sorted(_ACTIVATIONS))}.")
    return _ACTIVATIONS[name]()


class _ActivationTable(dict):
    def __getitem__(self, name: str) -> Callable:
        return get_activation(name)

    def __contains__(self, name: object) -> bool:
        return name in _ACTIVATIONS


ACT2FN = _ActivationTable()
