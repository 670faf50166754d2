"""Fuzzing the weight-file readers: safetensors headers, ``tf_model.h5``, ``flax_model.msgpack``.

Allowed outcomes for every input: the reader returns, or it raises ``CheckpointError`` (an
``OSError``) whose message names the file. Nothing else may escape: no ``IndexError``,
``MemoryError``, ``RecursionError``, crash of the process, hang past the deadline, or memory
growth past the bound.

Targets:

- ``safetensors``: an 8-byte length and a JSON header made by hypothesis (huge or wrong length
  fields, offsets out of range or reversed, unknown dtype strings, negative dimensions, shape
  products that overflow 64 bits, non-objects), read by the three readers we have (PyTorch's
  ``load_safetensors``, the framework-free ``read_safetensors_numpy`` and ``checkpoint_format``).
- ``msgpack``: a valid ``flax_model.msgpack`` with bytes overwritten, cut or inserted, and
  crafted files declaring huge arrays, maps, bins and ndarray shapes, and deep nesting.
- ``h5``: a valid ``tf_model.h5`` with bytes overwritten (HDF5 is a C library: a crash would be
  a segfault), and crafted files whose datasets declare huge shapes, whose name attributes have
  other types, or which point at groups where datasets belong.

The HDF5 and msgpack targets run in a child process limited to ``CHILD_ADDRESS_SPACE`` bytes of
address space (``RLIMIT_AS``): a reader that believes a size field fails to allocate there,
and a segfault fails the test instead of killing pytest. The PyTorch safetensors reader runs in
this process, bounded by the growth of the peak RSS (``fuzz_support.MemoryBound``).

Budget: ``POLYFORMERS_FUZZ_EXAMPLES`` examples per target (see fuzz_support.py).
"""

from __future__ import annotations

import json
import os
import pathlib
import resource
import signal
import struct
import subprocess
import sys
import tempfile

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from fuzz_support import FUZZ, FUZZ_EXAMPLES, MemoryBound, count

CHILD_ADDRESS_SPACE = 3 * 2**30
CHILD_TIMEOUT_S = 60 + FUZZ_EXAMPLES * 0.5

# --- safetensors headers ----------------------------------------------------------------------

DTYPES = ["F32", "F16", "BF16", "F64", "I64", "I32", "I16", "I8", "U8", "BOOL", "F8_E4M3", "C64", "U64", "", "f32", "X9", "F32\x00"]
BIG = st.sampled_from([2**31 - 1, 2**31, 2**32, 2**53, 2**63 - 1, 2**63, 2**64 - 1, 2**64, -1, -(2**63)])
DIM = st.one_of(st.integers(0, 8), st.integers(-(2**64), 2**64), BIG)
JSON_LEAF = st.one_of(st.none(), st.booleans(), st.integers(-(2**70), 2**70), st.floats(allow_nan=False), st.text(max_size=8))


def tensor_entry():
    return st.fixed_dictionaries(
        {},
        optional={
            "dtype": st.one_of(st.sampled_from(DTYPES), JSON_LEAF),
            "shape": st.one_of(st.lists(DIM, max_size=4), JSON_LEAF),
            "data_offsets": st.one_of(st.lists(st.one_of(st.integers(0, 64), DIM), min_size=2, max_size=2), st.lists(DIM, max_size=3), JSON_LEAF),
        },
    )


safetensors_headers = st.one_of(
    st.dictionaries(
        st.one_of(st.text(max_size=12), st.just("__metadata__")),
        st.one_of(tensor_entry(), st.dictionaries(st.text(max_size=6), st.one_of(st.text(max_size=6), JSON_LEAF), max_size=3), JSON_LEAF),
        max_size=4,
    ),
    JSON_LEAF,
    st.lists(JSON_LEAF, max_size=3),
)


@st.composite
def safetensors_files(draw) -> bytes:
    header = json.dumps(draw(safetensors_headers)).encode()
    if draw(st.booleans()):  # sometimes not JSON at all
        header = draw(st.binary(max_size=64))
    length = draw(st.one_of(st.just(len(header)), st.integers(0, len(header) + 16), BIG.filter(lambda n: 0 <= n < 2**64)))
    payload = draw(st.binary(max_size=128))
    return struct.pack("<Q", length) + header + payload


@FUZZ
@given(data=safetensors_files())
def test_fuzz_safetensors_headers(tmp_path_factory, data):
    from polyformers.checkpoint_utils import checkpoint_format
    from polyformers.errors import CheckpointError
    from polyformers.modeling_utils import load_safetensors
    from polyformers.tf_h5 import read_safetensors_numpy

    path = tmp_path_factory.mktemp("st") / "model.safetensors"
    path.write_bytes(data)
    for name, read in (("load_safetensors", load_safetensors), ("read_safetensors_numpy", read_safetensors_numpy), ("checkpoint_format", checkpoint_format)):
        with MemoryBound():
            try:
                read(str(path))
            except CheckpointError as exc:
                assert "model.safetensors" in str(exc)
                count(f"safetensors header ({name})", "rejected")
            else:
                count(f"safetensors header ({name})", "ok")


