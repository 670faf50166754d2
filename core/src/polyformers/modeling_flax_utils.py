"""``FlaxPreTrainedModel``: the JAX/Flax model base class, with Transformers-compatible checkpoints.

Built on ``flax.linen``, not ``flax.nnx`` (Flax's recommended API today), by choice: Transformers'
``flax_model.msgpack`` *is* a linen parameter tree (``{"bert": {"encoder": {"layer": {"0": ...}}}}``
of ``kernel``/``bias``/``embedding``/``scale`` leaves), so a linen module whose attribute names
follow Transformers reads and writes those files 1:1, with no name mapping to keep in sync. An
NNX front end can come later on top of the same files.

A model is a thin object around two things: ``model.module``, a stateless linen ``Module``, and
``model.params``, its parameter tree (a nested dict of JAX arrays). ``model(...)`` runs
``module.apply`` compiled with ``jax.jit``. Everything that varies is explicit: pass ``params=``
to run other weights (a training step), and ``dropout_rng=`` (a PRNG key) with ``train=True``.
``dtype`` is the dtype of the computation; parameters stay float32 unless cast with
:meth:`FlaxPreTrainedModel.to_bf16`.

Loading reads, in Transformers' order, ``flax_model.msgpack``, its sharded index,
``model.safetensors`` (Flax names if its metadata says ``"format": "flax"``; PyTorch names and
layouts, converted through :mod:`polyformers.conversion`, if ``"pt"``; TensorFlow's, through
PyTorch's, if ``"tf"``), its sharded index, and, with ``from_pt=True``, ``pytorch_model.bin``. Only a checkpoint's missing parameters are
initialised randomly; a complete checkpoint is loaded without running the initialisers.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import logging
import os
import re
from collections import OrderedDict
from functools import partial
from typing import Any, Callable, Mapping

import jax
import jax.numpy as jnp
import numpy as np
from flax import linen as nn
from flax.core.frozen_dict import FrozenDict, unfreeze
from flax.errors import InvalidRngError

from . import modeling_outputs
from .checkpoint_utils import (
    log_loading_report,
    DEFAULT_MAX_SHARD_SIZE,
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
from .conversion import ConversionReport, flatten_dict, flax_key_to_pt, pt_weights_for, unflatten_dict
from .errors import CheckpointError, WeightShapeMismatchError
from .flax_msgpack import read_flax_msgpack, write_flax_msgpack
from .hub import missing_file_error, pop_hub_kwargs, resolve_file
from .io_utils import atomic_path, atomic_write_text

logger = logging.getLogger(__name__)

Params = dict[str, Any]  # a nested dict of arrays: {"bert": {"embeddings": {...}}}
FlatParams = dict[tuple[str, ...], Any]  # the same, keyed by path tuples

# Computation dtypes a model accepts (parameters may be any float dtype).
_COMPUTE_DTYPES = ("float32", "bfloat16", "float16")


# --- model outputs as JAX pytrees ---------------------------------------------------------------

_REGISTERED_OUTPUTS: set[type] = set()


def register_model_output(cls: type) -> type:
    """Make a :class:`~polyformers.modeling_outputs.ModelOutput` dataclass a JAX pytree.

    Then it can be returned from ``jax.jit``-compiled functions, and ``jax.tree_util`` maps over
    its fields (``None`` fields are empty subtrees). Usable as a class decorator; idempotent.
    Every output class of :mod:`polyformers.modeling_outputs` is registered on import.
    """
    if cls in _REGISTERED_OUTPUTS:
        return cls
    names = tuple(f.name for f in dataclasses.fields(cls))

    def flatten_with_keys(output: Any) -> tuple[list, None]:
        return [(jax.tree_util.GetAttrKey(n), getattr(output, n)) for n in names], None

    def flatten(output: Any) -> tuple[list, None]:
        return [getattr(output, n) for n in names], None

    def unflatten(_: None, children: Any) -> Any:
        return cls(*children)

    jax.tree_util.register_pytree_with_keys(cls, flatten_with_keys, unflatten, flatten)
    _REGISTERED_OUTPUTS.add(cls)
    return cls


for _output_class in list(vars(modeling_outputs).values()):
    if (
        isinstance(_output_class, type)
        and issubclass(_output_class, modeling_outputs.ModelOutput)
        and dataclasses.is_dataclass(_output_class)
    ):
        register_model_output(_output_class)


# --- helpers -------------------------------------------------------------------------------------


def _resolve_dtype(dtype: Any) -> jnp.dtype:
    try:
        resolved = jnp.dtype(dtype)
    except TypeError as exc:
        raise TypeError(f"dtype must be a JAX dtype such as jnp.float32 or jnp.bfloat16, or its name; got {dtype!r}.") from exc
    if resolved.name not in _COMPUTE_DTYPES:
        raise ValueError(
            f"dtype is the computation dtype and must be one of {', '.join(_COMPUTE_DTYPES)}, got {resolved.name}. "
            f"To store the parameters in another dtype, cast them with model.to_bf16(model.params) / to_fp16."
        )
    return resolved


def _matches_any(key: str, patterns: list[str]) -> bool:
    return any(re.search(p, key) for p in patterns)


def _dotted(path: tuple[str, ...]) -> str:
    return ".".join(path)


def _shape_tree(params: Any) -> Params:
    return jax.tree_util.tree_map(lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype), unfreeze(params))


# --- compiled forward functions, shared by equal modules ---------------------------------------

# Models whose modules are equal (same class, config and options) run the same computation, so
# they share one jitted function and its compilations: loading a model again, or building one
# per test, does not compile again. Keyed by value, least recently used dropped first.
_COMPILED: OrderedDict[Any, Callable] = OrderedDict()
_COMPILED_MAX = 64
# Config keys that describe a checkpoint rather than the computation (a saved and reloaded
# config gains "architectures", for one): equal models that differ only in these share.
_METADATA_KEYS = ("architectures", "torch_dtype", "transformers_version", "finetuning_task", "tokenizer_class", "task_specific_params")


def _fingerprint(value: Any) -> Any:
    """A hashable stand-in for a module's configuration, or None if some field has none."""
    if isinstance(value, PretrainedConfig):
        try:
            config = {k: v for k, v in value.to_dict().items() if k not in _METADATA_KEYS}
            return (type(value), json.dumps(config, sort_keys=True))
        except (TypeError, ValueError):
            return None
    if isinstance(value, nn.Module):
        parts = []
        for f in dataclasses.fields(value):
            if f.name in ("parent", "name"):
                continue
            part = _fingerprint(getattr(value, f.name))
            if part is None:
                return None
            parts.append((f.name, part))
        return (type(value), tuple(parts))
    if isinstance(value, np.dtype) or isinstance(value, type):
        return value
    try:
        hash(value)
    except TypeError:
        return None
    return (type(value), value)


