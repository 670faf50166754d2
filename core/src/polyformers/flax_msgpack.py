"""Reading and writing ``flax_model.msgpack``: a Flax parameter tree, without needing JAX.

The format is ``flax.serialization.to_bytes`` of a nested dict: msgpack maps for the tree, and
each array as a msgpack *extension* value (type 1: ``packb((shape, dtype_name, raw_bytes))``;
type 3: a numpy scalar, same payload; type 2: a Python complex). Arrays above 1 GiB are split
into ``{"__msgpack_chunked_array__": True, "shape": {...}, "chunks": {...}}`` maps because
msgpack cannot hold one object of 2 GiB or more.

Both directions are written here with the ``msgpack`` package and numpy alone, so that
PyTorch's ``from_flax=True`` and the conversion command work where JAX is not installed; the
tests check that they read and write exactly the bytes ``flax.serialization`` does. Reading
always uses this decoder (it returns writable arrays, which Flax's does not). Writing uses
``flax.serialization`` when Flax is already imported, the reference implementation; "already
imported", not "importable", because importing Flax pulls in JAX (about a second).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from typing import Any

import numpy as np

from .errors import CheckpointError

_EXT_NDARRAY = 1
_EXT_COMPLEX = 2
_EXT_NPSCALAR = 3
_CHUNKED = "__msgpack_chunked_array__"
# Flax's limit per chunk: msgpack's hard limit is 2**31 - 1 bytes per object, less some margin.
MAX_CHUNK_SIZE = 2**30
# A parameter tree is a few levels deep (params / bert / encoder / layer / 0 / ... / kernel); a
# file nested deeper is hostile, and would exhaust Python's recursion limit while walked.
MAX_TREE_DEPTH = 64


# --- decoding ------------------------------------------------------------------------------------


def _dtype_from_name(name: bytes) -> np.dtype:
    if name == b"bfloat16":
        try:
            import ml_dtypes  # installed with JAX, and with recent torch and TensorFlow
        except ImportError:
            return None  # handled by the caller: decoded as float32
        return np.dtype(ml_dtypes.bfloat16)
    return np.dtype(name.decode())


def _ndarray_from_bytes(data: bytes) -> np.ndarray:
    import msgpack

    payload = msgpack.unpackb(data, raw=True)
    if not (isinstance(payload, (list, tuple)) and len(payload) == 3):
        raise ValueError(f"an array payload must be (shape, dtype, bytes), got a {type(payload).__name__}")
    shape, dtype_name, buffer = payload
    if not (isinstance(shape, (list, tuple)) and all(type(n) is int and n >= 0 for n in shape)):
        raise ValueError(f"an array shape must be a list of non-negative ints, got {shape!r:.80}")
    if not (isinstance(dtype_name, bytes) and isinstance(buffer, bytes)):
        raise ValueError(f"an array needs a dtype name and bytes, got {type(dtype_name).__name__} and {type(buffer).__name__}")
    dtype = _dtype_from_name(dtype_name)
    if dtype is not None and dtype.kind not in "biufcV" or dtype is not None and dtype.kind == "V" and dtype != _dtype_from_name(b"bfloat16"):
        raise ValueError(f"an array of dtype {dtype_name!r} is not numeric")
    # The declared size is checked against the bytes present before anything is allocated.
    expected = 2 if dtype is None else dtype.itemsize
    for n in shape:
        expected *= n
    if expected != len(buffer):
        raise ValueError(f"an array of shape {list(shape)} and dtype {dtype_name.decode(errors='replace')} needs {expected} bytes, the file holds {len(buffer)}")
    if dtype is None:
        # bfloat16 without ml_dtypes: a bfloat16 is the upper half of a float32, so shifting
        # its bits gives the same value exactly, as float32.
        bits = np.frombuffer(buffer, dtype="<u2").astype(np.uint32) << 16
        return bits.view(np.float32).reshape(shape)
    # A copy, so that arrays are writable (torch.from_numpy warns on read-only ones); it costs no
    # extra peak memory, since the msgpack buffer it copies from is freed right after.
    return np.frombuffer(buffer, dtype=dtype).reshape(shape, order="C").copy()


def _ext_hook(code: int, data: bytes) -> Any:
    import msgpack

    if code == _EXT_NDARRAY:
        return _ndarray_from_bytes(data)
    if code == _EXT_NPSCALAR:
        return _ndarray_from_bytes(data)[()]
    if code == _EXT_COMPLEX:
        real, imag = msgpack.unpackb(data)
        return complex(real, imag)
    return msgpack.ExtType(code, data)


def _unchunk(tree: Any, depth: int = 0) -> Any:
    if depth > MAX_TREE_DEPTH:
        raise ValueError(f"the tree is nested more than {MAX_TREE_DEPTH} levels deep; a parameter tree is a few levels deep")
    if isinstance(tree, dict):
        if tree.get(_CHUNKED) is True:
            shape = tuple(tree["shape"][str(i)] for i in range(len(tree["shape"])))
            chunks = [tree["chunks"][str(i)] for i in range(len(tree["chunks"]))]
            if not all(isinstance(c, np.ndarray) for c in chunks) or not all(type(n) is int and n >= 0 for n in shape):
                raise ValueError("a chunked array must have int dimensions and array chunks")
            return np.concatenate(chunks).reshape(shape)
        return {key: _unchunk(value, depth + 1) for key, value in tree.items()}
    return tree


def flax_msgpack_restore(data: bytes) -> dict[str, Any]:
    """Decode msgpack bytes written by ``flax.serialization.to_bytes`` (numpy and msgpack only)."""
    import msgpack

    return _unchunk(msgpack.unpackb(data, ext_hook=_ext_hook, raw=False, strict_map_key=False))


def read_flax_msgpack(path: str | os.PathLike) -> dict[str, Any]:
    """Read a ``flax_model.msgpack`` (or one shard of it) as a nested dict of numpy arrays.

    bfloat16 arrays keep their dtype when ``ml_dtypes`` is installed, else they are float32.

    Raises:
        CheckpointError: the file is truncated, corrupt, a Git LFS pointer, or not a parameter tree.
    """
    path = os.fspath(path)
    with open(path, "rb") as f:
        data = f.read()
    if data.startswith(b"version https://git-lfs"):
        raise CheckpointError(
            f"{path!r} is a Git LFS pointer file, not the weights: the repository was cloned without "
            f"git-lfs. Run `git lfs install && git lfs pull` in it, or download the file again."
        )
    import msgpack

    try:
        tree = flax_msgpack_restore(data)
    except (ValueError, TypeError, KeyError, IndexError, RecursionError, msgpack.exceptions.UnpackException) as exc:
        # msgpack reports a short file as ValueError("Unpack failed: incomplete input"), trailing
        # garbage as ExtraData (a ValueError), too deep a nesting as ValueError or RecursionError;
        # a broken array payload fails the checks of _ndarray_from_bytes (ValueError).
        raise CheckpointError(
            f"Cannot read the Flax checkpoint {path!r} ({len(data)} bytes): {type(exc).__name__}: {exc}. "
            f"The file is truncated or corrupt; download or save it again."
        ) from exc
    if not isinstance(tree, dict):
        raise CheckpointError(
            f"{path!r} holds a msgpack {type(tree).__name__}, not a Flax parameter tree (a map of "
            f"maps of arrays); it is not a flax_model.msgpack written by save_pretrained."
        )
    return tree


# --- encoding ------------------------------------------------------------------------------------


def _ndarray_to_bytes(array: np.ndarray) -> bytes:
    import msgpack

    if array.dtype.hasobject or array.dtype.isalignedstruct:
        raise ValueError(f"Cannot write an array of dtype {array.dtype} to msgpack: only plain numeric dtypes are supported.")
    return msgpack.packb((array.shape, array.dtype.name, array.tobytes("C")), use_bin_type=True)


def _ext_default(value: Any) -> Any:
    import msgpack

    if isinstance(value, np.ndarray):
        return msgpack.ExtType(_EXT_NDARRAY, _ndarray_to_bytes(value))
    if isinstance(value, np.generic):
        return msgpack.ExtType(_EXT_NPSCALAR, _ndarray_to_bytes(np.asarray(value)))
    if isinstance(value, complex):
        return msgpack.ExtType(_EXT_COMPLEX, msgpack.packb((value.real, value.imag)))
    return value


def _to_numpy_tree(tree: Any) -> Any:
    """Nested mappings -> plain dicts with string keys; array-likes (jax, torch on CPU) -> numpy."""
    if isinstance(tree, Mapping):
        return {str(key): _to_numpy_tree(value) for key, value in tree.items()}
    if isinstance(tree, (np.ndarray, np.generic, int, float, complex, str, bytes, bool)) or tree is None:
        return tree
    return np.asarray(tree)


def _chunk(tree: Any) -> Any:
    if isinstance(tree, dict):
        return {key: _chunk(value) for key, value in tree.items()}
    if isinstance(tree, np.ndarray) and tree.size * tree.dtype.itemsize > MAX_CHUNK_SIZE:
        per_chunk = max(1, MAX_CHUNK_SIZE // tree.dtype.itemsize)
        flat = tree.reshape(-1)
        chunks = [flat[i : i + per_chunk] for i in range(0, flat.size, per_chunk)]
        return {
            _CHUNKED: True,
            "shape": {str(i): n for i, n in enumerate(tree.shape)},
            "chunks": {str(i): c for i, c in enumerate(chunks)},
        }
    return tree


def flax_msgpack_serialize(params: Mapping[str, Any]) -> bytes:
    """Encode a parameter tree exactly as ``flax.serialization.to_bytes`` does (numpy and msgpack only)."""
    import msgpack

    return msgpack.packb(_chunk(_to_numpy_tree(params)), default=_ext_default, strict_types=True)


def write_flax_msgpack(path: str | os.PathLike, params: Mapping[str, Any]) -> None:
    """Write a nested dict of arrays (numpy, JAX, or anything ``np.asarray`` takes) as ``flax_model.msgpack``.

    Writes ``path`` directly: callers that need an atomic save write to a temporary name
    (:func:`polyformers.io_utils.atomic_path`).
    """
    if not isinstance(params, Mapping):
        raise TypeError(f"params must be a nested dict of arrays, got {type(params).__name__}.")
    tree = _to_numpy_tree(params)
    if sys.modules.get("flax") is not None:
        from flax.serialization import msgpack_serialize

        data = msgpack_serialize(tree, in_place=True)
    else:
        data = flax_msgpack_serialize(tree)
    with open(path, "wb") as f:
        f.write(data)
