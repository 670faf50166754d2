"""JAX activation functions by the names ``config.hidden_act`` uses in Transformers.

The same names and the same functions as :mod:`polyformers.activations` (PyTorch). Mind the
defaults that differ between frameworks: ``jax.nn.gelu`` is the *tanh approximation* unless told
``approximate=False``, while ``"gelu"`` means the exact erf GELU everywhere (4e-4 apart).
"""

from __future__ import annotations

import math
from typing import Callable

import jax
import jax.numpy as jnp


def gelu(x: jax.Array) -> jax.Array:
    """Exact GELU, ``x * Phi(x)`` with the erf (``"gelu"``, PyTorch's ``nn.GELU()``)."""
    return jax.nn.gelu(x, approximate=False)


def gelu_new(x: jax.Array) -> jax.Array:
    """The tanh approximation used by Google BERT and GPT-2 (``"gelu_new"``, ``"gelu_pytorch_tanh"``)."""
    return jax.nn.gelu(x, approximate=True)


def gelu_fast(x: jax.Array) -> jax.Array:
    return 0.5 * x * (1.0 + jnp.tanh(x * 0.7978845608 * (1.0 + 0.044715 * x * x)))


def gelu_python(x: jax.Array) -> jax.Array:
    return x * 0.5 * (1.0 + jax.scipy.special.erf(x / math.sqrt(2.0)))


def quick_gelu(x: jax.Array) -> jax.Array:
    return x * jax.nn.sigmoid(1.702 * x)


def linear(x: jax.Array) -> jax.Array:
    return x


def mish(x: jax.Array) -> jax.Array:
    return x * jnp.tanh(jax.nn.softplus(x))


_ACTIVATIONS: dict[str, Callable[[jax.Array], jax.Array]] = {
    "gelu": gelu,
    "gelu_python": gelu_python,
    "gelu_new": gelu_new,
    "gelu_pytorch_tanh": gelu_new,
    "gelu_fast": gelu_fast,
    "quick_gelu": quick_gelu,
    "relu": jax.nn.relu,
    "relu6": jax.nn.relu6,
    "leaky_relu": jax.nn.leaky_relu,  # slope 0.01, as torch's default
    "silu": jax.nn.silu,
    "swish": jax.nn.silu,
    "mish": mish,
    "tanh": jnp.tanh,
    "sigmoid": jax.nn.sigmoid,
    "linear": linear,
}


def get_activation(name: str | Callable) -> Callable[[jax.Array], jax.Array]:
    """The activation function for ``name``; a callable passes through unchanged."""
    if callable(name):
        return name
    if name not in _ACTIVATIONS:
        raise ValueError(f"Unknown activation {name!r} (config.hidden_act); expected one of {', '.join(sorted(_ACTIVATIONS))}.")
    return _ACTIVATIONS[name]


class _ActivationTable(dict):
    def __getitem__(self, name: str) -> Callable[[jax.Array], jax.Array]:
        return get_activation(name)

    def __contains__(self, name: object) -> bool:
        return name in _ACTIVATIONS


ACT2FN = _ActivationTable()