def _jit_apply(module: nn.Module) -> Callable:
    def apply(variables: dict, rngs: dict, inputs: dict, train: bool, static: tuple) -> Any:
        mutable = ["cache"] if "cache" in variables else False
        return module.apply(variables, **inputs, deterministic=not train, **dict(static), rngs=rngs, mutable=mutable)

    return jax.jit(apply, static_argnames=("train", "static"))


# --- reading checkpoint files ------------------------------------------------------------------


def _safetensors_format(path: str) -> str | None:
    from safetensors import safe_open

    try:
        with safe_open(path, framework="numpy") as f:
            metadata = f.metadata() or {}
    except Exception as exc:  # SafetensorError, OSError, ...: the header itself is unreadable
        raise _unreadable(path, "safetensors", exc) from exc
    return metadata.get("format")


def _unreadable(path: str, kind: str, exc: Exception) -> CheckpointError:
    size = os.path.getsize(path) if os.path.exists(path) else "missing"
    return CheckpointError(
        f"Cannot read the {kind} file {path!r} ({size} bytes): {exc}. The file is truncated or corrupt; "
        f"download or save it again."
    )


def _load_safetensors_numpy(path: str) -> dict[str, np.ndarray]:
    from safetensors.numpy import load_file

    try:
        return load_file(path)
    except Exception as exc:
        raise _unreadable(path, "safetensors", exc) from exc


def _guess_safetensors_format(names: list[str]) -> str:
    # Files written by safetensors directly carry no metadata. Flax leaves are named kernel,
    # embedding or scale; PyTorch's weight. Decide by the names rather than refuse the file.
    flax_leaves = ("kernel", "embedding", "scale")
    return "flax" if any(n.rsplit(".", 1)[-1] in flax_leaves for n in names) else "pt"


