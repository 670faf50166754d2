"""Framework-neutral checkpoint plumbing: file names, shard indexes, shard planning.

The tensors themselves are read and written by each framework's model base class; what a
checkpoint *directory* looks like (which files, in which order of preference, how shards are
indexed) is decided here, once, for every framework.
"""

from __future__ import annotations

import json
import logging
import os
import re
from typing import Any, Iterable

from .errors import CheckpointError
from .hub import resolve_file
from .io_utils import read_json_file

SAFE_WEIGHTS_NAME = "model.safetensors"
SAFE_WEIGHTS_INDEX_NAME = "model.safetensors.index.json"
WEIGHTS_NAME = "pytorch_model.bin"
WEIGHTS_INDEX_NAME = "pytorch_model.bin.index.json"
TF2_WEIGHTS_NAME = "tf_model.h5"
TF2_WEIGHTS_INDEX_NAME = "tf_model.h5.index.json"
FLAX_WEIGHTS_NAME = "flax_model.msgpack"
FLAX_WEIGHTS_INDEX_NAME = "flax_model.msgpack.index.json"

DEFAULT_MAX_SHARD_SIZE = "5GB"


def parse_size(size: int | str) -> int:
    """``"5GB"`` -> 5_000_000_000, ``"10MiB"`` -> 10_485_760; ints pass through."""
    if isinstance(size, int):
        return size
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([KMGT]?)(I?)B?\s*", str(size).upper())
    if not match:
        raise ValueError(f"max_shard_size must be an int of bytes or a string like '5GB' or '500MiB', got {size!r}.")
    number, unit, binary = match.groups()
    base = 1024 if binary else 1000
    return int(float(number) * base ** " KMGT".index(unit or " "))


def plan_shards(sizes: Iterable[tuple[str, int]], max_shard_size: int | str) -> list[list[str]]:
    """Group tensor names (in order) into shards of at most ``max_shard_size`` bytes each.

    A tensor larger than the limit gets a shard of its own, as in Transformers.
    """
    limit = parse_size(max_shard_size)
    shards: list[list[str]] = [[]]
    current = 0
    for name, size in sizes:
        if shards[-1] and current + size > limit:
            shards.append([])
            current = 0
        shards[-1].append(name)
        current += size
    return shards


def shard_file_names(weights_name: str, num_shards: int) -> list[str]:
    """``model.safetensors`` with 3 shards -> ``model-00001-of-00003.safetensors``, ..."""
    if num_shards == 1:
        return [weights_name]
    stem, ext = weights_name.split(".", 1)
    return [f"{stem}-{i:05d}-of-{num_shards:05d}.{ext}" for i in range(1, num_shards + 1)]


def is_stale_weights_file(filename: str, weights_name: str, keep: set[str]) -> bool:
    """True for a weights file (single or shard) of ``weights_name``'s kind not in ``keep``."""
    stem, ext = weights_name.split(".", 1)
    pattern = rf"{re.escape(stem)}(-\d{{5}}-of-\d{{5}})?\.{re.escape(ext)}"
    return filename not in keep and re.fullmatch(pattern, filename) is not None


def read_index(index_file: str) -> dict[str, str]:
    """The ``weight_map`` (tensor name -> shard file name) of a shard index, validated."""
    weight_map = read_json_file(index_file, CheckpointError).get("weight_map")
    if not isinstance(weight_map, dict) or not weight_map or not all(isinstance(v, str) for v in weight_map.values()):
        raise CheckpointError(
            f"The shard index {index_file!r} has no 'weight_map' object of tensor names to shard file "
            f"names (found {weight_map!r:.80}); re-save the checkpoint."
        )
    # Shards are files beside the index: a name with a directory part could read any file.
    for shard in set(weight_map.values()):
        if not shard or shard != os.path.basename(shard) or shard in (".", "..") or "\\" in shard or "\x00" in shard:
            raise CheckpointError(
                f"The shard index {index_file!r} lists the shard {shard!r}, which is not a plain file "
                f"name: shards must lie beside the index. Re-save the checkpoint."
            )
    return weight_map


def index_json(weight_map: dict[str, str], total_size: int) -> str:
    return json.dumps({"metadata": {"total_size": total_size}, "weight_map": dict(sorted(weight_map.items()))}, indent=2, sort_keys=True) + "\n"


