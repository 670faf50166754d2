"""``PreTrainedModel``: the PyTorch model base class, with Transformers-compatible checkpoints.

Loading builds the model with its parameters on the ``meta`` device (no memory, no random
initialisation), then assigns the checkpoint's tensors to it. safetensors files are memory-mapped,
so a float32 model costs about one copy of its weights. Only parameters the checkpoint lacks are
materialised and initialised.
"""

from __future__ import annotations

import contextlib
import contextvars
import copy
import logging
import os
import pickle
import re
import struct
import warnings
from dataclasses import dataclass, field
from typing import Any, Iterable, Iterator

import numpy as np
import torch
from torch import nn

from .checkpoint_utils import (
    log_loading_report,
    DEFAULT_MAX_SHARD_SIZE,
    checkpoint_format,
    read_foreign_as_pt_state,
    FLAX_WEIGHTS_INDEX_NAME,
    FLAX_WEIGHTS_NAME,
    SAFE_WEIGHTS_INDEX_NAME,
    SAFE_WEIGHTS_NAME,
    TF2_WEIGHTS_INDEX_NAME,
    TF2_WEIGHTS_NAME,
    WEIGHTS_INDEX_NAME,
    WEIGHTS_NAME,
    index_json,
    is_stale_weights_file,
    plan_shards,
    read_index,
    resolve_weights,
    shard_file_names,
)
from .configuration_utils import PretrainedConfig
from .errors import CheckpointError, WeightShapeMismatchError
from .hub import missing_file_error, pop_hub_kwargs, resolve_file
from .io_utils import atomic_path, atomic_write_text

logger = logging.getLogger(__name__)

# Old TF-converted checkpoints call LayerNorm parameters gamma/beta.
_LEGACY_RENAMES = ((re.compile(r"LayerNorm\.gamma$"), "LayerNorm.weight"), (re.compile(r"LayerNorm\.beta$"), "LayerNorm.bias"))


# --- reading checkpoint files ------------------------------------------------------------------


def load_safetensors(path: str) -> dict[str, torch.Tensor]:
    """Memory-map a safetensors file; a truncated or corrupt file raises CheckpointError."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    try:
        return load_file(path)
    except (SafetensorError, OSError, ValueError, RuntimeError) as exc:
        size = os.path.getsize(path) if os.path.exists(path) else "missing"
        raise CheckpointError(
            f"Cannot read the safetensors file {path!r} ({size} bytes): {exc}. The file is "
            f"truncated or corrupt; download or save it again."
        ) from exc


def load_torch_pickle(path: str, weights_only: bool = True) -> dict[str, torch.Tensor]:
    """Read a ``pytorch_model.bin`` with torch's safe unpickler (tensors and containers only)."""
    if not weights_only:
        warnings.warn(f"Loading {path!r} with weights_only=False runs arbitrary pickled code; only do this for files you trust.", stacklevel=3)
    try:
        try:
            state_dict = torch.load(path, map_location="cpu", weights_only=weights_only, mmap=True)
        except RuntimeError as exc:
            if "mmap" not in str(exc):
                raise
            state_dict = torch.load(path, map_location="cpu", weights_only=weights_only)  # legacy format
    except pickle.UnpicklingError as exc:
        raise CheckpointError(
            f"Refused to load {path!r}: it holds objects other than tensors, which the safe loader "
            f"does not unpickle ({str(exc).splitlines()[0]}). Convert it to safetensors, or, only "
            f"if you trust its source, pass weights_only=False."
        ) from exc
    except (RuntimeError, EOFError, OSError, ValueError, IndexError, KeyError, TypeError, AttributeError, struct.error) as exc:
        # A cut or bit-flipped pickle stream fails inside the unpickler with any of these.
        raise CheckpointError(f"Cannot read the PyTorch checkpoint {path!r}: {exc}. The file is truncated or corrupt; download or save it again.") from exc
    if not isinstance(state_dict, dict):
        raise CheckpointError(f"{path!r} holds a {type(state_dict).__name__}, not a state dict of tensors.")
    return state_dict


