"""The truncation matrix: every artifact we read, cut or with flipped header bits, fails typed and named.

Each artifact of a tiny BERT checkpoint (written by ``fuzz_support.write_tiny_checkpoints``) is cut
at 0, 7, 8, header-1, the middle and size-1 bytes, and loaded through the public
``from_pretrained`` of the class that reads it. "header" is where the format's own framing ends:
the safetensors JSON header (8 + its length), the first local file header of a zip, the data of
the first dataset of an HDF5 file, the first tensor payload of a msgpack file, the first key of a
JSON file. Every cut must raise the documented error type, with the file's name in the message:

- weights (``model.safetensors``, shards, ``pytorch_model.bin``, ``tf_model.h5``,
  ``flax_model.msgpack``): ``CheckpointError`` (an ``OSError``);
- ``config.json``: ``ConfigError`` (a ``ValueError``);
- ``tokenizer.json``, ``tokenizer_config.json``, ``preprocessor_config.json``: ``OSError``.

Flipping bits of the length or magic bytes (the first 8 bytes) must raise too. Flipping bits
further inside a header may hit a byte no format can check (a letter of a tensor name): there
the file may load, but nothing else than the typed, named error may escape.

``vocab.txt`` is not in the matrix: a cut vocabulary is a shorter valid vocabulary, and nothing
in the file tells them apart.

Shards: one listed by the index but missing, or an index listing a tensor no shard holds, is an
error naming them. A shard present but unlisted is ignored, as in Transformers (a directory may
hold an older save's leftovers; save_pretrained removes those itself): the load reads only what
the index lists and succeeds.
"""

from __future__ import annotations

import json
import os
import shutil
import struct

import numpy as np
import pytest

from polyformers import AutoFeatureExtractor, AutoTokenizer
from polyformers.errors import CheckpointError, ConfigError
from polyformers_bert.modeling_bert import BertModel

# kind -> (directory in tiny_checkpoints, file name, loader, expected error)
WEIGHTS = {
    "safetensors": ("safetensors", "model.safetensors", {}),
    "safetensors (TF names)": ("safetensors_tf", "model.safetensors", {}),
    "safetensors (Flax names)": ("safetensors_flax", "model.safetensors", {}),
    "safetensors shard": ("sharded", "model-00001-of-00002.safetensors", {}),
    "shard index": ("sharded", "model.safetensors.index.json", {}),
    "pytorch_model.bin (zip)": ("bin_zip", "pytorch_model.bin", {}),
    "pytorch_model.bin (legacy)": ("bin_legacy", "pytorch_model.bin", {}),
    "tf_model.h5": ("h5", "tf_model.h5", {"from_tf": True}),
    "flax_model.msgpack": ("msgpack", "flax_model.msgpack", {"from_flax": True}),
}
OTHERS = {
    "config.json": ("safetensors", "config.json"),
    "tokenizer.json": ("tokenizer", "tokenizer.json"),
    "tokenizer_config.json": ("tokenizer", "tokenizer_config.json"),
    "preprocessor_config.json": ("preprocessor", "preprocessor_config.json"),
}
JSON_FILES = ("config.json", "tokenizer.json", "tokenizer_config.json", "preprocessor_config.json", "model.safetensors.index.json")


def header_end(path) -> int:
    """Where the format's framing ends and the payload starts (see the module docstring)."""
    name = os.path.basename(path)
    data = path.read_bytes()
    if name.endswith(".safetensors"):
        return 8 + struct.unpack("<Q", data[:8])[0]
    if name.endswith(".json"):
        return data.index(b":")
    if name == "pytorch_model.bin":
        if data[:4] == b"PK\x03\x04":  # zip: 30 fixed bytes, the name, the extra field
            name_len, extra_len = struct.unpack("<HH", data[26:30])
            return 30 + name_len + extra_len
        return data.index(b"\x80\x02", 2) if b"\x80\x02" in data[2:] else len(data) // 4  # legacy: the second pickle
    if name == "tf_model.h5":
        import h5py

        offsets = []
        with h5py.File(path, "r") as f:
            f.visititems(lambda _, obj: offsets.append(obj.id.get_offset()) if isinstance(obj, h5py.Dataset) and obj.id.get_offset() else None)
        return min(offsets)
    if name == "flax_model.msgpack":
        from polyformers.flax_msgpack import read_flax_msgpack

        tree = read_flax_msgpack(path)
        while isinstance(tree, dict):
            tree = next(iter(tree.values()))
        return data.index(np.ascontiguousarray(tree).tobytes())
    raise AssertionError(name)