def resolve_weights(
    path_or_repo_id: str | os.PathLike, candidates: list[tuple[str, str]], **hub_kwargs: Any
) -> tuple[str, list[str]] | None:
    """Find the first available weights among ``candidates`` (``(single_file, index_file)`` pairs).

    Returns ``(format_file_name, local_paths)``: one path for a single file, every shard's path for
    an index (all resolved, so a missing shard is reported now, by name). ``None`` if none exist.
    """
    for single, index in candidates:
        found = resolve_file(path_or_repo_id, single, **hub_kwargs)
        if found is not None:
            return single, [found]
        index_file = resolve_file(path_or_repo_id, index, **hub_kwargs)
        if index_file is not None:
            shard_names = sorted(set(read_index(index_file).values()))
            paths = []
            for shard in shard_names:
                shard_path = resolve_file(path_or_repo_id, shard, **hub_kwargs)
                if shard_path is None:
                    raise CheckpointError(
                        f"The shard index {index_file!r} lists {shard!r}, which is missing. Copy "
                        f"every shard next to the index, or re-save the checkpoint."
                    )
                paths.append(shard_path)
            return index, [index_file, *paths]
    return None


def checkpoint_format(safetensors_path: str) -> str:
    """The framework a safetensors file was written from: its ``format`` metadata ("pt" if absent)."""
    from safetensors import SafetensorError, safe_open

    try:
        with safe_open(safetensors_path, framework="numpy") as f:
            return (f.metadata() or {}).get("format", "pt")
    except (SafetensorError, OSError) as exc:
        raise CheckpointError(
            f"Cannot read the safetensors file {safetensors_path!r}: {exc}. The file is truncated or "
            f"corrupt; download or save it again."
        ) from exc


def read_foreign_as_pt_state(files: list[str], weights_name: str) -> dict[str, Any]:
    """TensorFlow or Flax weights, in any file layout Transformers writes, as a PyTorch state dict of numpy arrays.

    ``weights_name`` is what :func:`resolve_weights` found (``files[0]`` is the index for a sharded
    checkpoint). Needs h5py for ``tf_model.h5`` and msgpack for ``flax_model.msgpack``, but no
    TensorFlow or JAX.
    """
    from .conversion import flatten_dict, flax_key_to_pt, tf_name_to_pt, to_pt_state

    shards = files[1:] if weights_name.endswith(".index.json") else files
    if weights_name.startswith("tf_model.h5"):
        from .tf_h5 import read_tf_h5_files

        # One reader for single files and shards: it restores the model scope shards leave out.
        return to_pt_state(read_tf_h5_files(files), tf_name_to_pt)
    if weights_name.startswith("flax_model.msgpack"):
        from .flax_msgpack import read_flax_msgpack

        flat: dict[Any, Any] = {}
        for shard in shards:
            flat.update(flatten_dict(read_flax_msgpack(shard)))
        return to_pt_state(flat, flax_key_to_pt)
    if weights_name.startswith("model.safetensors"):
        from safetensors.numpy import load_file

        state: dict[str, Any] = {}
        for shard in shards:
            fmt = checkpoint_format(shard)
            arrays = load_file(shard)
            if fmt == "tf":  # TF names without the model scope: "bert/embeddings/.../weight:0"
                state.update(to_pt_state(arrays, lambda k, ndim: tf_name_to_pt(k, ndim, strip_model_scope=False)))
            elif fmt == "flax":  # Flax paths joined with ".": "bert.embeddings.LayerNorm.scale"
                state.update(to_pt_state({tuple(k.split(".")): v for k, v in arrays.items()}, flax_key_to_pt))
            else:
                state.update(arrays)
        return state
    raise CheckpointError(f"Do not know how to read {weights_name!r} as TensorFlow or Flax weights.")


def log_loading_report(logger: logging.Logger, model_name: str, info: Any) -> None:
    """Warn about missing, unexpected and shape-mismatched weights, in Transformers' words.

    ``info`` has ``missing_keys``, ``unexpected_keys`` and ``mismatched_keys`` (key, checkpoint
    shape, model shape), whatever the framework.
    """
    if info.unexpected_keys:
        logger.warning(
            "Some weights of the checkpoint were not used when initializing %s: %s\n- This is expected if you load a "
            "checkpoint of another architecture or task (e.g. a pretraining checkpoint into a classifier).",
            model_name,
            info.unexpected_keys,
        )
    if info.missing_keys:
        logger.warning(
            "Some weights of %s were not initialized from the checkpoint and are newly initialized: %s\n"
            "You should probably TRAIN this model on a down-stream task to be able to use it for predictions and inference.",
            model_name,
            info.missing_keys,
        )
    if info.mismatched_keys:
        lines = "\n".join(f"- {k}: found shape {list(a)} in the checkpoint and {list(b)} in the model instantiated" for k, a, b in info.mismatched_keys)
        logger.warning(
            "Some weights of %s were not initialized from the checkpoint and are newly initialized because the shapes did not match:\n%s",
            model_name,
            lines,
        )