def _torch_to_numpy(tensor: Any) -> np.ndarray:
    import torch

    tensor = tensor.detach().cpu()
    if tensor.dtype == torch.bfloat16:  # numpy has no bfloat16: reinterpret the bits
        import ml_dtypes

        return tensor.view(torch.int16).numpy().view(ml_dtypes.bfloat16)
    return tensor.numpy()


def _load_torch_bin(path: str, weights_only: bool) -> dict[str, np.ndarray]:
    try:
        from .modeling_utils import load_torch_pickle
    except ImportError as exc:
        raise ImportError(
            f"{path!r} is a PyTorch pickle, and reading it needs PyTorch, which is not installed: "
            f"pip install torch, or load a model.safetensors (no PyTorch needed) instead."
        ) from exc
    return {name: _torch_to_numpy(t) for name, t in load_torch_pickle(path, weights_only).items()}


def load_flax_checkpoint_files(files: list[str], weights_name: str, weights_only: bool = True) -> tuple[dict[Any, np.ndarray], str]:
    """Read a weights file, or every shard listed by an index (``files[0]``).

    Returns ``(weights, format)``: with format ``"flax"`` the keys are parameter paths (tuples),
    with ``"pt"`` they are PyTorch state-dict names (arrays in PyTorch layouts).
    """
    is_index = weights_name.endswith(".index.json")
    shards = files[1:] if is_index else files[:1]
    weights: dict[Any, np.ndarray] = {}
    formats = set()
    for shard in shards:
        if weights_name.startswith("flax_model"):
            weights.update(flatten_dict(read_flax_msgpack(shard)))
            formats.add("flax")
        elif weights_name.startswith("model.safetensors"):
            fmt = _safetensors_format(shard)
            if fmt == "tf":  # TensorFlow names: through PyTorch's, as PyTorch's from_tf does
                from .checkpoint_utils import read_foreign_as_pt_state

                weights.update(read_foreign_as_pt_state([shard], SAFE_WEIGHTS_NAME))
                formats.add("pt")
                continue
            tensors = _load_safetensors_numpy(shard)
            fmt = fmt or _guess_safetensors_format(list(tensors))
            if fmt not in ("pt", "flax"):
                raise CheckpointError(f"{shard!r} has safetensors metadata format {fmt!r}; expected 'pt' or 'flax'. Re-save it with save_pretrained.")
            formats.add(fmt)
            weights.update({tuple(k.split(".")): v for k, v in tensors.items()} if fmt == "flax" else tensors)
        else:
            weights.update(_load_torch_bin(shard, weights_only))
            formats.add("pt")
    if len(formats) > 1:
        raise CheckpointError(f"The shards of {files[0]!r} mix formats ({sorted(formats)}); re-save the checkpoint.")
    fmt = formats.pop()
    if is_index:
        listed = read_index(files[0])
        # Index keys as Transformers writes them: "/"-joined paths for msgpack, "."-joined for safetensors.
        join = "/".join if weights_name.startswith("flax_model") else ".".join
        present = {join(k) for k in weights} if fmt == "flax" else set(weights)
        absent = sorted(set(listed) - present)
        if absent:
            raise CheckpointError(
                f"The shard index {files[0]!r} lists {len(absent)} tensors that no shard holds "
                f"(first: {absent[:3]}); the shards do not match the index. Re-save the checkpoint."
            )
    return weights, fmt


# --- the base class -----------------------------------------------------------------------------


