"""``PretrainedConfig``: the model configuration, read from and written to ``config.json``.

Compatible with Transformers' files both ways: ``id2label`` keys are strings in JSON and ints in
memory; ``torch_dtype`` and ``dtype`` are both read; keys this class does not know are kept as
attributes and written back; only values that differ from the defaults are written.
"""

from __future__ import annotations

import copy
import json
import os
from typing import Any, ClassVar

from . import __version__
from .errors import ConfigError
from .hub import missing_file_error, pop_hub_kwargs, resolve_file
from .io_utils import atomic_write_text, read_json_file

CONFIG_NAME = "config.json"

# Keys computed from others or private: never written to config.json.
_NOT_SERIALIZED = ("_name_or_path", "_commit_hash", "_attn_implementation_internal")


def _dtype_name(value: Any) -> Any:
    """``torch.float32`` (or any framework dtype object) -> ``"float32"``; strings pass through."""
    if value is None or isinstance(value, str):
        return value
    return str(value).split(".")[-1]


class PretrainedConfig:
    """Base class of every model configuration.

    Subclasses set the class attribute ``model_type`` and take their own arguments before
    ``**kwargs``, which reach this initialiser. ``attribute_map`` renames attributes (for example
    ``{"hidden_dim": "hidden_size"}``) so common names work on every model.
    """

    model_type: ClassVar[str] = ""
    attribute_map: ClassVar[dict[str, str]] = {}
    # Keys a family always writes even when they equal the base default (rarely needed).
    _always_serialize: ClassVar[tuple[str, ...]] = ()

    def __setattr__(self, key: str, value: Any) -> None:
        key = type(self).attribute_map.get(key, key)
        super().__setattr__(key, value)

    def __getattr__(self, key: str) -> Any:  # only called when normal lookup fails
        mapped = type(self).attribute_map.get(key)
        if mapped is not None:
            return getattr(self, mapped)
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {key!r}")

    def __init__(
        self,
        *,
        return_dict: bool = True,
        output_hidden_states: bool = False,
        output_attentions: bool = False,
        torchscript: bool = False,
        torch_dtype: Any = None,
        use_bfloat16: bool = False,
        pruned_heads: dict[int, list[int]] | None = None,
        tie_word_embeddings: bool = True,
        chunk_size_feed_forward: int = 0,
        is_encoder_decoder: bool = False,
        is_decoder: bool = False,
        cross_attention_hidden_size: int | None = None,
        add_cross_attention: bool = False,
        tie_encoder_decoder: bool = False,
        architectures: list[str] | None = None,
        finetuning_task: str | None = None,
        id2label: dict[int, str] | None = None,
        label2id: dict[str, int] | None = None,
        num_labels: int | None = None,
        tokenizer_class: str | None = None,
        prefix: str | None = None,
        bos_token_id: int | None = None,
        pad_token_id: int | None = None,
        eos_token_id: int | list[int] | None = None,
        sep_token_id: int | None = None,
        decoder_start_token_id: int | None = None,
        task_specific_params: dict[str, Any] | None = None,
        problem_type: str | None = None,
        **kwargs: Any,
    ) -> None:
        self.return_dict = return_dict
        self.output_hidden_states = output_hidden_states
        self.output_attentions = output_attentions
        self.torchscript = torchscript
        # Transformers v5 writes ``dtype``, v4 ``torch_dtype``; both mean the same.
        dtype = kwargs.pop("dtype", None)
        self.torch_dtype = _dtype_name(torch_dtype if torch_dtype is not None else dtype)
        self.use_bfloat16 = use_bfloat16
        self.pruned_heads = {int(k): list(v) for k, v in (pruned_heads or {}).items()}
        self.tie_word_embeddings = tie_word_embeddings
        self.chunk_size_feed_forward = chunk_size_feed_forward
        self.is_encoder_decoder = is_encoder_decoder
        self.is_decoder = is_decoder
        self.cross_attention_hidden_size = cross_attention_hidden_size
        self.add_cross_attention = add_cross_attention
        self.tie_encoder_decoder = tie_encoder_decoder
        self.architectures = architectures
        self.finetuning_task = finetuning_task
        self.tokenizer_class = tokenizer_class
        self.prefix = prefix
        self.bos_token_id = bos_token_id
        self.pad_token_id = pad_token_id
        self.eos_token_id = eos_token_id
        self.sep_token_id = sep_token_id
        self.decoder_start_token_id = decoder_start_token_id
        self.task_specific_params = task_specific_params
        self.problem_type = problem_type
        _check_problem_type(problem_type)

        if id2label is not None:
            self.id2label = {int(k): v for k, v in id2label.items()}
            if num_labels is not None and num_labels != len(self.id2label):
                import logging

                logging.getLogger(__name__).warning(
                    "num_labels=%d disagrees with id2label, which has %d labels; id2label wins. Pass only one of them.",
                    num_labels,
                    len(self.id2label),
                )
        else:
            self.num_labels = 2 if num_labels is None else num_labels
        self.label2id = (
            {k: int(v) for k, v in label2id.items()}
            if label2id is not None
            else {v: k for k, v in self.id2label.items()}
        )

        self._name_or_path = str(kwargs.pop("name_or_path", ""))
        self._attn_implementation_internal = kwargs.pop("attn_implementation", None)
        kwargs.pop("transformers_version", None)
        kwargs.pop("polyformers_version", None)
        # Unknown keys are kept as attributes so that they round-trip through config.json.
        for key, value in kwargs.items():
            try:
                setattr(self, key, value)
            except AttributeError as exc:
                raise ConfigError(f"Cannot set config attribute {key!r} to {value!r}: {exc}") from exc

    # --- labels --------------------------------------------------------------------------------

    @property
    def num_labels(self) -> int:
        return len(self.id2label)

    @num_labels.setter
    def num_labels(self, num_labels: int) -> None:
        if not isinstance(num_labels, int) or num_labels < 0:
            raise ConfigError(f"num_labels must be a non-negative int, got {num_labels!r}.")
        if getattr(self, "id2label", None) is None or len(self.id2label) != num_labels:
            self.id2label = {i: f"LABEL_{i}" for i in range(num_labels)}
            self.label2id = {v: k for k, v in self.id2label.items()}

    # --- dtype ---------------------------------------------------------------------------------

    @property
    def dtype(self) -> str | None:
        return self.torch_dtype

    @dtype.setter
    def dtype(self, value: Any) -> None:
        self.torch_dtype = _dtype_name(value)

    @property
    def use_return_dict(self) -> bool:
        return self.return_dict and not self.torchscript

    @property
    def name_or_path(self) -> str:
        return self._name_or_path

    @name_or_path.setter
    def name_or_path(self, value: str | os.PathLike) -> None:
        self._name_or_path = str(value)

    @property
    def _attn_implementation(self) -> str | None:
        return self._attn_implementation_internal

    @_attn_implementation.setter
    def _attn_implementation(self, value: str | None) -> None:
        self._attn_implementation_internal = value

    # --- (de)serialisation ---------------------------------------------------------------------

    @classmethod
    def get_config_dict(
        cls, pretrained_model_name_or_path: str | os.PathLike, **kwargs: Any
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        """Read ``config.json`` from a directory, a file path, or a hub repo id.

        Returns the dict and the keyword arguments that were not hub arguments.
        """
        hub_kwargs = pop_hub_kwargs(kwargs)
        path = os.fspath(pretrained_model_name_or_path)
        if os.path.isfile(path):
            config_file = path
        else:
            config_file = resolve_file(path, kwargs.pop("_configuration_file", CONFIG_NAME), **hub_kwargs)
            if config_file is None:
                raise missing_file_error(path, CONFIG_NAME, **hub_kwargs)
        return cls._dict_from_json_file(config_file), kwargs

    @staticmethod
    def _dict_from_json_file(json_file: str | os.PathLike) -> dict[str, Any]:
        return read_json_file(json_file, ConfigError)

    @classmethod
    def from_pretrained(
        cls, pretrained_model_name_or_path: str | os.PathLike, **kwargs: Any
    ) -> "PretrainedConfig":
        """Load a config from a directory or file written by ``save_pretrained``, or a hub repo.

        Keyword arguments that name config attributes override the file's values; with
        ``return_unused_kwargs=True`` the others are returned as a second value.
        """
        config_dict, kwargs = cls.get_config_dict(pretrained_model_name_or_path, **kwargs)
        file_type = config_dict.get("model_type")
        if cls.model_type and file_type and file_type != cls.model_type:
            import logging

            logging.getLogger(__name__).warning(
                "Loading a config of model_type %r into %s (model_type %r): this is not supported "
                "for all configurations of models and can yield errors.",
                file_type,
                cls.__name__,
                cls.model_type,
            )
        kwargs.setdefault("name_or_path", str(pretrained_model_name_or_path))
        return cls._from_file_dict(config_dict, pretrained_model_name_or_path, **kwargs)

    @classmethod
    def _from_file_dict(cls, config_dict: dict[str, Any], source: str | os.PathLike, **kwargs: Any) -> "PretrainedConfig":
        """``from_dict`` for a dict read from ``source``'s config.json: a value of the wrong type
        (a list where a dict of labels belongs, a null ``problem_type``...) raises ConfigError naming the file."""
        try:
            return cls.from_dict(config_dict, **kwargs)
        except (ConfigError, TypeError, ValueError, AttributeError, KeyError) as exc:
            source = os.fspath(source)
            where = source if source.endswith(".json") else os.path.join(source, CONFIG_NAME)
            raise ConfigError(
                f"The config {where!r} holds a value {cls.__name__} cannot use ({type(exc).__name__}: {exc}). "
                f"Fix the file, or re-save the config with save_pretrained."
            ) from exc

    @classmethod
    def from_dict(cls, config_dict: dict[str, Any], **kwargs: Any) -> "PretrainedConfig":
        """Build a config from a dict; ``kwargs`` that name attributes override its values."""
        return_unused_kwargs = kwargs.pop("return_unused_kwargs", False)
        name_or_path = kwargs.pop("name_or_path", None)
        config_dict = dict(config_dict)
        if name_or_path is not None:
            config_dict["name_or_path"] = name_or_path
        config = cls(**config_dict)

        unused = {}
        for key, value in kwargs.items():
            if key in ("torch_dtype", "dtype"):
                config.torch_dtype = _dtype_name(value)
            elif hasattr(config, key):
                setattr(config, key, value)
            else:
                unused[key] = value
        return (config, unused) if return_unused_kwargs else config

    @classmethod
    def from_json_file(cls, json_file: str | os.PathLike) -> "PretrainedConfig":
        return cls(**cls._dict_from_json_file(json_file))

    def to_dict(self) -> dict[str, Any]:
        """Every attribute, JSON-ready (``id2label`` keys stay ints here; JSON makes them strings)."""
        output = copy.deepcopy({k: v for k, v in self.__dict__.items() if k not in _NOT_SERIALIZED})
        if type(self).model_type:
            output["model_type"] = type(self).model_type
        output["torch_dtype"] = _dtype_name(output.get("torch_dtype"))
        output["transformers_version"] = _compatible_transformers_version()
        return output

    def to_diff_dict(self) -> dict[str, Any]:
        """Only what differs from the defaults, as Transformers writes it to ``config.json``.

        A key is kept if the base class does not define it (model-specific keys, unknown keys),
        or if its value differs from the base default or from this class's own default.
        """
        config_dict = self.to_dict()
        base_defaults = PretrainedConfig().to_dict()
        try:
            class_defaults = type(self)().to_dict()
        except TypeError:  # a subclass with required arguments
            class_defaults = {}
        diff = {}
        for key, value in config_dict.items():
            if (
                key not in base_defaults
                or key in ("transformers_version", "model_type")
                or key in self._always_serialize
                or value != base_defaults[key]
                or (key in class_defaults and value != class_defaults[key])
            ):
                diff[key] = value
        return diff

    def to_json_string(self, use_diff: bool = True) -> str:
        config_dict = self.to_diff_dict() if use_diff else self.to_dict()
        return json.dumps(config_dict, indent=2, sort_keys=True) + "\n"

    def to_json_file(self, json_file_path: str | os.PathLike, use_diff: bool = True) -> None:
        atomic_write_text(json_file_path, self.to_json_string(use_diff=use_diff))

    def save_pretrained(self, save_directory: str | os.PathLike, **kwargs: Any) -> None:
        """Write ``config.json`` into ``save_directory`` (created if needed), atomically."""
        save_directory = os.fspath(save_directory)
        if os.path.isfile(save_directory):
            raise ConfigError(
                f"save_directory {save_directory!r} is a file; pass a directory path instead."
            )
        os.makedirs(save_directory, exist_ok=True)
        self.to_json_file(os.path.join(save_directory, CONFIG_NAME))

    def update(self, config_dict: dict[str, Any]) -> None:
        for key, value in config_dict.items():
            setattr(self, key, value)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, PretrainedConfig) and self.to_dict() == other.to_dict()

    def __repr__(self) -> str:
        return f"{type(self).__name__} {self.to_json_string(use_diff=False)}"


def _check_problem_type(problem_type: str | None) -> None:
    allowed = ("regression", "single_label_classification", "multi_label_classification")
    if problem_type is not None and problem_type not in allowed:
        raise ConfigError(
            f"problem_type must be one of {', '.join(allowed)} or None, got {problem_type!r}."
        )


def _compatible_transformers_version() -> str:
    # Transformers reads this key to warn about files from newer versions; we write the v4
    # release whose file format we follow, and our own version under its own key.
    return "4.46.3"


PreTrainedConfig = PretrainedConfig  # the Transformers v5 spelling
__all__ = ["CONFIG_NAME", "PretrainedConfig", "PreTrainedConfig", "__version__"]