def load_checkpoint_files(files: list[str], weights_name: str, weights_only: bool = True) -> dict[str, torch.Tensor]:
    """Read a single weights file, or every shard listed by an index (``files[0]``)."""
    is_index = weights_name.endswith(".index.json")
    loader = load_safetensors if weights_name.startswith("model.safetensors") else (lambda p: load_torch_pickle(p, weights_only))
    if not is_index:
        return loader(files[0])
    weight_map = read_index(files[0])
    state_dict: dict[str, torch.Tensor] = {}
    for shard in files[1:]:
        state_dict.update(loader(shard))
    absent = sorted(set(weight_map) - set(state_dict))
    if absent:
        raise CheckpointError(
            f"The shard index {files[0]!r} lists {len(absent)} tensors that no shard holds "
            f"(first: {absent[:3]}); the shards do not match the index. Re-save the checkpoint."
        )
    return state_dict


# --- building a model without allocating or initialising its parameters -----------------------


# torch.nn.init functions that module constructors (reset_parameters) call.
_TORCH_INIT_FUNCTIONS = (
    "uniform_", "normal_", "trunc_normal_", "constant_", "ones_", "zeros_", "eye_", "dirac_",
    "xavier_uniform_", "xavier_normal_", "kaiming_uniform_", "kaiming_normal_", "orthogonal_", "sparse_",
)
_skip_init = contextvars.ContextVar("polyformers_skip_init", default=False)


@contextlib.contextmanager
def empty_parameters() -> Iterator[None]:
    """Build modules without allocating or initialising their parameters.

    While active, every ``nn.Parameter`` is created on the meta device, ``torch.nn.init``
    functions do nothing, and :meth:`PreTrainedModel.init_weights` is skipped: random values would
    be overwritten by the checkpoint anyway (and even on meta tensors, torch's initialisers cost
    more than a whole load). Buffers stay real: position ids and other non-persistent buffers are
    computed in ``__init__`` and are rarely in checkpoints. Parameters the checkpoint lacks are
    initialised afterwards, one module at a time.
    """
    original_register = nn.Module.register_parameter
    originals = {name: getattr(nn.init, name) for name in _TORCH_INIT_FUNCTIONS if hasattr(nn.init, name)}

    def register_parameter(module: nn.Module, name: str, param: nn.Parameter | None) -> None:
        if param is not None and param.device.type != "meta":
            param = nn.Parameter(param.to("meta"), requires_grad=param.requires_grad)
        original_register(module, name, param)

    def skip(tensor: torch.Tensor, *args: Any, **kwargs: Any) -> torch.Tensor:
        return tensor

    nn.Module.register_parameter = register_parameter
    for name in originals:
        setattr(nn.init, name, skip)
    token = _skip_init.set(True)
    try:
        yield
    finally:
        _skip_init.reset(token)
        for name, function in originals.items():
            setattr(nn.init, name, function)
        nn.Module.register_parameter = original_register


@contextlib.contextmanager
def default_dtype(dtype: torch.dtype) -> Iterator[None]:
    previous = torch.get_default_dtype()
    torch.set_default_dtype(dtype)
    try:
        yield
    finally:
        torch.set_default_dtype(previous)


def _resolve_dtype(torch_dtype: Any, config: PretrainedConfig, state_dict_dtypes: Iterator[torch.dtype]) -> torch.dtype:
    if torch_dtype is None:
        return torch.float32  # Transformers v4's default: float32 whatever the checkpoint holds
    if torch_dtype == "auto":
        if config.torch_dtype not in (None, "auto"):
            return getattr(torch, config.torch_dtype)
        return next((d for d in state_dict_dtypes if d.is_floating_point), torch.float32)
    if isinstance(torch_dtype, str):
        if not isinstance(getattr(torch, torch_dtype, None), torch.dtype):
            raise ValueError(f"torch_dtype={torch_dtype!r} is not a torch dtype; pass e.g. torch.float16, 'bfloat16' or 'auto'.")
        return getattr(torch, torch_dtype)
    if isinstance(torch_dtype, torch.dtype):
        return torch_dtype
    raise TypeError(f"torch_dtype must be a torch.dtype, a dtype name or 'auto', got {torch_dtype!r}.")