class FlaxPreTrainedModel:
    """Base of every Flax model: config, parameters, compiled forward, checkpoint loading and saving.

    Subclasses set ``config_class``, ``base_model_prefix`` (the submodule holding the backbone in
    task models, e.g. ``"bert"``) and ``module_class`` (the linen module, built as
    ``module_class(config=config, dtype=dtype, **module_kwargs)``), implement
    :meth:`dummy_inputs` (the inputs that create every parameter) and ``__call__``, which
    prepares the inputs and runs them through :meth:`_run`.
    """

    config_class: type[PretrainedConfig] = PretrainedConfig
    base_model_prefix: str = ""
    main_input_name: str = "input_ids"
    module_class: type[nn.Module] | None = None
    # PyTorch names of tensors a checkpoint may leave out because they are tied, read instead
    # from their source when converting from PyTorch: {tied name: source name}.
    _tied_weights_keys: dict[str, str] = {}
    # Regex patterns of checkpoint names that may be missing or unexpected without a warning.
    # Names are Flax paths joined with "." ("bert.pooler.dense.kernel"); unexpected names from a
    # PyTorch checkpoint are its own ("bert.pooler.dense.weight").
    _keys_to_ignore_on_load_missing: list[str] = []
    _keys_to_ignore_on_load_unexpected: list[str] = []

    def __init__(
        self,
        config: PretrainedConfig,
        input_shape: tuple[int, ...] = (1, 1),
        seed: int = 0,
        dtype: Any = jnp.float32,
        _do_init: bool = True,
        *,
        module: nn.Module | None = None,
        **module_kwargs: Any,
    ) -> None:
        if not isinstance(config, PretrainedConfig):
            raise TypeError(
                f"{type(self).__name__} expects a {self.config_class.__name__} (a PretrainedConfig) as config, "
                f"got {type(config).__name__}. To load weights use {type(self).__name__}.from_pretrained(path)."
            )
        if module is None and self.module_class is None:
            raise TypeError(f"{type(self).__name__} sets no module_class: it cannot build its linen module.")
        self._config = config
        self.name_or_path = config.name_or_path
        self.dtype = _resolve_dtype(dtype)
        self._module = module if module is not None else self.module_class(config=config, dtype=self.dtype, **module_kwargs)
        self.key = jax.random.PRNGKey(seed)
        self.input_shape = tuple(input_shape)
        self._is_initialized = _do_init
        self._params: Params | None = None
        self._compiled: tuple[nn.Module, Callable] | None = None

        # Eager, not jitted: JAX caches each operation's compiled kernel across models, while a
        # jitted init compiles anew for every model object (seconds each, for tiny models too).
        if _do_init:
            params = self.init_weights(self.key, self.input_shape)
            self._params_shape_tree = _shape_tree(params)
            self._params = unfreeze(params)
        else:
            # Shapes and dtypes only: nothing is computed or allocated.
            self._params_shape_tree = unfreeze(jax.eval_shape(partial(self.init_weights, input_shape=self.input_shape), self.key))
        self._required_params = set(flatten_dict(self._params_shape_tree))

    # --- what a family provides ------------------------------------------------------------------

    def dummy_inputs(self, input_shape: tuple[int, ...]) -> dict[str, Any]:
        """Keyword arguments for ``module.init`` that reach every parameter."""
        raise NotImplementedError(f"{type(self).__name__} must implement dummy_inputs(input_shape).")

    def init_weights(self, rng: jax.Array, input_shape: tuple[int, ...], params: Params | None = None) -> Params:
        """Random parameters; with ``params``, only those ``params`` lacks are random (the rest kept)."""
        params_rng, dropout_rng = jax.random.split(rng)
        variables = self.module.init({"params": params_rng, "dropout": dropout_rng}, **self.dummy_inputs(input_shape))
        random_params = unfreeze(variables["params"])
        if params is None:
            return random_params
        flat = flatten_dict(unfreeze(params))
        for key, value in flatten_dict(random_params).items():
            flat.setdefault(key, value)
        return unflatten_dict(flat)

    # --- properties --------------------------------------------------------------------------------

    @property
    def config(self) -> PretrainedConfig:
        return self._config

    @property
    def module(self) -> nn.Module:
        return self._module

    @property
    def framework(self) -> str:
        return "flax"

    @property
    def params(self) -> Params:
        if not self._is_initialized:
            raise ValueError(
                f"{type(self).__name__} was created with _do_init=False, so it holds no params: keep the params "
                f"returned by from_pretrained (or init_weights) yourself and pass them as params= to the model."
            )
        return self._params

    @params.setter
    def params(self, params: Params) -> None:
        if not self._is_initialized:
            raise ValueError(f"{type(self).__name__} was created with _do_init=False: keep params outside the model and pass params= to calls.")
        params = unfreeze(params) if isinstance(params, FrozenDict) else params
        missing = self._required_params - set(flatten_dict(params))
        if missing:
            names = sorted(_dotted(k) for k in missing)
            raise ValueError(f"The params lack {len(names)} parameters of {type(self).__name__}: {names[:5]}{' ...' if len(names) > 5 else ''}.")
        self._params = params

    @property
    def params_shape_tree(self) -> Params:
        return self._params_shape_tree

    @property
    def required_params(self) -> set[tuple[str, ...]]:
        return self._required_params

    @property
    def base_model_params(self) -> Params:
        """The backbone's parameters (the whole tree for a backbone model)."""
        return self.params.get(self.base_model_prefix, self.params)

    def num_parameters(self, params: Params | None = None) -> int:
        tree = params if params is not None else self._params_shape_tree
        return sum(int(np.prod(leaf.shape)) for leaf in jax.tree_util.tree_leaves(tree))

    def can_generate(self) -> bool:
        return False

    @classmethod
    def _from_config(cls, config: PretrainedConfig, **kwargs: Any) -> "FlaxPreTrainedModel":
        """A randomly initialised model (what ``FlaxAutoModel.from_config`` builds)."""
        return cls(copy.deepcopy(config), **kwargs)

    def enable_gradient_checkpointing(self) -> None:
        """Recompute each layer's activations in the backward pass instead of storing them."""
        fields = {f.name for f in dataclasses.fields(self._module)}
        if "gradient_checkpointing" not in fields:
            raise NotImplementedError(f"{type(self._module).__name__} has no gradient_checkpointing option.")
        self._module = self._module.clone(gradient_checkpointing=True)

    def disable_gradient_checkpointing(self) -> None:
        if "gradient_checkpointing" in {f.name for f in dataclasses.fields(self._module)}:
            self._module = self._module.clone(gradient_checkpointing=False)

    # --- parameter dtypes --------------------------------------------------------------------------

    def _cast_floating_to(self, params: Params, dtype: Any, mask: Any = None) -> Params:
        def cast(param: Any) -> Any:
            return param.astype(dtype) if jnp.issubdtype(param.dtype, jnp.floating) else param

        params = unfreeze(params)
        if mask is None:
            return jax.tree_util.tree_map(cast, params)
        flat = flatten_dict(params)
        flat_mask = flatten_dict(unfreeze(mask))
        return unflatten_dict({k: cast(v) if flat_mask.get(k, False) else v for k, v in flat.items()})

    def to_bf16(self, params: Params, mask: Any = None) -> Params:
        """A copy of ``params`` with floating leaves in bfloat16 (``mask``: a tree of bools, True = cast)."""
        return self._cast_floating_to(params, jnp.bfloat16, mask)

    def to_fp16(self, params: Params, mask: Any = None) -> Params:
        return self._cast_floating_to(params, jnp.float16, mask)

    def to_fp32(self, params: Params, mask: Any = None) -> Params:
        return self._cast_floating_to(params, jnp.float32, mask)

    # --- running the module ------------------------------------------------------------------------

    def _compiled_apply(self) -> Callable:
        key = _fingerprint(self._module)
        if key is None:  # a module field we cannot fingerprint: compile for this model alone
            if self._compiled is None or self._compiled[0] is not self._module:
                self._compiled = (self._module, _jit_apply(self._module))
            return self._compiled[1]
        compiled = _COMPILED.get(key)
        if compiled is None:
            # A frozen copy: a later change to this model's config must not change what other
            # models with the original config run when the function is traced again.
            compiled = _COMPILED[key] = _jit_apply(copy.deepcopy(self._module))
            while len(_COMPILED) > _COMPILED_MAX:
                _COMPILED.popitem(last=False)
        else:
            _COMPILED.move_to_end(key)
        return compiled

    def _run(
        self,
        inputs: dict[str, Any],
        *,
        params: Params | None,
        dropout_rng: jax.Array | None,
        train: bool,
        cache: Params | None = None,
        **static: Any,
    ) -> Any:
        """Run ``module.apply(variables, **inputs, deterministic=not train, **static)`` compiled.

        ``static`` values (flags such as ``output_attentions``) select a compiled variant; a new
        combination compiles once. With ``cache``, returns ``(outputs, {"cache": new_cache})``.
        """
        variables: dict[str, Any] = {"params": params if params is not None else self.params}
        if cache is not None:
            variables["cache"] = cache
        rngs = {"dropout": dropout_rng} if dropout_rng is not None else {}
        try:
            return self._compiled_apply()(variables, rngs, inputs, train=bool(train), static=tuple(sorted(static.items())))
        except InvalidRngError as exc:
            raise ValueError(
                f"{type(self).__name__} was called with train=True but without dropout_rng: dropout needs an "
                f"explicit PRNG key. Pass dropout_rng=jax.random.PRNGKey(seed) (split a new key for each step), "
                f"or train=False for inference."
            ) from exc

    # --- loading -----------------------------------------------------------------------------------

    @classmethod
    def from_pretrained(
        cls,
        pretrained_model_name_or_path: str | os.PathLike | None,
        dtype: Any = jnp.float32,
        *model_args: Any,
        config: PretrainedConfig | str | os.PathLike | None = None,
        from_pt: bool = False,
        state_dict: Mapping[Any, Any] | None = None,
        output_loading_info: bool = False,
        ignore_mismatched_sizes: bool = False,
        _do_init: bool = True,
        weights_only: bool = True,
        **kwargs: Any,
    ) -> Any:
        """Load a model from a directory written by ``save_pretrained`` (ours or Transformers') or a hub repo.

        Args:
            dtype: the computation dtype (float32, bfloat16, float16); parameters keep the
                checkpoint's dtype, as in Transformers.
            from_pt: also read ``pytorch_model.bin`` (needs PyTorch); with ``state_dict``, the
                state dict is a PyTorch one (names and layouts), converted in memory.
            state_dict: weights to load instead of files: a Flax parameter tree, or with
                ``from_pt=True`` a PyTorch state dict (tensors or arrays). Needs ``config=``
                when ``pretrained_model_name_or_path`` is None.
            output_loading_info: also return ``{"missing_keys", "unexpected_keys",
                "mismatched_keys", "error_msgs"}``.
            ignore_mismatched_sizes: initialise parameters whose checkpoint shape differs anew
                (e.g. a classifier with another ``num_labels``) instead of raising.
            _do_init: ``False`` returns ``(model, params)`` (``(model, params, info)`` with
                ``output_loading_info``), the params kept outside the model and parameters the
                checkpoint lacks left out (fill them with ``model.init_weights(rng, shape, params)``).

        Checkpoints of the backbone load into task models and vice versa (``base_model_prefix``).
        Other keyword arguments override config attributes, or go to the module.
        """
        for ignored in ("trust_remote_code", "_from_auto", "_from_pipeline", "resume_download", "torch_dtype", "low_cpu_mem_usage"):
            kwargs.pop(ignored, None)
        if kwargs.pop("from_tf", False):
            raise NotImplementedError(f"{cls.__name__} does not load TensorFlow checkpoints; convert them to PyTorch or Flax weights first.")
        hub_kwargs = pop_hub_kwargs(kwargs)
        seed = kwargs.pop("seed", 0)
        input_shape = kwargs.pop("input_shape", None)

        if not isinstance(config, PretrainedConfig):
            config_path = config if config is not None else pretrained_model_name_or_path
            if config_path is None:
                raise ValueError("Pass pretrained_model_name_or_path, or state_dict= together with config=.")
            config, model_kwargs = cls.config_class.from_pretrained(config_path, return_unused_kwargs=True, **hub_kwargs, **kwargs)
        else:
            config = copy.deepcopy(config)
            model_kwargs = {}
            for key, value in kwargs.items():
                if hasattr(config, key):
                    setattr(config, key, value)
                else:
                    model_kwargs[key] = value

        if state_dict is not None:
            if from_pt:
                checkpoint = {k: _torch_to_numpy(v) if type(v).__module__.startswith("torch") else np.asarray(v) for k, v in state_dict.items()}
                fmt = "pt"
            else:
                checkpoint, fmt = {k: np.asarray(v) for k, v in flatten_dict(unfreeze(state_dict)).items()}, "flax"
        else:
            if pretrained_model_name_or_path is None:
                raise ValueError("Pass pretrained_model_name_or_path, or state_dict= together with config=.")
            weights_name, files = cls._find_weights(pretrained_model_name_or_path, from_pt, hub_kwargs)
            checkpoint, fmt = load_flax_checkpoint_files(files, weights_name, weights_only=weights_only)

        shape_kwargs = {"input_shape": input_shape} if input_shape is not None else {}
        model = cls(config, *model_args, seed=seed, dtype=dtype, _do_init=False, **shape_kwargs, **model_kwargs)
        weights, info = model._match_checkpoint(checkpoint, fmt, ignore_mismatched_sizes)
        del checkpoint

        to_initialise = [k for k in model._required_params if k not in weights]
        if to_initialise and _do_init:
            # Initialise the whole model once and keep only what the checkpoint lacks.
            random = flatten_dict(model.init_weights(model.key, model.input_shape))
            for key in to_initialise:
                weights[key] = random[key]
        elif to_initialise:
            logger.warning(
                "The checkpoint lacks %d parameters of %s and _do_init=False leaves them out: call "
                "model.init_weights(rng, input_shape, params) to initialise them.",
                len(to_initialise),
                cls.__name__,
            )
        params = unflatten_dict({k: jnp.asarray(v) for k, v in weights.items()})
        model._warn_loading_report(info)
        model._warn_half_precision(params)
        model.name_or_path = str(pretrained_model_name_or_path or "")

        report = info.as_dict()
        if not _do_init:
            return (model, params, report) if output_loading_info else (model, params)
        model._is_initialized = True
        model._params = params
        return (model, report) if output_loading_info else model

    @classmethod
    def _find_weights(cls, path: Any, from_pt: bool, hub_kwargs: dict) -> tuple[str, list[str]]:
        candidates = [(FLAX_WEIGHTS_NAME, FLAX_WEIGHTS_INDEX_NAME), (SAFE_WEIGHTS_NAME, SAFE_WEIGHTS_INDEX_NAME)]
        if from_pt:
            candidates.append((WEIGHTS_NAME, WEIGHTS_INDEX_NAME))
        found = resolve_weights(path, candidates, **hub_kwargs)
        if found is not None:
            return found
        looked_for = ", ".join(name for pair in candidates for name in pair)
        error = missing_file_error(path, f"Flax weights (looked for {looked_for})", **hub_kwargs)
        if not from_pt and (resolve_file(path, WEIGHTS_NAME, **hub_kwargs) or resolve_file(path, WEIGHTS_INDEX_NAME, **hub_kwargs)):
            raise OSError(f"{error} It has PyTorch weights ({WEIGHTS_NAME}): pass from_pt=True to convert them while loading.")
        if resolve_file(path, TF2_WEIGHTS_NAME, **hub_kwargs) or resolve_file(path, TF2_WEIGHTS_INDEX_NAME, **hub_kwargs):
            raise OSError(f"{error} It has TensorFlow weights only ({TF2_WEIGHTS_NAME}): convert them to PyTorch or Flax weights first.")
        raise error

    def _match_checkpoint(self, checkpoint: dict[Any, np.ndarray], fmt: str, ignore_mismatched_sizes: bool) -> tuple[FlatParams, ConversionReport]:
        """Pair checkpoint arrays with this model's parameters; report what does not pair up."""
        expected = {path: tuple(leaf.shape) for path, leaf in flatten_dict(self._params_shape_tree).items()}
        if fmt == "pt":
            tied = self._tied_weights_keys if self.config.tie_word_embeddings else None
            weights, report = pt_weights_for(checkpoint, expected, flax_key_to_pt, base_model_prefix=self.base_model_prefix, tied_sources=tied)
        else:
            weights, report = {}, ConversionReport()
            for path, array in self._add_or_strip_prefix(checkpoint, expected).items():
                if path not in expected:
                    report.unexpected_keys.append(_dotted(path))
                elif tuple(array.shape) != expected[path]:
                    report.mismatched_keys.append((path, tuple(array.shape), expected[path]))
                else:
                    weights[path] = array
            report.missing_keys = [k for k in expected if k not in weights and k not in {m for m, _, _ in report.mismatched_keys}]

        if report.mismatched_keys and not ignore_mismatched_sizes:
            lines = "\n".join(f"- {_dotted(k)}: checkpoint {list(a)}, model {list(b)}" for k, a, b in report.mismatched_keys)
            raise WeightShapeMismatchError(
                f"Error(s) in loading the weights of {type(self).__name__}: {len(report.mismatched_keys)} checkpoint "
                f"arrays have other shapes than the model's parameters:\n{lines}\nFix: use a config matching the "
                f"checkpoint, or pass ignore_mismatched_sizes=True to initialise these parameters anew (e.g. a "
                f"classifier with another num_labels)."
            )
        info = ConversionReport(
            missing_keys=[_dotted(k) for k in report.missing_keys if not _matches_any(_dotted(k), self._keys_to_ignore_on_load_missing)],
            unexpected_keys=[k for k in report.unexpected_keys if not _matches_any(k, self._keys_to_ignore_on_load_unexpected)],
            mismatched_keys=[(_dotted(k), a, b) for k, a, b in report.mismatched_keys],
        )
        return weights, info

    def _add_or_strip_prefix(self, checkpoint: dict[tuple[str, ...], np.ndarray], expected: Mapping[tuple[str, ...], Any]) -> dict[tuple[str, ...], np.ndarray]:
        prefix = self.base_model_prefix
        if not prefix:
            return checkpoint
        model_has_prefix = any(k[0] == prefix for k in expected)
        checkpoint_has_prefix = any(k[0] == prefix for k in checkpoint)
        if model_has_prefix and not checkpoint_has_prefix:  # backbone checkpoint -> task model
            return {(prefix, *k): v for k, v in checkpoint.items()}
        if checkpoint_has_prefix and not model_has_prefix:  # task checkpoint -> backbone; heads are unexpected
            return {(k[1:] if k[0] == prefix else k): v for k, v in checkpoint.items()}
        return checkpoint

    def _warn_loading_report(self, info: Any) -> None:
        log_loading_report(logger, type(self).__name__, info)

    def _warn_half_precision(self, params: Params) -> None:
        half = sorted({str(leaf.dtype) for leaf in jax.tree_util.tree_leaves(params) if leaf.dtype in (jnp.bfloat16, jnp.float16)})
        if half:
            logger.warning(
                "Some weights of %s were loaded in %s precision, as stored in the checkpoint. Upcast them with "
                "model.params = model.to_fp32(model.params) if this was not intended.",
                type(self).__name__,
                " and ".join(half),
            )

    # --- saving ------------------------------------------------------------------------------------

    def save_pretrained(
        self,
        save_directory: str | os.PathLike,
        params: Params | None = None,
        push_to_hub: bool = False,
        max_shard_size: int | str = DEFAULT_MAX_SHARD_SIZE,
        safe_serialization: bool = False,
        is_main_process: bool = True,
        **kwargs: Any,
    ) -> None:
        """Write ``config.json`` and the parameters: ``flax_model.msgpack``, or with
        ``safe_serialization=True`` ``model.safetensors`` (Flax names joined with ".", metadata
        ``{"format": "flax"}``); sharded above ``max_shard_size``, with an index.

        Every file is written under a temporary name and renamed into place; weight files of an
        earlier save that the new one does not use are removed afterwards.
        """
        if push_to_hub:
            raise NotImplementedError("push_to_hub is not supported: save locally, then upload with huggingface_hub.")
        save_directory = os.fspath(save_directory)
        if os.path.isfile(save_directory):
            raise ValueError(f"save_directory {save_directory!r} is a file; pass a directory path.")
        os.makedirs(save_directory, exist_ok=True)
        if not is_main_process:
            return

        params = params if params is not None else self.params
        flat = {path: np.asarray(value) for path, value in flatten_dict(jax.device_get(unfreeze(params))).items()}
        config = copy.deepcopy(self.config)
        # As Transformers: the architecture is named without "Flax", so that AutoModel classes of
        # every framework read it.
        config.architectures = [type(self).__name__.removeprefix("Flax")]

        weights_name = SAFE_WEIGHTS_NAME if safe_serialization else FLAX_WEIGHTS_NAME
        index_name = SAFE_WEIGHTS_INDEX_NAME if safe_serialization else FLAX_WEIGHTS_INDEX_NAME
        # Index keys as Transformers writes them: "/"-joined paths for msgpack, "."-joined for safetensors.
        join = ".".join if safe_serialization else "/".join
        sizes = [(join(path), array.nbytes) for path, array in flat.items()]
        by_name = {join(path): path for path in flat}
        shards = plan_shards(sizes, max_shard_size)
        names = shard_file_names(weights_name, len(shards))

        for shard_keys, shard_name in zip(shards, names):
            with atomic_path(os.path.join(save_directory, shard_name)) as tmp:
                if safe_serialization:
                    from safetensors.numpy import save_file

                    save_file({k: np.ascontiguousarray(flat[by_name[k]]) for k in shard_keys}, tmp, metadata={"format": "flax"})
                else:
                    write_flax_msgpack(tmp, unflatten_dict({by_name[k]: flat[by_name[k]] for k in shard_keys}))
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
