"""TensorFlow and Flax models in the pipelines, through one adapter.

Every task's steps are written once, on PyTorch tensors. :class:`FrameworkModel` lets a TensorFlow
or Flax model stand where a PyTorch model is expected: the padded batch goes to it as numpy arrays
and its outputs come back as CPU torch tensors in the same output class. So a TF or Flax pipeline
computes with its own framework and post-processes exactly like the PyTorch one (PyTorch must be
installed for that post-processing).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

FRAMEWORK_BASES = {"tf": "TFPreTrainedModel", "flax": "FlaxPreTrainedModel"}


def framework_of(model: Any) -> str | None:
    """"pt", "tf" or "flax" for a polyformers model instance; None for anything else."""
    if isinstance(model, torch.nn.Module):
        return "pt"
    names = {cls.__name__ for cls in type(model).__mro__}
    for framework, base in FRAMEWORK_BASES.items():
        if base in names:
            return framework
    return None


def _to_torch(value: Any) -> Any:
    if value is None:
        return None
    if isinstance(value, dict):  # e.g. DETR's auxiliary_outputs: a list of dicts
        return {k: _to_torch(v) for k, v in value.items()}
    if isinstance(value, (tuple, list)):
        return tuple(_to_torch(v) for v in value)
    return torch.from_numpy(np.array(value))  # a copy: TF/JAX buffers are read-only


class FrameworkModel(torch.nn.Module):
    """A TensorFlow or Flax model with a PyTorch model's calling convention (see the module doc)."""

    def __init__(self, model: Any, framework: str):
        super().__init__()
        object.__setattr__(self, "wrapped", model)  # not a torch submodule
        self.framework = framework
        self.config = model.config

    def forward(self, return_dict: bool = True, **inputs: torch.Tensor) -> Any:
        arrays = {k: v.detach().cpu().numpy() for k, v in inputs.items() if v is not None}
        if self.framework == "tf":
            outputs = self.wrapped(arrays, training=False)
        else:
            outputs = self.wrapped(**arrays)
        return type(outputs)(**{k: _to_torch(v) for k, v in outputs.items()})

    def num_parameters(self) -> int:
        if self.framework == "tf":
            return int(sum(np.prod(v.shape) for v in self.wrapped.weights))
        import jax

        return int(sum(np.prod(leaf.shape) for leaf in jax.tree_util.tree_leaves(self.wrapped.params)))

    def __repr__(self) -> str:
        return f"FrameworkModel({type(self.wrapped).__name__})"
