"""Convert a checkpoint directory between PyTorch, TensorFlow and Flax weight files.

    polyformers convert SRC DST --to {pt,tf,flax} [--safetensors | --no-safetensors]

or :func:`convert` from Python. The source framework is read from the files present. The target
model class comes from ``config.json``'s ``architectures`` (``BertForMaskedLM`` becomes
``TFBertForMaskedLM`` for ``--to tf``), so only the target framework must be installed: weights
pass between frameworks as numpy arrays in PyTorch's names (see :mod:`polyformers.conversion`).
Tokenizer and preprocessor files are copied along.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from typing import Any

from .checkpoint_utils import (
    FLAX_WEIGHTS_INDEX_NAME,
    FLAX_WEIGHTS_NAME,
    SAFE_WEIGHTS_INDEX_NAME,
    SAFE_WEIGHTS_NAME,
    TF2_WEIGHTS_INDEX_NAME,
    TF2_WEIGHTS_NAME,
    WEIGHTS_INDEX_NAME,
    WEIGHTS_NAME,
    checkpoint_format,
    read_foreign_as_pt_state,
    resolve_weights,
)
from .registry import FRAMEWORKS, TASKS

TARGETS = ("pt", "tf", "flax")
_COPIED_FILES = (
    "tokenizer.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "added_tokens.json",
    "vocab.txt",
    "vocab.json",
    "merges.txt",
    "spiece.model",
    "sentencepiece.bpe.model",
    "preprocessor_config.json",
    "processor_config.json",
    "generation_config.json",
)


def source_framework(src: str) -> tuple[str, str, list[str]]:
    """``(framework, weights_name, files)`` of the weights in directory ``src``."""
    candidates = [
        (SAFE_WEIGHTS_NAME, SAFE_WEIGHTS_INDEX_NAME),
        (WEIGHTS_NAME, WEIGHTS_INDEX_NAME),
        (TF2_WEIGHTS_NAME, TF2_WEIGHTS_INDEX_NAME),
        (FLAX_WEIGHTS_NAME, FLAX_WEIGHTS_INDEX_NAME),
    ]
    found = resolve_weights(src, candidates)
    if found is None:
        raise OSError(f"{src!r} holds no weights (looked for {', '.join(n for pair in candidates for n in pair)}).")
    weights_name, files = found
    if weights_name.startswith("tf_model"):
        return "tf", weights_name, files
    if weights_name.startswith("flax_model"):
        return "flax", weights_name, files
    if weights_name.startswith("model.safetensors"):
        shard = files[1] if weights_name.endswith(".index.json") else files[0]
        return checkpoint_format(shard), weights_name, files
    return "pt", weights_name, files


def target_class(config: Any, to: str, model_class: str | None = None) -> type:
    """The ``to``-framework class for the architecture named in the config (or the base model)."""
    from .plugins import find_class
    from .registry import get_model_class

    name = model_class or (config.architectures or [None])[0]
    if name is None:
        return get_model_class(config.model_type, "base", to)
    stem = re.sub(r"^(TF|Flax)", "", name)
    if to == "flax" and stem.endswith("LMHeadModel"):  # Transformers' Flax name for causal LMs
        stem = stem.replace("LMHeadModel", "ForCausalLM")
    if to == "pt" and stem.endswith("ForCausalLM") and name.startswith("Flax"):
        stem = stem.replace("ForCausalLM", "LMHeadModel")
    try:
        return find_class(FRAMEWORKS[to][2] + stem)
    except AttributeError as exc:
        available = ", ".join(sorted({t for (mt, t, f) in _registered() if mt == config.model_type and f == to}))
        raise ValueError(
            f"No {FRAMEWORKS[to][1]} class {FRAMEWORKS[to][2] + stem} is registered for model type "
            f"{config.model_type!r} (tasks available: {available or 'none'}); pass model_class= "
            f"with one of the {', '.join(TASKS.values())} classes' names."
        ) from exc


def _registered():
    from .registry import REGISTRY

    return [key for key, by_source in REGISTRY.models.items() if by_source]


def convert(src: str | os.PathLike, dst: str | os.PathLike, *, to: str, safe_serialization: bool | None = None, model_class: str | None = None) -> type:
    """Write ``src``'s weights as a ``to`` checkpoint in ``dst``; returns the class used.

    ``safe_serialization`` picks safetensors (default for PyTorch, as in Transformers) or the
    framework's own format (``pytorch_model.bin``, ``tf_model.h5``, ``flax_model.msgpack``; the
    default for TensorFlow and Flax).
    """
    from .auto import AutoConfig

    if to not in TARGETS:
        raise ValueError(f"to must be one of {', '.join(TARGETS)}, got {to!r}.")
    src, dst = os.fspath(src), os.fspath(dst)
    if not os.path.isdir(src):
        raise OSError(f"{src!r} is not a directory: convert reads a directory written by save_pretrained.")
    if os.path.abspath(src) == os.path.abspath(dst):
        raise ValueError("dst must differ from src: converting in place would mix two frameworks' files.")
    config = AutoConfig.from_pretrained(src)
    cls = target_class(config, to, model_class)
    source, weights_name, files = source_framework(src)
    if safe_serialization is None:
        safe_serialization = to == "pt"

    if source == to:
        model = cls.from_pretrained(src)
    elif to == "pt":
        model = cls.from_pretrained(src, from_tf=source == "tf", from_flax=source == "flax")
    elif source == "pt":
        model = cls.from_pretrained(src, from_pt=True)
    else:  # TF <-> Flax: through a PyTorch-named safetensors file, with no PyTorch needed
        from safetensors.numpy import save_file

        state = read_foreign_as_pt_state(files, weights_name)
        with tempfile.TemporaryDirectory() as tmp:
            config.save_pretrained(tmp)
            save_file({k: v for k, v in state.items()}, os.path.join(tmp, SAFE_WEIGHTS_NAME), metadata={"format": "pt"})
            model = cls.from_pretrained(tmp, from_pt=True)
    model.save_pretrained(dst, safe_serialization=safe_serialization)
    for name in _COPIED_FILES:
        if os.path.isfile(os.path.join(src, name)):
            shutil.copy2(os.path.join(src, name), os.path.join(dst, name))
    return cls