def cuts(path) -> dict[str, int]:
    size = len(content(path))
    return {"0": 0, "7": 7, "8": 8, "header-1": header_end(path) - 1, "middle": size // 2, "size-1": size - 1}


def content(path) -> bytes:
    data = path.read_bytes()
    # JSON files end in a newline; cutting it off leaves the same JSON, so cut the JSON itself.
    return data.rstrip(b"\n") if path.name.endswith(".json") else data


@pytest.fixture
def copy_of(tiny_checkpoints, tmp_path):
    def copy(directory_kind):
        target = tmp_path / directory_kind
        shutil.copytree(tiny_checkpoints[directory_kind], target)
        return target

    return copy


def load_weights(directory, loader_kwargs):
    return BertModel.from_pretrained(directory, **loader_kwargs)


@pytest.mark.parametrize("cut", ["0", "7", "8", "header-1", "middle", "size-1"])
@pytest.mark.parametrize("kind", WEIGHTS)
def test_cut_weights_raise_checkpoint_error_naming_the_file(copy_of, kind, cut):
    directory_kind, filename, loader_kwargs = WEIGHTS[kind]
    directory = copy_of(directory_kind)
    path = directory / filename
    path.write_bytes(content(path)[: cuts(path)[cut]])

    with pytest.raises(CheckpointError) as info:
        load_weights(directory, loader_kwargs)
    assert filename in str(info.value)


@pytest.mark.parametrize("cut", ["0", "7", "8", "header-1", "middle", "size-1"])
@pytest.mark.parametrize("kind", list(OTHERS))
def test_cut_json_files_raise_typed_errors_naming_the_file(copy_of, kind, cut):
    directory_kind, filename = OTHERS[kind]
    directory = copy_of(directory_kind)
    path = directory / filename
    path.write_bytes(content(path)[: cuts(path)[cut]])

    expected, load = {
        "config.json": (ConfigError, lambda: BertModel.from_pretrained(directory)),
        "tokenizer.json": (OSError, lambda: AutoTokenizer.from_pretrained(directory)),
        "tokenizer_config.json": (OSError, lambda: AutoTokenizer.from_pretrained(directory)),
        "preprocessor_config.json": (OSError, lambda: AutoFeatureExtractor.from_pretrained(directory)),
    }[kind]
    with pytest.raises(expected) as info:
        load()
    assert filename in str(info.value)


def flip(data: bytes, positions) -> bytes:
    flipped = bytearray(data)
    for position in positions:
        flipped[position] ^= 0xFF
    return bytes(flipped)


# pytorch_model.bin is left out: torch reads a zip from its central directory at the end, and a
# legacy file's first bytes are a pickled magic number it does not compare byte for byte, so
# these flips load. The next test covers it.
@pytest.mark.parametrize("kind", [k for k in WEIGHTS if WEIGHTS[k][1] not in ("model.safetensors.index.json", "pytorch_model.bin")])
def test_flipped_length_or_magic_bytes_raise_checkpoint_error(copy_of, kind):
    directory_kind, filename, loader_kwargs = WEIGHTS[kind]
    directory = copy_of(directory_kind)
    path = directory / filename
    original = path.read_bytes()
    for positions in ([0], [1], [3], [7], range(8)):
        path.write_bytes(flip(original, positions))
        with pytest.raises(CheckpointError) as info:
            load_weights(directory, loader_kwargs)
        assert filename in str(info.value), f"bytes {list(positions)} flipped"


@pytest.mark.parametrize("kind", [*WEIGHTS, *OTHERS])
def test_flipped_header_bits_load_or_raise_typed_errors(copy_of, kind):
    """Every byte of the header flipped in turn (at most 64, spread over it): a load, or the typed, named error."""
    if kind in WEIGHTS:
        directory_kind, filename, loader_kwargs = WEIGHTS[kind]
        expected, load = CheckpointError, lambda: load_weights(directory, loader_kwargs)
    else:
        directory_kind, filename = OTHERS[kind]
        expected = {"config.json": ConfigError}.get(kind, OSError)
        load = {
            "config.json": lambda: BertModel.from_pretrained(directory),
            "preprocessor_config.json": lambda: AutoFeatureExtractor.from_pretrained(directory),
        }.get(kind, lambda: AutoTokenizer.from_pretrained(directory))
    directory = copy_of(directory_kind)
    path = directory / filename
    original = path.read_bytes()
    end = header_end(path) if not filename.endswith(".json") else len(original)
    positions = sorted(set(np.linspace(0, end - 1, num=min(end, 64)).astype(int).tolist()))
    rejected = 0
    for position in positions:
        path.write_bytes(flip(original, [position]))
        try:
            load()
        except expected as exc:
            assert filename in str(exc), f"byte {position} flipped: {exc}"
            rejected += 1
    assert rejected > 0, "no flipped byte was noticed at all"


# --- shards and their index --------------------------------------------------------------------


def test_shard_listed_but_missing_is_named(copy_of):
    directory = copy_of("sharded")
    os.remove(directory / "model-00002-of-00002.safetensors")
    with pytest.raises(CheckpointError, match="model-00002-of-00002.safetensors"):
        BertModel.from_pretrained(directory)


def test_tensors_listed_but_held_by_no_shard_are_named(copy_of):
    directory = copy_of("sharded")
    index = json.loads((directory / "model.safetensors.index.json").read_text())
    index["weight_map"]["encoder.layer.0.extra.weight"] = "model-00001-of-00002.safetensors"
    (directory / "model.safetensors.index.json").write_text(json.dumps(index))
    with pytest.raises(CheckpointError, match=r"model.safetensors.index.json.*encoder\.layer\.0\.extra\.weight"):
        BertModel.from_pretrained(directory)


def test_shard_present_but_unlisted_is_ignored(copy_of):
    """Transformers' behaviour: the index decides which files are read; an extra file is not opened."""
    directory = copy_of("sharded")
    (directory / "model-00003-of-00003.safetensors").write_bytes(b"not even a safetensors file")
    model, info = BertModel.from_pretrained(directory, output_loading_info=True)
    assert info["missing_keys"] == [] and info["unexpected_keys"] == []


def test_index_naming_a_shard_outside_the_directory_is_refused(copy_of, tmp_path):
    """A weight_map value is a file name in the checkpoint, never a path to elsewhere."""
    directory = copy_of("sharded")
    outside = tmp_path / "outside.safetensors"
    shutil.copy(directory / "model-00001-of-00002.safetensors", outside)
    index = json.loads((directory / "model.safetensors.index.json").read_text())
    index["weight_map"] = {k: ("../outside.safetensors" if v.endswith("00001-of-00002.safetensors") else v) for k, v in index["weight_map"].items()}
    (directory / "model.safetensors.index.json").write_text(json.dumps(index))
    with pytest.raises(CheckpointError, match=r"model.safetensors.index.json.*\.\./outside\.safetensors"):
        BertModel.from_pretrained(directory)
