"""Weight names and layouts across PyTorch, TensorFlow and Flax: one table, both directions.

PyTorch's state-dict names are the pivot. A TensorFlow variable name or a Flax parameter path is
turned into the PyTorch name it corresponds to, plus the :class:`Layout` change its array needs
(Transformers' own conventions, so files it writes read here and ours read there):

==========================  ===================================  ==================================
PyTorch                     TensorFlow (``tf_model.h5``)         Flax (``flax_model.msgpack``)
==========================  ===================================  ==================================
``a.layer.0.dense.weight``  ``model/a/layer_._0/dense/kernel:0``  ``("a", "layer", "0", "dense", "kernel")``
Linear weight (out, in)     ``kernel`` (in, out)                 ``kernel`` (in, out)
Embedding weight            ``embeddings`` or ``weight``         ``embedding``
LayerNorm weight / bias     ``gamma`` / ``beta``                 ``scale`` / ``bias``
Conv1d weight (out, in, k)  ``kernel`` (k, in, out)              ``kernel`` (k, in, out)
Conv2d weight (o, i, h, w)  ``kernel`` (h, w, i, o)              ``kernel`` (h, w, i, o)
BatchNorm running stats     ``moving_mean`` / ``moving_variance`` ``mean`` / ``var`` (batch_stats)
weight norm (dim=2) ``g``   ``weight_g`` (k, 1, 1)               (Flax recomputes it)
==========================  ===================================  ==================================

Weight-normed convolutions (Wav2Vec2's positional conv) are read from either PyTorch spelling:
``conv.weight_g`` / ``conv.weight_v`` (``torch.nn.utils.weight_norm``) or
``conv.parametrizations.weight.original0`` / ``original1`` (the parametrization API); the old
spelling is the pivot, as in Transformers' converters. ``weight_v`` has PyTorch's layout in
TensorFlow too; ``weight_g`` is (1, 1, k) in PyTorch and (k, 1, 1) in TensorFlow.

Only this direction (framework name -> PyTorch name) is needed: to fill a TensorFlow or Flax
model from PyTorch weights, each of the model's own names is mapped to the PyTorch name it reads
from, and the layout change is inverted. A plugin whose names follow other patterns extends the
tables with data (:data:`TF_RENAMES`-style regex pairs passed as ``renames=``), not code.
Everything here is numpy: no framework is imported.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np


class Layout(enum.Enum):
    """How an array's axes differ from PyTorch's."""

    SAME = "same"
    TRANSPOSE = "transpose"  # Linear: (in, out) vs (out, in)
    CONV1D = "conv1d"  # (k, in, out) vs (out, in, k)
    CONV2D = "conv2d"  # (h, w, in, out) vs (out, in, h, w)


_TO_PT_AXES = {Layout.TRANSPOSE: (1, 0), Layout.CONV1D: (2, 1, 0), Layout.CONV2D: (3, 2, 0, 1)}
_FROM_PT_AXES = {Layout.TRANSPOSE: (1, 0), Layout.CONV1D: (2, 1, 0), Layout.CONV2D: (2, 3, 1, 0)}


def to_pt_layout(array: np.ndarray, layout: Layout) -> np.ndarray:
    return array if layout is Layout.SAME else np.ascontiguousarray(np.transpose(array, _TO_PT_AXES[layout]))


def from_pt_layout(array: np.ndarray, layout: Layout) -> np.ndarray:
    return array if layout is Layout.SAME else np.ascontiguousarray(np.transpose(array, _FROM_PT_AXES[layout]))


def _kernel_layout(ndim: int) -> Layout:
    return {4: Layout.CONV2D, 3: Layout.CONV1D}.get(ndim, Layout.TRANSPOSE)


# Framework leaf names -> PyTorch leaf names.
TF_LEAVES = {"kernel": "weight", "embeddings": "weight", "gamma": "weight", "beta": "bias", "moving_mean": "running_mean", "moving_variance": "running_var"}
FLAX_LEAVES = {"kernel": "weight", "embedding": "weight", "scale": "weight", "mean": "running_mean", "var": "running_var"}

# Regex renames applied to a TensorFlow name before splitting it (Transformers' conventions):
# "mlm___cls" -> "cls" (a TF-only scope prefix), "layer_._0" -> "layer/0" (list indices).
TF_RENAMES: tuple[tuple[str, str], ...] = ((r"(^|/)[^/]*___([^/]*)/", r"\1\2/"), (r"_\._", "/"), (r"//+", "/"))


def tf_name_to_pt(tf_name: str, ndim: int, *, strip_model_scope: bool = True, renames: Iterable[tuple[str, str]] = ()) -> tuple[str, Layout]:
    """``"tf_bert_model/bert/encoder/layer_._0/attention/self/query/kernel:0"`` -> ``("bert.encoder.layer.0.attention.self.query.weight", TRANSPOSE)``.

    ``strip_model_scope`` drops the first level (the Keras model's own name), as Transformers does.
    """
    name = tf_name.removesuffix(":0")
    for pattern, replacement in (*renames, *TF_RENAMES):
        name = re.sub(pattern, replacement, name)
    parts = [p for p in name.split("/") if p]
    if strip_model_scope and len(parts) > 1:
        parts = parts[1:]
    leaf = parts[-1]
    layout = _kernel_layout(ndim) if leaf in ("kernel", "pointwise_kernel", "depthwise_kernel") else Layout.SAME
    if leaf == "weight_g" and ndim == 3:  # weight norm's g: (k, 1, 1) in TF, (1, 1, k) in PyTorch
        layout = Layout.CONV1D
    parts[-1] = TF_LEAVES.get(leaf, leaf)
    return ".".join(parts), layout


def flax_key_to_pt(path: tuple[str, ...], ndim: int) -> tuple[str, Layout]:
    """``("bert", "encoder", "layer", "0", "output", "dense", "kernel")`` -> ``("bert.encoder.layer.0.output.dense.weight", TRANSPOSE)``."""
    parts = [str(p) for p in path]
    if parts and parts[0] in ("params", "batch_stats"):  # collections, not module names
        parts = parts[1:]
    leaf = parts[-1]
    layout = _kernel_layout(ndim) if leaf == "kernel" else Layout.SAME
    parts[-1] = FLAX_LEAVES.get(leaf, leaf)
    return ".".join(parts), layout


def flatten_dict(tree: Mapping[str, Any], prefix: tuple[str, ...] = ()) -> dict[tuple[str, ...], Any]:
    """Nested dicts -> ``{path tuple: leaf}``."""
    flat = {}
    for key, value in tree.items():
        if isinstance(value, Mapping):
            flat.update(flatten_dict(value, prefix + (str(key),)))
        else:
            flat[prefix + (str(key),)] = value
    return flat


def unflatten_dict(flat: Mapping[tuple[str, ...], Any]) -> dict[str, Any]:
    tree: dict[str, Any] = {}
    for path, value in flat.items():
        node = tree
        for key in path[:-1]:
            node = node.setdefault(key, {})
        node[path[-1]] = value
    return tree


@dataclass
class ConversionReport:
    """What a conversion could not match, in the target's own names."""

    missing_keys: list[Any] = field(default_factory=list)  # target names with no source weight
    unexpected_keys: list[str] = field(default_factory=list)  # source (PyTorch) names nobody read
    mismatched_keys: list[tuple[Any, tuple[int, ...], tuple[int, ...]]] = field(default_factory=list)

    def as_dict(self) -> dict[str, list]:
        return {"missing_keys": self.missing_keys, "unexpected_keys": self.unexpected_keys, "mismatched_keys": self.mismatched_keys, "error_msgs": []}


def _prefix_adjuster(pt_names: Iterable[str], wanted: Iterable[str], prefix: str) -> Callable[[str], str]:
    """Map a wanted PyTorch name to the source's spelling, adding or dropping ``prefix.``."""
    if not prefix:
        return lambda name: name
    source_has = any(n.startswith(prefix + ".") for n in pt_names)
    target_has = any(n.startswith(prefix + ".") for n in wanted)
    if target_has and not source_has:  # backbone weights -> task model
        return lambda name: name[len(prefix) + 1 :] if name.startswith(prefix + ".") else name
    if source_has and not target_has:  # task weights -> backbone
        return lambda name: f"{prefix}.{name}"
    return lambda name: name


def pt_weights_for(
    pt_state: Mapping[str, np.ndarray],
    target_shapes: Mapping[Any, tuple[int, ...]],
    key_to_pt: Callable[[Any, int], tuple[str, Layout]],
    base_model_prefix: str = "",
    tied_sources: Mapping[str, str] | None = None,
) -> tuple[dict[Any, np.ndarray], ConversionReport]:
    """Fill a TensorFlow or Flax model's weights (``target_shapes``: its names and shapes) from a PyTorch state dict.

    ``key_to_pt`` maps each target name to its PyTorch name and layout (:func:`tf_name_to_pt`,
    :func:`flax_key_to_pt`). ``tied_sources`` names PyTorch fallbacks for tensors a checkpoint
    may leave out because they are tied (``{"cls.predictions.decoder.weight": "bert.embeddings.word_embeddings.weight"}``).
    """
    pt_state = {_legacy(k): v for k, v in pt_state.items()}
    wanted = {key: key_to_pt(key, len(shape)) for key, shape in target_shapes.items()}
    source_name = _prefix_adjuster(pt_state, (n for n, _ in wanted.values()), base_model_prefix)
    report = ConversionReport()
    weights: dict[Any, np.ndarray] = {}
    used: set[str] = set()
    for key, (pt_name, layout) in wanted.items():
        name = source_name(pt_name)
        if name not in pt_state and tied_sources and pt_name in tied_sources:
            name = source_name(tied_sources[pt_name])
        if name not in pt_state:
            report.missing_keys.append(key)
            continue
        array = from_pt_layout(np.asarray(pt_state[name]), layout)
        used.add(name)
        if tuple(array.shape) != tuple(target_shapes[key]):
            report.mismatched_keys.append((key, tuple(array.shape), tuple(target_shapes[key])))
            continue
        weights[key] = array
    report.unexpected_keys = sorted(set(pt_state) - used)
    return weights, report


def to_pt_state(weights: Mapping[Any, np.ndarray], key_to_pt: Callable[[Any, int], tuple[str, Layout]]) -> dict[str, np.ndarray]:
    """A TensorFlow or Flax model's weights as a PyTorch state dict (names and layouts)."""
    state = {}
    for key, array in weights.items():
        array = np.asarray(array)
        pt_name, layout = key_to_pt(key, array.ndim)
        state[pt_name] = to_pt_layout(array, layout)
    return state


_WEIGHT_NORM_PARAMETRIZATION = {".parametrizations.weight.original0": ".weight_g", ".parametrizations.weight.original1": ".weight_v"}


def _legacy(name: str) -> str:
    for new, old in _WEIGHT_NORM_PARAMETRIZATION.items():
        if name.endswith(new):
            return name[: -len(new)] + old
    if name.endswith((".gamma", ".beta")):
        return name[: -len("gamma")] + "weight" if name.endswith(".gamma") else name[: -len("beta")] + "bias"
    return name