@dataclass
class LoadingInfo:
    """What a load did not match: returned with ``output_loading_info=True``."""

    missing_keys: list[str] = field(default_factory=list)
    unexpected_keys: list[str] = field(default_factory=list)
    mismatched_keys: list[tuple[str, tuple[int, ...], tuple[int, ...]]] = field(default_factory=list)
    error_msgs: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, list]:
        return {
            "missing_keys": self.missing_keys,
            "unexpected_keys": self.unexpected_keys,
            "mismatched_keys": self.mismatched_keys,
            "error_msgs": self.error_msgs,
        }


# --- the base class -----------------------------------------------------------------------------


class PreTrainedModel(nn.Module):
    """Base of every PyTorch model: config handling, checkpoint loading and saving, weight tying.

    Subclasses set ``config_class``, ``base_model_prefix`` (the attribute holding the backbone in
    task models, e.g. ``"bert"``) and implement ``_init_weights(module)``. They call
    :meth:`post_init` at the end of ``__init__``.
    """

    config_class: type[PretrainedConfig] = PretrainedConfig
    base_model_prefix: str = ""
    main_input_name: str = "input_ids"
    supports_gradient_checkpointing: bool = False
    # Parameters that are the same tensor as another one when config.tie_word_embeddings is set:
    # {tied name: source name}. Ties that always hold are restored by overriding tie_weights().
    _tied_weights_keys: dict[str, str] = {}
    # Regex patterns of checkpoint keys that may be missing or unexpected without a warning.
    _keys_to_ignore_on_load_missing: list[str] = []
    _keys_to_ignore_on_load_unexpected: list[str] = []
    _no_split_modules: list[str] = []

    def __init__(self, config: PretrainedConfig, *inputs: Any, **kwargs: Any) -> None:
        super().__init__()
        if not isinstance(config, PretrainedConfig):
            raise TypeError(
                f"{type(self).__name__} expects a {self.config_class.__name__} (a PretrainedConfig) "
                f"as config, got {type(config).__name__}. To load weights use "
                f"{type(self).__name__}.from_pretrained(path)."
            )
        self.config = config
        self.name_or_path = config.name_or_path

    def post_init(self) -> None:
        """Initialise weights and tie them; call at the end of every subclass ``__init__``."""
        self.init_weights()

    def init_weights(self) -> None:
        if not _skip_init.get():  # skipped while from_pretrained builds an empty model
            self.apply(self._init_weights)
        self.tie_weights()

    def _init_weights(self, module: nn.Module) -> None:
        """Initialise one module's own parameters. Families override this."""

    # --- embeddings and tying ------------------------------------------------------------------

    @property
    def base_model(self) -> nn.Module:
        return getattr(self, self.base_model_prefix, self)

    def get_input_embeddings(self) -> nn.Module:
        base = self.base_model
        if base is not self:
            return base.get_input_embeddings()
        raise NotImplementedError(f"{type(self).__name__} does not define get_input_embeddings().")

    def set_input_embeddings(self, value: nn.Module) -> None:
        base = self.base_model
        if base is not self:
            return base.set_input_embeddings(value)
        raise NotImplementedError(f"{type(self).__name__} does not define set_input_embeddings().")

    def get_output_embeddings(self) -> nn.Module | None:
        return None

    def tie_weights(self) -> None:
        """Make each ``_tied_weights_keys`` target the same Parameter as its source."""
        if not self.config.tie_word_embeddings:
            return
        for target, source in self._tied_weights_keys.items():
            target_owner, target_attr = self._owner_of(target)
            source_owner, source_attr = self._owner_of(source)
            if target_owner is None or source_owner is None:
                continue
            setattr(target_owner, target_attr, getattr(source_owner, source_attr))

    def _owner_of(self, name: str) -> tuple[nn.Module | None, str]:
        module_path, _, attr = name.rpartition(".")
        try:
            return self.get_submodule(module_path), attr
        except AttributeError:
            return None, attr

    def resize_token_embeddings(self, new_num_tokens: int | None = None, pad_to_multiple_of: int | None = None) -> nn.Embedding:
        """Grow or shrink the vocabulary; new rows are initialised like the rest, old rows kept."""
        old = self.get_input_embeddings()
        if new_num_tokens is None and pad_to_multiple_of is None:
            return old
        new_num_tokens = new_num_tokens if new_num_tokens is not None else old.num_embeddings
        if pad_to_multiple_of is not None:
            new_num_tokens = -(-new_num_tokens // pad_to_multiple_of) * pad_to_multiple_of
        new = nn.Embedding(new_num_tokens, old.embedding_dim, padding_idx=old.padding_idx, device=old.weight.device, dtype=old.weight.dtype)
        self._init_weights(new)
        keep = min(old.num_embeddings, new_num_tokens)
        with torch.no_grad():
            new.weight[:keep] = old.weight[:keep]
        self.set_input_embeddings(new)
        output = self.get_output_embeddings()
        if output is not None and getattr(output, "bias", None) is not None:
            old_bias = output.bias
            new_bias = nn.Parameter(torch.zeros(new_num_tokens, dtype=old_bias.dtype, device=old_bias.device))
            with torch.no_grad():
                new_bias[:keep] = old_bias[:keep]
            for module in self.modules():  # the bias may be shared under several names
                for name, param in list(module._parameters.items()):
                    if param is old_bias:
                        module._parameters[name] = new_bias
            output.out_features = new_num_tokens
        self.config.vocab_size = new_num_tokens
        self.tie_weights()
        return new

    # --- masks ---------------------------------------------------------------------------------

    @property
    def dtype(self) -> torch.dtype:
        return next((p.dtype for p in self.parameters() if p.is_floating_point()), torch.get_default_dtype())

    @property
    def device(self) -> torch.device:
        return next(self.parameters()).device

    def optimize_for_inference(self, dtype: torch.dtype | None = None, backend: str = "auto") -> "PreTrainedModel":
        """Fast CPU inference (oneDNN-prepacked weights, fused activations; bf16 with ``dtype=torch.bfloat16``).

        Returns ``self``; idempotent. Parameters, ``state_dict()`` and training are unchanged: the
        fast path runs only in eval mode without gradients. See :mod:`polyformers.inference`.
        """
        from .inference import optimize_for_inference

        return optimize_for_inference(self, dtype=dtype, backend=backend)

    def num_parameters(self, only_trainable: bool = False, exclude_embeddings: bool = False) -> int:
        embeddings = {id(m.weight) for m in self.modules() if isinstance(m, nn.Embedding)} if exclude_embeddings else set()
        seen, total = set(), 0
        for p in self.parameters():
            if id(p) in seen or id(p) in embeddings or (only_trainable and not p.requires_grad):
                continue
            seen.add(id(p))
            total += p.numel()
        return total

    def get_extended_attention_mask(self, attention_mask: torch.Tensor, input_shape: tuple[int, ...], dtype: torch.dtype | None = None) -> torch.Tensor:
        """(B, T) 1/0 mask -> (B, 1, [T or 1], T) additive mask: 0 to keep, dtype-min to drop.

        For decoders the mask is also causal.
        """
        dtype = dtype or self.dtype
        if attention_mask.dim() == 3:
            extended = attention_mask[:, None, :, :]
        elif attention_mask.dim() == 2:
            if self.config.is_decoder:
                batch_size, seq_length = input_shape
                seq_ids = torch.arange(seq_length, device=attention_mask.device)
                causal = seq_ids[None, None, :].repeat(batch_size, seq_length, 1) <= seq_ids[None, :, None]
                causal = causal.to(attention_mask.dtype)
                prefix = attention_mask.shape[1] - causal.shape[1]  # cached positions are all visible
                if prefix > 0:
                    causal = torch.cat([torch.ones((batch_size, seq_length, prefix), device=attention_mask.device, dtype=causal.dtype), causal], dim=-1)
                extended = causal[:, None, :, :] * attention_mask[:, None, None, :]
            else:
                extended = attention_mask[:, None, None, :]
        else:
            raise ValueError(f"attention_mask must have 2 or 3 dimensions (batch, [query,] key), got shape {tuple(attention_mask.shape)}.")
        extended = extended.to(dtype=dtype)
        return (1.0 - extended) * torch.finfo(dtype).min

    def invert_attention_mask(self, encoder_attention_mask: torch.Tensor) -> torch.Tensor:
        if encoder_attention_mask.dim() == 3:
            extended = encoder_attention_mask[:, None, :, :]
        else:
            extended = encoder_attention_mask[:, None, None, :]
        extended = extended.to(dtype=self.dtype)
        return (1.0 - extended) * torch.finfo(self.dtype).min

    def get_head_mask(self, head_mask: torch.Tensor | None, num_hidden_layers: int) -> list[torch.Tensor | None]:
        """(H,) or (L, H) mask of heads to keep -> a per-layer list of (1, H, 1, 1) masks."""
        if head_mask is None:
            return [None] * num_hidden_layers
        if head_mask.dim() == 1:
            head_mask = head_mask[None, None, :, None, None].expand(num_hidden_layers, -1, -1, -1, -1)
        elif head_mask.dim() == 2:
            head_mask = head_mask[:, None, :, None, None]
        else:
            raise ValueError(f"head_mask must have shape (num_heads,) or (num_layers, num_heads), got {tuple(head_mask.shape)}.")
        if head_mask.shape[0] != num_hidden_layers:
            raise ValueError(f"head_mask has {head_mask.shape[0]} layers, but the model has {num_hidden_layers}.")
        return list(head_mask.to(dtype=self.dtype))

    # --- construction ---------------------------------------------------------------------------

    @classmethod
    def _from_config(cls, config: PretrainedConfig, torch_dtype: Any = None, **kwargs: Any) -> "PreTrainedModel":
        """A randomly initialised model (what ``AutoModel.from_config`` builds)."""
        torch_dtype = kwargs.pop("dtype", torch_dtype)
        attn = kwargs.pop("attn_implementation", None)
        config = copy.deepcopy(config)
        if attn is not None:
            config._attn_implementation = attn
        dtype = _resolve_dtype(torch_dtype, config, iter(()))
        with default_dtype(dtype):
            return cls(config, **kwargs)

    @classmethod
    def from_pretrained(
        cls,
        pretrained_model_name_or_path: str | os.PathLike | None,
        *model_args: Any,
        config: PretrainedConfig | str | os.PathLike | None = None,
        state_dict: dict[str, torch.Tensor] | None = None,
        torch_dtype: Any = None,
        output_loading_info: bool = False,
        ignore_mismatched_sizes: bool = False,
        use_safetensors: bool | None = None,
        weights_only: bool = True,
        from_tf: bool = False,
        from_flax: bool = False,
        attn_implementation: str | None = None,
        **kwargs: Any,
    ) -> "PreTrainedModel" | tuple["PreTrainedModel", dict[str, list]]:
        """Load a model from a directory written by ``save_pretrained`` (ours or Transformers') or a hub repo.

        Weight files are tried in Transformers' order: ``model.safetensors``, its sharded index,
        ``pytorch_model.bin`` (through the safe unpickler), its sharded index. Checkpoints of the
        backbone load into task models and vice versa (``base_model_prefix``). Keys the model
        lacks, keys the checkpoint lacks and shape mismatches are reported as warnings, and
        returned with ``output_loading_info=True``.
        """
        torch_dtype = kwargs.pop("dtype", torch_dtype)
        for unsupported in ("device_map", "low_cpu_mem_usage", "_fast_init"):
            kwargs.pop(unsupported, None)  # loading is always low-memory here
        kwargs.pop("trust_remote_code", None)
        hub_kwargs = pop_hub_kwargs(kwargs)

        if not isinstance(config, PretrainedConfig):
            config_path = config if config is not None else pretrained_model_name_or_path
            config, model_kwargs = cls.config_class.from_pretrained(config_path, return_unused_kwargs=True, **hub_kwargs, **kwargs)
        else:
            config = copy.deepcopy(config)
            model_kwargs = {}
            for key, value in kwargs.items():
                if hasattr(config, key):
                    setattr(config, key, value)
                else:
                    model_kwargs[key] = value
        if attn_implementation is not None:
            config._attn_implementation = attn_implementation

        if state_dict is None:
            if pretrained_model_name_or_path is None:
                raise ValueError("Pass pretrained_model_name_or_path, or state_dict= together with config=.")
            weights_name, files = cls._find_weights(pretrained_model_name_or_path, use_safetensors, from_tf, from_flax, hub_kwargs)
            if from_tf or from_flax or _written_by_other_framework(weights_name, files):
                arrays = read_foreign_as_pt_state(files, weights_name)
                state_dict = {k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in arrays.items()}
            else:
                state_dict = load_checkpoint_files(files, weights_name, weights_only=weights_only)

        dtype = _resolve_dtype(torch_dtype, config, (t.dtype for t in state_dict.values()))
        with empty_parameters(), default_dtype(dtype):
            model = cls(config, *model_args, **model_kwargs)
        info = model._load_state_dict_into_empty_model(state_dict, dtype, ignore_mismatched_sizes)
        model.config.torch_dtype = str(dtype).split(".")[-1]
        model.eval()  # as in Transformers: loaded models start in evaluation mode
        if output_loading_info:
            return model, info.as_dict()
        return model

    @classmethod
    def _find_weights(cls, path: Any, use_safetensors: bool | None, from_tf: bool, from_flax: bool, hub_kwargs: dict) -> tuple[str, list[str]]:
        """The weight files to read, in Transformers' order of preference for the chosen source."""
        if from_tf:
            candidates = [(TF2_WEIGHTS_NAME, TF2_WEIGHTS_INDEX_NAME), (SAFE_WEIGHTS_NAME, SAFE_WEIGHTS_INDEX_NAME)]
        elif from_flax:
            candidates = [(FLAX_WEIGHTS_NAME, FLAX_WEIGHTS_INDEX_NAME), (SAFE_WEIGHTS_NAME, SAFE_WEIGHTS_INDEX_NAME)]
        else:
            candidates = []
            if use_safetensors is not False:
                candidates.append((SAFE_WEIGHTS_NAME, SAFE_WEIGHTS_INDEX_NAME))
            if use_safetensors is not True:
                candidates.append((WEIGHTS_NAME, WEIGHTS_INDEX_NAME))
        found = resolve_weights(path, candidates, **hub_kwargs)
        if found is not None:
            return found
        looked_for = ", ".join(name for pair in candidates for name in pair)
        source = "TensorFlow" if from_tf else "Flax" if from_flax else "PyTorch"
        error = missing_file_error(path, f"{source} weights (looked for {looked_for})", **hub_kwargs)
        if use_safetensors and resolve_file(path, WEIGHTS_NAME, **hub_kwargs):
            raise OSError(f"{error} It has {WEIGHTS_NAME}: pass use_safetensors=False (or leave it unset) to load it.")
        if not (from_tf or from_flax):
            for name, flag in ((TF2_WEIGHTS_NAME, "from_tf"), (TF2_WEIGHTS_INDEX_NAME, "from_tf"), (FLAX_WEIGHTS_NAME, "from_flax"), (FLAX_WEIGHTS_INDEX_NAME, "from_flax")):
                if resolve_file(path, name, **hub_kwargs) is not None:
                    raise OSError(f"{error} It has {name}: pass {flag}=True to load it.")
        raise error

    def _tensor_slots(self) -> dict[str, tuple[nn.Module, str, bool]]:
        """Every state-dict entry as ``{key: (owning module, attribute, is_parameter)}``.

        The same keys as ``state_dict()`` (tied tensors under each of their names, persistent
        buffers only), found in one walk: loading reads and assigns through it directly, which
        is several times faster than ``load_state_dict`` for a model of hundreds of tensors.
        """
        slots: dict[str, tuple[nn.Module, str, bool]] = {}

        def walk(module: nn.Module, prefix: str) -> None:
            for name, param in module._parameters.items():
                if param is not None:
                    slots[prefix + name] = (module, name, True)
            for name, buffer in module._buffers.items():
                if buffer is not None and name not in module._non_persistent_buffers_set:
                    slots[prefix + name] = (module, name, False)
            for name, child in module._modules.items():
                if child is not None:
                    walk(child, f"{prefix}{name}.")

        walk(self, "")
        return slots

    def _load_state_dict_into_empty_model(self, state_dict: dict[str, torch.Tensor], dtype: torch.dtype, ignore_mismatched_sizes: bool) -> LoadingInfo:
        slots = self._tensor_slots()
        state_dict = self._rename_checkpoint_keys(state_dict, slots.keys())
        info = LoadingInfo()

        assign: dict[str, torch.Tensor] = {}
        for key, tensor in state_dict.items():
            slot = slots.get(key)
            if slot is None:
                info.unexpected_keys.append(key)
                continue
            module, name, is_param = slot
            current = (module._parameters if is_param else module._buffers)[name]
            if tensor.shape != current.shape:
                info.mismatched_keys.append((key, tuple(tensor.shape), tuple(current.shape)))
                continue
            if tensor.is_floating_point() and tensor.dtype != dtype:
                tensor = tensor.to(dtype)
            assign[key] = tensor

        if info.mismatched_keys and not ignore_mismatched_sizes:
            lines = "\n".join(f"- {k}: checkpoint {list(a)}, model {list(b)}" for k, a, b in info.mismatched_keys)
            raise WeightShapeMismatchError(
                f"Error(s) in loading state_dict for {type(self).__name__}: {len(info.mismatched_keys)} "
                f"checkpoint tensors have other shapes than the model's parameters:\n{lines}\n"
                f"Fix: use a config matching the checkpoint, or pass ignore_mismatched_sizes=True to "
                f"initialise these parameters anew (e.g. a classifier with another num_labels)."
            )

        for key, tensor in assign.items():
            module, name, is_param = slots[key]
            if is_param:
                module._parameters[name] = nn.Parameter(tensor, requires_grad=module._parameters[name].requires_grad)
            else:
                module._buffers[name] = tensor
        self.tie_weights()  # assigning replaced Parameters, which breaks ties: restore them
        # What is still on the meta device after tying was in no checkpoint tensor.
        mismatched = {k for k, _, _ in info.mismatched_keys}  # reported on their own
        missing = []
        for key, (module, name, is_param) in slots.items():
            tensor = (module._parameters if is_param else module._buffers)[name]
            if tensor.is_meta and key not in mismatched:
                missing.append(key)
        if missing or mismatched:
            self._materialize_missing()

        info.missing_keys = [k for k in missing if not _matches_any(k, self._keys_to_ignore_on_load_missing)]
        info.unexpected_keys = [k for k in info.unexpected_keys if not _matches_any(k, self._keys_to_ignore_on_load_unexpected)]
        self._warn_loading_report(info)
        return info

    def _rename_checkpoint_keys(self, state_dict: dict[str, torch.Tensor], expected: Iterable[str]) -> dict[str, torch.Tensor]:
        """Legacy names (gamma/beta) and the base-model prefix, in both directions."""
        renamed = {}
        for key, tensor in state_dict.items():
            if key.endswith(("gamma", "beta")):
                for pattern, new in _LEGACY_RENAMES:
                    key = pattern.sub(new, key)
            renamed[key] = tensor
        prefix = self.base_model_prefix
        if not prefix:
            return renamed
        model_has_prefix = any(k.startswith(prefix + ".") for k in expected)
        checkpoint_has_prefix = any(k.startswith(prefix + ".") for k in renamed)
        if model_has_prefix and not checkpoint_has_prefix:  # backbone checkpoint -> task model
            return {f"{prefix}.{k}": v for k, v in renamed.items()}
        if checkpoint_has_prefix and not model_has_prefix:  # task checkpoint -> backbone
            return {(k[len(prefix) + 1 :] if k.startswith(prefix + ".") else k): v for k, v in renamed.items()}
        return renamed

    def _materialize_missing(self) -> None:
        """Give real memory to parameters the checkpoint did not hold, and initialise them."""
        for module in self.modules():
            own = {name: p for name, p in module._parameters.items() if p is not None}
            if not any(p.is_meta for p in own.values()):
                continue
            # Initialising the module must not touch its loaded (possibly tied) tensors: they sit
            # out the initialisation, replaced by meta stand-ins on which init is a no-op.
            for name, p in own.items():
                empty = torch.empty_like(p, device="cpu") if p.is_meta else p.detach().to("meta")
                module._parameters[name] = nn.Parameter(empty, requires_grad=p.requires_grad)
            self._init_weights(module)
            for name, p in own.items():
                if not p.is_meta:
                    module._parameters[name] = p
        self.tie_weights()

    def _warn_loading_report(self, info: Any) -> None:
        log_loading_report(logger, type(self).__name__, info)

    # --- saving ------------------------------------------------------------------------------

    def save_pretrained(
        self,
        save_directory: str | os.PathLike,
        is_main_process: bool = True,
        state_dict: dict[str, torch.Tensor] | None = None,
        safe_serialization: bool = True,
        max_shard_size: int | str = DEFAULT_MAX_SHARD_SIZE,
        **kwargs: Any,
    ) -> None:
        """Write ``config.json`` and the weights (safetensors by default, sharded above ``max_shard_size``).

        Every file is written under a temporary name and renamed into place; weight files of an
        earlier save that the new one does not use are removed afterwards.
        """
        if kwargs.pop("push_to_hub", False):
            raise NotImplementedError("push_to_hub is not supported: save locally, then upload with huggingface_hub.")
        save_directory = os.fspath(save_directory)
        if os.path.isfile(save_directory):
            raise ValueError(f"save_directory {save_directory!r} is a file; pass a directory path.")
        os.makedirs(save_directory, exist_ok=True)
        if not is_main_process:
            return

        config = copy.deepcopy(self.config)
        config.architectures = [type(self).__name__]
        config.torch_dtype = str(self.dtype).split(".")[-1]

        state_dict = self._state_dict_for_saving(state_dict)
        weights_name = SAFE_WEIGHTS_NAME if safe_serialization else WEIGHTS_NAME
        index_name = SAFE_WEIGHTS_INDEX_NAME if safe_serialization else WEIGHTS_INDEX_NAME
        sizes = [(k, t.numel() * t.element_size()) for k, t in state_dict.items()]
        shards = plan_shards(sizes, max_shard_size)
        names = shard_file_names(weights_name, len(shards))

        for shard_keys, shard_name in zip(shards, names):
            tensors = {k: state_dict[k] for k in shard_keys}
            with atomic_path(os.path.join(save_directory, shard_name)) as tmp:
                if safe_serialization:
                    from safetensors.torch import save_file

                    save_file(tensors, tmp, metadata={"format": "pt"})
                else:
                    torch.save(tensors, tmp)
        index_path = os.path.join(save_directory, index_name)
        if len(shards) > 1:
            weight_map = {k: name for keys, name in zip(shards, names) for k in keys}
            atomic_write_text(index_path, index_json(weight_map, sum(size for _, size in sizes)))
        elif os.path.exists(index_path):
            os.remove(index_path)
        config.save_pretrained(save_directory)

        keep = set(names)
        for filename in os.listdir(save_directory):
            if is_stale_weights_file(filename, weights_name, keep):
                os.remove(os.path.join(save_directory, filename))

    def _state_dict_for_saving(self, state_dict: dict[str, torch.Tensor] | None) -> dict[str, torch.Tensor]:
        """Contiguous CPU tensors, each storage written once.

        Tied copies listed in ``_tied_weights_keys`` are left out, as Transformers does (loading
        ties them again). Any other tensor sharing memory with an earlier one is written as a copy,
        so that readers which do not tie it (Transformers 5 with untied embeddings) find it.
        """
        if state_dict is None:
            state_dict = self.state_dict()
        tied_targets = set(self._tied_weights_keys) if self.config.tie_word_embeddings else set()
        result: dict[str, torch.Tensor] = {}
        seen: set[tuple] = set()
        for key, tensor in state_dict.items():
            if key in tied_targets:
                continue
            tensor = tensor.detach().to("cpu")
            identity = (tensor.untyped_storage().data_ptr(), tensor.storage_offset(), tuple(tensor.shape), tensor.dtype)
            result[key] = tensor.clone() if identity in seen else tensor.contiguous()
            seen.add(identity)
        return result


def _written_by_other_framework(weights_name: str, files: list[str]) -> bool:
    """safetensors files written by TensorFlow or Flax models use their names: convert those."""
    if not weights_name.startswith("model.safetensors"):
        return False
    shard = files[1] if weights_name.endswith(".index.json") else files[0]
    return checkpoint_format(shard) in ("tf", "flax")


def _matches_any(key: str, patterns: list[str]) -> bool:
    return any(re.search(p, key) for p in patterns)
