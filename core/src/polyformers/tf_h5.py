"""Transformers' TensorFlow checkpoint files, read and written with h5py and numpy only.

No TensorFlow is needed here: PyTorch's ``from_tf=True`` and the converters read these files too.

Two layouts exist, both written by Transformers 4.x and both handled here:

``tf_model.h5`` (Keras 2's ``save_weights`` layout)
    Root attributes ``layer_names`` (the model's top-level layers, e.g. ``["bert", "mlm___cls"]``),
    ``backend`` and ``keras_version``. One group per top-level layer, whose ``weight_names``
    attribute lists the full names of every variable that layer uses, including variables it
    shares with another layer (a masked-LM head lists the tied word embeddings again). Each
    variable is a dataset at ``<layer>/<full name>``, e.g.
    ``bert/tf_bert_for_masked_lm/bert/embeddings/LayerNorm/beta:0``. A full name starts with the
    Keras model's own name (``tf_bert_for_masked_lm``), which loaders ignore.

``tf_model-00001-of-00003.h5`` (Transformers' shards, listed by ``tf_model.h5.index.json``)
    Root attribute ``layer_names`` lists variable names *without* the model's name
    (``bert/embeddings/LayerNorm/beta:0``), and each is a dataset at that path. The index's
    ``weight_map`` is keyed by full names (with the model's name).

TensorFlow-format safetensors files (``{"format": "tf"}`` metadata) key tensors by the name
without the model's name, like the shards.

Names here are always TensorFlow names: ``/``-separated, ending in ``:0``. Kernels are stored
(in, out); :mod:`polyformers.conversion` maps names and layouts to PyTorch's.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from .checkpoint_utils import (
    TF2_WEIGHTS_INDEX_NAME,
    TF2_WEIGHTS_NAME,
    index_json,
    is_stale_weights_file,
    plan_shards,
    read_index,
    shard_file_names,
)
from .errors import CheckpointError
from .io_utils import atomic_path, atomic_write_text

# What Transformers' files carry in their root attributes. Loaders do not read the version; it
# names the Keras 2 layout the file follows.
KERAS2_LAYOUT_VERSION = "2.21.0"
# HDF5 object headers hold at most 64 KiB: Keras 2 splits longer name lists into numbered
# attributes (weight_names0, weight_names1, ...), and so do we.
HDF5_OBJECT_HEADER_LIMIT = 64512
TOP_LEVEL_WEIGHTS_GROUP = "top_level_model_weights"
DEFAULT_MODEL_SCOPE = "tf_model"


def _h5py() -> Any:
    try:
        import h5py
    except ImportError as exc:  # pragma: no cover - h5py comes with TensorFlow
        raise ImportError(
            "Reading or writing tf_model.h5 files needs h5py: pip install h5py "
            "(it comes with TensorFlow: pip install 'polyformers-core[tf]')."
        ) from exc
    return h5py


# --- names ---------------------------------------------------------------------------------------


def strip_model_scope(name: str) -> str:
    """``"tf_bert_model/bert/pooler/dense/bias:0"`` -> ``"bert/pooler/dense/bias:0"``.

    As Transformers does, names holding ``"model."`` (composite models whose layer names carry
    their own scope) and one-part names are left as they are.
    """
    parts = name.split("/")
    if "model." in name or len(parts) == 1:
        return name
    return "/".join(parts[1:])


def top_level_layer(name: str) -> str:
    """The top-level layer a full name belongs to: ``"tf_bert_model/bert/..."`` -> ``"bert"``."""
    parts = name.split("/")
    return parts[1] if len(parts) > 2 else parts[0]


def group_by_layer(weights: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """Full names -> ``{top-level layer: {full name: array}}``, the input of :func:`write_tf_h5`.

    Without the model at hand, each variable is listed under its own layer only; Transformers
    loads such files the same way (it matches variables by name across all layer groups).
    """
    grouped: dict[str, dict[str, Any]] = {}
    for name, array in weights.items():
        grouped.setdefault(top_level_layer(name), {})[name] = array
    return grouped


# --- reading -------------------------------------------------------------------------------------


def _attribute_list(group: Any, name: str) -> list[str] | None:
    """A string-list attribute, joined again if Keras split it into numbered chunks."""
    if name in group.attrs:
        chunks = [group.attrs[name]]
    else:
        chunks, i = [], 0
        while f"{name}{i}" in group.attrs:
            chunks.append(group.attrs[f"{name}{i}"])
            i += 1
        if not chunks:
            return None
    return [item.decode("utf8") if isinstance(item, bytes) else str(item) for chunk in chunks for item in np.atleast_1d(chunk)]


# Deflate, the strongest HDF5 filter h5py writes, expands at most about 1032 times.
_MAX_COMPRESSION_RATIO = 1100


def _read_dataset(obj: Any, path: str, name: str) -> np.ndarray:
    """A variable's array, after checking that the file holds the bytes its shape declares.

    A hostile or corrupt file can declare a dataset of terabytes that it does not store (HDF5
    returns the fill value for unwritten data): the declared size is compared with the stored
    size before anything is allocated.
    """
    h5py = _h5py()
    if not isinstance(obj, h5py.Dataset):
        raise CheckpointError(f"The TensorFlow checkpoint {_describe(path)} lists {name!r}, which is a {type(obj).__name__}, not a variable's dataset; the file is corrupt.")
    dtype = obj.dtype
    if dtype.kind not in "biufc":
        raise CheckpointError(f"The TensorFlow checkpoint {_describe(path)} stores {name!r} as {dtype}, not numbers; the file is corrupt.")
    declared = dtype.itemsize
    for n in obj.shape:
        declared *= n
    stored = obj.id.get_storage_size()
    limit = stored * _MAX_COMPRESSION_RATIO if obj.compression is not None else stored
    if declared > limit or (obj.compression is None and declared != stored and declared > 0):
        raise CheckpointError(
            f"The TensorFlow checkpoint {_describe(path)} declares {name!r} of shape {obj.shape} ({declared} bytes) "
            f"but stores {stored} bytes for it; the file is truncated or corrupt. Download or save it again."
        )
    return np.asarray(obj)


def _describe(path: str) -> str:
    size = os.path.getsize(path) if os.path.exists(path) else "missing"
    return f"{path!r} ({size} bytes)"


def read_tf_h5(path: str | os.PathLike, *, model_scope: str = DEFAULT_MODEL_SCOPE) -> dict[str, np.ndarray]:
    """Every variable of a ``tf_model.h5`` (or of one shard), keyed by its full TensorFlow name.

    Keys look like ``"tf_bert_for_masked_lm/bert/encoder/layer_._0/attention/self/query/kernel:0"``;
    a variable listed by several layers (tied embeddings) appears once. A shard stores names
    without the model's name; they are returned under ``model_scope`` so that keys always have
    the same form (:func:`read_tf_h5_files` uses the index's real names instead).

    Raises:
        CheckpointError: the file is not HDF5, is truncated or corrupt, or lists variables it
            does not hold (the message names the file and the variables).
    """
    path = os.fspath(path)
    h5py = _h5py()
    try:
        with h5py.File(path, "r") as f:
            layer_names = _attribute_list(f, "layer_names")
            if layer_names is None:
                raise CheckpointError(
                    f"{_describe(path)} is an HDF5 file but not a Keras weights file: it has no "
                    f"'layer_names' attribute. Save it with save_pretrained (polyformers or Transformers)."
                )
            if _is_shard_layout(f, layer_names):
                return _read_shard(f, path, layer_names, model_scope)
            return _read_layer_groups(f, path, layer_names)
    except CheckpointError:
        raise
    except (OSError, KeyError, ValueError, TypeError, RuntimeError) as exc:
        raise CheckpointError(
            f"Cannot read the TensorFlow checkpoint {_describe(path)}: {type(exc).__name__}: {exc}. "
            f"The file is truncated or corrupt; download or save it again."
        ) from exc


def _is_shard_layout(f: Any, layer_names: list[str]) -> bool:
    # In a shard, layer_names are variable names and point at datasets; in tf_model.h5 they are
    # groups carrying weight_names.
    first = next((n for n in layer_names if n in f), None)
    return first is not None and not hasattr(f[first], "keys")


def _read_layer_groups(f: Any, path: str, layer_names: list[str]) -> dict[str, np.ndarray]:
    weights: dict[str, np.ndarray] = {}
    absent: list[str] = []
    for layer in layer_names:
        if layer not in f:
            absent.append(layer)
            continue
        group = f[layer]
        for name in _attribute_list(group, "weight_names") or []:
            if name in weights:
                continue  # a shared variable, listed again by another layer
            if name not in group:
                absent.append(f"{layer}/{name}")
                continue
            weights[name] = _read_dataset(group[name], path, f"{layer}/{name}")
    # Variables of the model itself (Wav2Vec2's layer_weights), which Keras 2 keeps apart.
    top = f.get(TOP_LEVEL_WEIGHTS_GROUP)
    for name in (_attribute_list(top, "weight_names") or []) if top is not None else []:
        if name not in top:
            absent.append(f"{TOP_LEVEL_WEIGHTS_GROUP}/{name}")
        elif name not in weights:
            weights[name] = _read_dataset(top[name], path, f"{TOP_LEVEL_WEIGHTS_GROUP}/{name}")
    if absent:
        raise CheckpointError(
            f"The TensorFlow checkpoint {_describe(path)} lists {len(absent)} variables or layers it "
            f"does not hold: {absent[:5]}{' ...' if len(absent) > 5 else ''}. The file is incomplete; "
            f"save it again."
        )
    return weights


def _read_shard(f: Any, path: str, layer_names: list[str], model_scope: str) -> dict[str, np.ndarray]:
    absent = [n for n in layer_names if n not in f]
    if absent:
        raise CheckpointError(
            f"The TensorFlow checkpoint shard {_describe(path)} lists {len(absent)} variables it does "
            f"not hold: {absent[:5]}. The shard is incomplete; save the checkpoint again."
        )
    weights = {}
    for name in layer_names:
        # Transformers kept names holding "model." or a single part whole (see strip_model_scope).
        full = name if ("model." in name or "/" not in name) else f"{model_scope}/{name}"
        weights[full] = _read_dataset(f[name], path, name)
    return weights


def read_tf_h5_files(files: Sequence[str | os.PathLike]) -> dict[str, np.ndarray]:
    """A whole TensorFlow h5 checkpoint: ``[tf_model.h5]``, or ``[index, shard, shard, ...]``.

    The list is what :func:`polyformers.checkpoint_utils.resolve_weights` returns. Keys are full
    names as in :func:`read_tf_h5`; for shards, the model's name comes from the index.

    Raises:
        CheckpointError: a file is unreadable, or the shards do not hold what the index lists.
    """
    files = [os.fspath(f) for f in files]
    if not files[0].endswith(".json"):
        return read_tf_h5(files[0])
    index_file, shards = files[0], files[1:]
    weight_map = read_index(index_file)
    full_names = {strip_model_scope(name): name for name in weight_map}
    scopes = [name.split("/")[0] for name in weight_map if "/" in name]
    scope = max(set(scopes), key=scopes.count) if scopes else DEFAULT_MODEL_SCOPE
    weights: dict[str, np.ndarray] = {}
    for shard in shards:
        for name, array in read_tf_h5(shard, model_scope=scope).items():
            weights[full_names.get(strip_model_scope(name), name)] = array
    absent = sorted(set(weight_map) - set(weights))
    if absent:
        raise CheckpointError(
            f"The shard index {index_file!r} lists {len(absent)} variables that no shard holds "
            f"(first: {absent[:3]}); the shards do not match the index. Re-save the checkpoint."
        )
    return weights


# --- writing -------------------------------------------------------------------------------------


def _set_attribute_list(group: Any, name: str, values: Sequence[str]) -> None:
    # An empty list is stored as an empty float array, as Keras 2 stores it.
    data = np.asarray([v.encode("utf8") for v in values]) if values else np.asarray([], dtype=np.float64)
    chunks = 1
    while any(chunk.nbytes > HDF5_OBJECT_HEADER_LIMIT for chunk in np.array_split(data, chunks)) and chunks < len(data):
        chunks += 1
    if chunks == 1:
        group.attrs[name] = data
    else:
        for i, chunk in enumerate(np.array_split(data, chunks)):
            group.attrs[f"{name}{i}"] = chunk


def _write_dataset(group: Any, name: str, array: Any) -> None:
    array = np.asarray(array)
    dataset = group.create_dataset(name, array.shape, dtype=array.dtype)
    if array.shape:
        dataset[:] = array
    else:
        dataset[()] = array


def write_tf_h5(
    path: str | os.PathLike,
    weights_by_layer: Mapping[str, Mapping[str, Any]],
    top_level_weights: Mapping[str, Any] | None = None,
) -> None:
    """Write a ``tf_model.h5`` in Keras 2's layout, as Transformers 4.x writes and reads it.

    Args:
        path: the file to write (written as is; :func:`write_tf_h5_checkpoint` writes atomically).
        weights_by_layer: ``{top-level layer name: {full variable name: array}}`` in the model's
            layer order, e.g. ``{"bert": {"tf_bert_model/bert/pooler/dense/bias:0": ...}}``. A
            variable shared by two layers (tied embeddings) is listed under both, as Keras does.
            Layers without variables (dropout) are listed with an empty mapping.
        top_level_weights: variables owned by the model itself rather than a layer (rare).
    """
    h5py = _h5py()
    with h5py.File(os.fspath(path), "w") as f:
        _set_attribute_list(f, "layer_names", list(weights_by_layer))
        f.attrs["backend"] = b"tensorflow"
        f.attrs["keras_version"] = KERAS2_LAYOUT_VERSION.encode("utf8")
        # Keras writes groups sorted by name so that no group name is a prefix of a later one.
        for layer in sorted(weights_by_layer):
            group = f.create_group(layer)
            names = list(weights_by_layer[layer])
            _set_attribute_list(group, "weight_names", names)
            for name in names:
                _write_dataset(group, name, weights_by_layer[layer][name])
        group = f.create_group(TOP_LEVEL_WEIGHTS_GROUP)
        top = dict(top_level_weights or {})
        _set_attribute_list(group, "weight_names", list(top))
        for name, array in top.items():
            _write_dataset(group, name, array)


def write_tf_h5_shard(path: str | os.PathLike, weights: Mapping[str, Any]) -> None:
    """Write one shard in Transformers' shard layout; ``weights`` is keyed by full names."""
    h5py = _h5py()
    stored = sorted((strip_model_scope(name), array) for name, array in weights.items())
    with h5py.File(os.fspath(path), "w") as f:
        for name, array in stored:
            _write_dataset(f, name, array)
        _set_attribute_list(f, "layer_names", [name for name, _ in stored])


def write_tf_h5_checkpoint(
    save_directory: str | os.PathLike,
    weights_by_layer: Mapping[str, Mapping[str, Any]],
    max_shard_size: int | str = "10GB",
    top_level_weights: Mapping[str, Any] | None = None,
) -> list[str]:
    """Write ``tf_model.h5``, or shards and ``tf_model.h5.index.json`` above ``max_shard_size``.

    Every file is written under a temporary name and renamed into place; h5 weight files (and
    an index) of an earlier save that this one does not use are removed afterwards. Returns the
    names of the weight files written. ``10GB`` is Transformers' TensorFlow default.
    """
    save_directory = os.fspath(save_directory)
    unique: dict[str, Any] = {}
    # Variables owned by the model itself (see write_tf_h5) go into shards like any other.
    for layer_weights in (*weights_by_layer.values(), top_level_weights or {}):
        for name, array in layer_weights.items():
            unique.setdefault(name, array)
    sizes = [(name, np.asarray(array).nbytes) for name, array in unique.items()]
    shards = plan_shards(sizes, max_shard_size)
    names = shard_file_names(TF2_WEIGHTS_NAME, len(shards))
    index_path = os.path.join(save_directory, TF2_WEIGHTS_INDEX_NAME)
    if len(shards) == 1:
        with atomic_path(os.path.join(save_directory, TF2_WEIGHTS_NAME)) as tmp:
            write_tf_h5(tmp, weights_by_layer, top_level_weights)
        if os.path.exists(index_path):
            os.remove(index_path)
    else:
        for shard_keys, shard_name in zip(shards, names):
            with atomic_path(os.path.join(save_directory, shard_name)) as tmp:
                write_tf_h5_shard(tmp, {k: unique[k] for k in shard_keys})
        weight_map = {k: name for keys, name in zip(shards, names) for k in keys}
        atomic_write_text(index_path, index_json(weight_map, sum(size for _, size in sizes)))
    keep = set(names)
    for filename in os.listdir(save_directory):
        if is_stale_weights_file(filename, TF2_WEIGHTS_NAME, keep):
            os.remove(os.path.join(save_directory, filename))
    return names


# --- TensorFlow-format safetensors ---------------------------------------------------------------


def write_tf_safetensors_checkpoint(
    save_directory: str | os.PathLike, weights: Mapping[str, Any], max_shard_size: int | str = "10GB"
) -> list[str]:
    """Write ``model.safetensors`` with ``{"format": "tf"}`` (or shards and an index), as Transformers' TF models do.

    ``weights`` is keyed by full names; the file keys them without the model's name
    (``bert/embeddings/LayerNorm/beta:0``), the index by full names, both as Transformers 4.x.
    """
    from safetensors.numpy import save_file

    from .checkpoint_utils import SAFE_WEIGHTS_INDEX_NAME, SAFE_WEIGHTS_NAME

    save_directory = os.fspath(save_directory)
    arrays = {name: np.ascontiguousarray(np.asarray(array)) for name, array in weights.items()}
    sizes = [(name, array.nbytes) for name, array in arrays.items()]
    shards = plan_shards(sizes, max_shard_size)
    names = shard_file_names(SAFE_WEIGHTS_NAME, len(shards))
    for shard_keys, shard_name in zip(shards, names):
        with atomic_path(os.path.join(save_directory, shard_name)) as tmp:
            save_file({strip_model_scope(k): arrays[k] for k in shard_keys}, tmp, metadata={"format": "tf"})
    index_path = os.path.join(save_directory, SAFE_WEIGHTS_INDEX_NAME)
    if len(shards) > 1:
        weight_map = {k: name for keys, name in zip(shards, names) for k in keys}
        atomic_write_text(index_path, index_json(weight_map, sum(size for _, size in sizes)))
    elif os.path.exists(index_path):
        os.remove(index_path)
    keep = set(names)
    for filename in os.listdir(save_directory):
        if is_stale_weights_file(filename, SAFE_WEIGHTS_NAME, keep):
            os.remove(os.path.join(save_directory, filename))
    return names


def read_safetensors_numpy(path: str | os.PathLike) -> tuple[dict[str, np.ndarray], dict[str, str]]:
    """``(tensors, metadata)`` of a safetensors file as numpy arrays, without any framework.

    Raises:
        CheckpointError: the file is truncated or corrupt (the message names it).
    """
    from safetensors import SafetensorError, safe_open

    path = os.fspath(path)
    try:
        with safe_open(path, framework="numpy") as f:
            metadata = dict(f.metadata() or {})
            return {key: f.get_tensor(key) for key in f.keys()}, metadata
    except (SafetensorError, OSError, ValueError, RuntimeError, TypeError) as exc:
        raise CheckpointError(
            f"Cannot read the safetensors file {_describe(path)}: {exc}. The file is truncated or "
            f"corrupt; download or save it again."
        ) from exc


def safetensors_format(metadata: Mapping[str, str], keys: Sequence[str], path: str) -> str:
    """``"tf"``, ``"pt"`` or ``"flax"``: the naming convention of a safetensors file's keys.

    Files without a ``format`` entry are judged by their keys (``/`` separates TensorFlow names).
    """
    fmt = metadata.get("format")
    if fmt is None:
        return "tf" if any("/" in k for k in keys) else "pt"
    if fmt not in ("tf", "pt", "flax"):
        raise CheckpointError(
            f"The safetensors file {path!r} declares format {fmt!r}; expected 'tf', 'pt' or 'flax'. "
            f"Save it again with save_pretrained."
        )
    return fmt


__all__ = [
    "read_tf_h5",
    "read_tf_h5_files",
    "write_tf_h5",
    "write_tf_h5_shard",
    "write_tf_h5_checkpoint",
    "write_tf_safetensors_checkpoint",
    "read_safetensors_numpy",
    "safetensors_format",
    "strip_model_scope",
    "top_level_layer",
    "group_by_layer",
]