# --- msgpack and HDF5, in a child process with a bounded address space -------------------------


def mutations(original: bytes):
    """A valid file with bytes overwritten, a slice removed, or bytes inserted."""
    n = len(original)
    edit = st.tuples(st.integers(0, n - 1), st.integers(0, 255))
    return st.one_of(
        st.lists(edit, min_size=1, max_size=8).map(lambda edits: _overwrite(original, edits)),
        st.tuples(st.integers(0, n), st.integers(0, n)).map(lambda ab: original[: min(ab)] + original[max(ab) :]),
        st.tuples(st.integers(0, n), st.binary(min_size=1, max_size=16)).map(lambda ib: original[: ib[0]] + ib[1] + original[ib[0] :]),
    )


def _overwrite(original: bytes, edits) -> bytes:
    data = bytearray(original)
    for position, value in edits:
        data[position] = value
    return bytes(data)


def _crafted_msgpack():
    """Declared sizes far beyond the file, deep nesting, and ndarray payloads that lie."""
    import msgpack

    def ext(shape, dtype, buffer, code=1):
        return msgpack.ExtType(code, msgpack.packb((shape, dtype, buffer), use_bin_type=True))

    huge_lengths = [
        b"\x81\xa1a\xdd\xff\xff\xff\xff",  # {"a": array32 of 2**32-1 items}
        b"\xdf\xff\xff\xff\xff",  # map32 of 2**32-1 pairs
        b"\x81\xa1a\xc6\xff\xff\xff\xff",  # bin32 of 2**32-1 bytes
        b"\x81\xa1a\xdb\xff\xff\xff\xff",  # str32
        b"\x81\xa1a\xc9\xff\xff\xff\xff\x01",  # ext32
    ]
    nested = [b"\x81\xa1a" * depth + b"\xc0" for depth in (1000, 100_000)] + [b"\x91" * 100_000 + b"\xc0"]
    tricky = [
        {"a": ext([2**40], "float32", b"\0" * 16)},
        {"a": ext([2**31, 2**31, 2**31], "float32", b"\0" * 16)},
        {"a": ext([-1], "float32", b"\0" * 16)},
        {"a": ext([4], "V1000000000", b"\0" * 16)},
        {"a": ext([4], "O", b"\0" * 32)},
        {"a": ext([4], "not a dtype", b"\0" * 16)},
        {"a": ext([4], 7, b"\0" * 16)},
        {"a": ext("shape", "float32", b"\0" * 16)},
        {"a": ext([2], "bfloat16", b"\0" * 3)},
        {"a": msgpack.ExtType(1, b"\xc1")},
        {"a": msgpack.ExtType(1, msgpack.packb(7))},
        {"a": msgpack.ExtType(3, msgpack.packb(([2], "float32", b"\0" * 8), use_bin_type=True))},
        {"a": msgpack.ExtType(2, msgpack.packb(["x"]))},
        {"a": {"__msgpack_chunked_array__": True, "shape": {"0": 2**40}, "chunks": {}}},
        {"a": {"__msgpack_chunked_array__": True, "shape": 3, "chunks": 4}},
        {"a": {"__msgpack_chunked_array__": True, "shape": {"0": 4}, "chunks": {"0": "text"}}},
        {1: {2: ext([1], "float32", b"\0" * 4)}},
        [1, 2, 3],
    ]
    return huge_lengths + nested + [msgpack.packb(t, use_bin_type=True) for t in tricky]


def _crafted_h5(directory: pathlib.Path) -> list[pathlib.Path]:
    import h5py

    files = []

    def new(name):
        path = directory / f"{name}.h5"
        files.append(path)
        return h5py.File(path, "w")

    with new("huge_dataset") as f:  # declared, never written: reading it would allocate 8 TiB
        f.attrs["layer_names"] = [b"bert"]
        g = f.create_group("bert")
        g.attrs["weight_names"] = [b"m/bert/w:0"]
        g.create_dataset("m/bert/w:0", shape=(2**40,), dtype="f8", fillvalue=1.0)
    with new("huge_chunked") as f:
        f.attrs["layer_names"] = [b"bert"]
        g = f.create_group("bert")
        g.attrs["weight_names"] = [b"m/bert/w:0"]
        g.create_dataset("m/bert/w:0", shape=(2**20, 2**20), dtype="f4", chunks=(64, 64), compression="gzip")
    with new("huge_shard") as f:
        f.create_dataset("bert/w:0", shape=(2**38,), dtype="f4")
        f.attrs["layer_names"] = [b"bert/w:0"]
    with new("names_are_ints") as f:
        f.attrs["layer_names"] = np.arange(3)
    with new("names_are_2d") as f:
        f.attrs["layer_names"] = np.array([[b"a", b"b"], [b"c", b"d"]])
        f.create_group("a")
    with new("weight_name_is_a_group") as f:
        f.attrs["layer_names"] = [b"bert"]
        g = f.create_group("bert")
        g.attrs["weight_names"] = [b"m/bert/sub"]
        g.create_group("m/bert/sub")
    with new("empty_names") as f:
        f.attrs["layer_names"] = [b""]
    with new("not_utf8") as f:
        f.attrs["layer_names"] = [b"\xff\xfe"]
    with new("string_dataset") as f:
        f.attrs["layer_names"] = [b"bert"]
        g = f.create_group("bert")
        g.attrs["weight_names"] = [b"m/bert/w:0"]
        g.create_dataset("m/bert/w:0", data=np.array([b"text"]))
    return files


