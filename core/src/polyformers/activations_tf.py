"""TensorFlow activation functions by the names ``config.hidden_act`` uses in Transformers.

The same table as :mod:`polyformers.activations` (PyTorch), with the same numerics: ``"gelu"`` is
the exact (erf) GELU; ``"gelu_new"``, ``"gelu_pytorch_tanh"`` and ``"gelu_fast"`` are tanh
approximations, 4e-4 apart from erf, so one is never substituted for the other. Every function
is plain TensorFlow ops, so it runs eagerly, under ``tf.function`` and under XLA.
"""

from __future__ import annotations

import math
from typing import Callable

import tensorflow as tf


def gelu(x: tf.Tensor) -> tf.Tensor:
    """Exact GELU, ``x * Phi(x)`` with the normal CDF written through erf (torch's ``nn.GELU()``)."""
    return 0.5 * x * (1.0 + tf.math.erf(x / tf.cast(math.sqrt(2.0), x.dtype)))


def gelu_new(x: tf.Tensor) -> tf.Tensor:
    """The tanh approximation of GELU used by Google BERT and GPT-2."""
    c = tf.cast(math.sqrt(2.0 / math.pi), x.dtype)
    return 0.5 * x * (1.0 + tf.tanh(c * (x + 0.044715 * tf.pow(x, 3))))


def gelu_fast(x: tf.Tensor) -> tf.Tensor:
    return 0.5 * x * (1.0 + tf.tanh(x * 0.7978845608 * (1.0 + 0.044715 * x * x)))


def quick_gelu(x: tf.Tensor) -> tf.Tensor:
    return x * tf.sigmoid(1.702 * x)


def leaky_relu(x: tf.Tensor) -> tf.Tensor:
    return tf.nn.leaky_relu(x, alpha=0.01)  # torch's default slope; TensorFlow's own default is 0.2


def mish(x: tf.Tensor) -> tf.Tensor:
    return x * tf.tanh(tf.math.softplus(x))


def linear(x: tf.Tensor) -> tf.Tensor:
    return x


_ACTIVATIONS: dict[str, Callable[[tf.Tensor], tf.Tensor]] = {
    "gelu": gelu,
    "gelu_python": gelu,
    "gelu_new": gelu_new,
    "gelu_pytorch_tanh": gelu_new,  # the same formula as gelu_new
    "gelu_fast": gelu_fast,
    "quick_gelu": quick_gelu,
    "relu": tf.nn.relu,
    "relu6": tf.nn.relu6,
    "leaky_relu": leaky_relu,
    "silu": tf.nn.silu,
    "swish": tf.nn.silu,
    "mish": mish,
    "tanh": tf.tanh,
    "sigmoid": tf.sigmoid,
    "linear": linear,
}


def get_tf_activation(name: str | Callable) -> Callable[[tf.Tensor], tf.Tensor]:
    """The activation function for ``name``; a callable passes through unchanged."""
    if callable(name):
        return name
    if name not in _ACTIVATIONS:
        raise ValueError(f"Unknown activation {name!r} (config.hidden_act); expected one of {', '.join(sorted(_ACTIVATIONS))}.")
    return _ACTIVATIONS[name]


class _ActivationTable(dict):
    def __getitem__(self, name: str) -> Callable[[tf.Tensor], tf.Tensor]:
        return get_tf_activation(name)

    def __contains__(self, name: object) -> bool:
        return name in _ACTIVATIONS


ACT2FN = _ActivationTable()