CHILD = """
import os, resource, sys, signal
resource.setrlimit(resource.RLIMIT_AS, ({limit}, {limit}))
sys.path.insert(0, {here!r})
import test_fuzz_weights as fuzz
fuzz.child_main(sys.argv[1], sys.argv[2])
"""


def run_in_child(target: str, workdir: pathlib.Path) -> dict:
    """Run ``child_main(target)`` in a process with a bounded address space; returns its counts."""
    script = CHILD.format(limit=CHILD_ADDRESS_SPACE, here=str(pathlib.Path(__file__).parent))
    out = workdir / "result.json"
    proc = subprocess.run([sys.executable, "-c", script, target, str(out)], capture_output=True, text=True, timeout=CHILD_TIMEOUT_S,
                          env={**os.environ, "CUDA_VISIBLE_DEVICES": ""})
    if proc.returncode < 0:
        pytest.fail(f"the {target} fuzz child died of {signal.Signals(-proc.returncode).name}:\n{proc.stderr[-3000:]}")
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-5000:]
    return json.loads(out.read_text())


def child_main(target: str, out: str) -> None:
    """The child's side: fuzz ``target`` and write ``{"ok": n, "rejected": n}`` to ``out``."""
    from hypothesis import given

    from polyformers.errors import CheckpointError

    counts = {"ok": 0, "rejected": 0}
    workdir = pathlib.Path(tempfile.mkdtemp())
    if target == "msgpack":
        from polyformers.flax_msgpack import read_flax_msgpack, write_flax_msgpack

        path = workdir / "flax_model.msgpack"
        rng = np.random.default_rng(0)
        tree = {"bert": {"embeddings": {"word_embeddings": {"embedding": rng.normal(size=(12, 8)).astype("float32")}}, "pooler": {"dense": {"bias": np.zeros(8, "float16")}}}}
        write_flax_msgpack(path, tree)
        valid = path.read_bytes()

        def read(data: bytes) -> None:
            path.write_bytes(data)
            try:
                result = read_flax_msgpack(path)
                assert isinstance(result, dict)
                counts["ok"] += 1
            except CheckpointError as exc:
                assert "flax_model.msgpack" in str(exc)
                counts["rejected"] += 1

        for data in _crafted_msgpack():
            read(data)
        given(mutations(valid))(FUZZ(read))()
    elif target == "h5":
        from polyformers.tf_h5 import read_tf_h5, write_tf_h5

        for crafted in _crafted_h5(workdir):
            try:
                read_tf_h5(crafted)
                counts["ok"] += 1
            except CheckpointError as exc:
                assert crafted.name in str(exc)
                counts["rejected"] += 1
        path = workdir / "tf_model.h5"
        weights = {"tf_bert_model/bert/embeddings/word_embeddings/weight:0": np.ones((12, 8), "float32"), "tf_bert_model/bert/pooler/dense/bias:0": np.zeros(8, "float32")}
        write_tf_h5(path, {"bert": weights})
        valid = path.read_bytes()

        def read_h5(data: bytes) -> None:
            path.write_bytes(data)
            try:
                read_tf_h5(path)
                counts["ok"] += 1
            except CheckpointError as exc:
                assert "tf_model.h5" in str(exc)
                counts["rejected"] += 1

        given(mutations(valid))(FUZZ(read_h5))()
    else:
        raise ValueError(target)
    pathlib.Path(out).write_text(json.dumps(counts))


@pytest.mark.parametrize("target", ["msgpack", "h5"])
def test_fuzz_in_bounded_child(tmp_path, target):
    counts = run_in_child(target, tmp_path)
    for outcome, n in counts.items():
        for _ in range(n):
            count(f"{target} reader (child, RLIMIT_AS {CHILD_ADDRESS_SPACE // 2**30} GiB)", outcome)
    assert counts["rejected"] > 0


def test_huge_declared_sizes_are_refused_before_allocating(tmp_path):
    """The crafted files alone, in this process: each a CheckpointError naming it, fast, no memory growth."""
    from polyformers.errors import CheckpointError
    from polyformers.flax_msgpack import read_flax_msgpack
    from polyformers.tf_h5 import read_tf_h5

    for crafted in _crafted_h5(tmp_path):
        if crafted.stem.startswith("huge"):
            with MemoryBound(), pytest.raises(CheckpointError, match=f"{crafted.name}.*declares"):
                read_tf_h5(crafted)
    path = tmp_path / "flax_model.msgpack"
    for data in _crafted_msgpack()[:5]:
        path.write_bytes(data)
        with MemoryBound(), pytest.raises(CheckpointError, match="flax_model.msgpack"):
            read_flax_msgpack(path)
