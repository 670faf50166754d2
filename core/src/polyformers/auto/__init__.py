"""The Auto API: ``AutoConfig``, ``AutoTokenizer``, ``AutoModel…``, ``TFAutoModel…``, ``FlaxAutoModel…``.

Each Auto class reads ``model_type`` from ``config.json`` and asks the registry for the class
serving it, for its task and framework; only the plugin that provides it gets imported.
"""

from __future__ import annotations

import os
from typing import Any

from ..configuration_utils import CONFIG_NAME, PretrainedConfig
from ..errors import ConfigError
from ..hub import missing_file_error, pop_hub_kwargs, resolve_file
from ..io_utils import read_json_file
from ..registry import (
    FRAMEWORKS,
    TASKS,
    get_config_class,
    get_model_class,
    get_processor_class,
    get_tokenizer_classes,
    register_config,
    register_model,
    register_processor,
    register_tokenizer,
)

# Keyword arguments of a model's from_pretrained that must not be read as config overrides.
MODEL_LOADING_KWARGS = (
    "state_dict",
    "torch_dtype",
    "dtype",
    "output_loading_info",
    "ignore_mismatched_sizes",
    "use_safetensors",
    "low_cpu_mem_usage",
    "device_map",
    "attn_implementation",
    "from_tf",
    "from_flax",
    "from_pt",
    "weights_only",
)


class AutoConfig:
    """Builds the config class registered for the ``model_type`` in ``config.json``."""

    def __init__(self) -> None:
        raise EnvironmentError("AutoConfig is instantiated with AutoConfig.from_pretrained(path) or AutoConfig.for_model(model_type).")

    @classmethod
    def for_model(cls, model_type: str, *args: Any, **kwargs: Any) -> PretrainedConfig:
        return get_config_class(model_type)(*args, **kwargs)

    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path: str | os.PathLike, **kwargs: Any) -> PretrainedConfig:
        config_dict, unused = PretrainedConfig.get_config_dict(pretrained_model_name_or_path, **kwargs)
        unused.pop("trust_remote_code", None)  # never honoured: config.json selects installed code only
        model_type = config_dict.get("model_type")
        if model_type is not None and not isinstance(model_type, str):
            raise ConfigError(
                f"The config.json of {os.fspath(pretrained_model_name_or_path)!r} has a 'model_type' of "
                f"type {type(model_type).__name__}; it must be a string such as \"bert\"."
            )
        if not model_type:
            raise ConfigError(
                f"The config.json of {os.fspath(pretrained_model_name_or_path)!r} has no "
                f"'model_type' key, so no model class can be chosen for it. Add "
                f"\"model_type\": \"<type>\" (e.g. \"bert\"), or load it with the config class directly."
            )
        config_class = get_config_class(model_type)
        unused.setdefault("name_or_path", str(pretrained_model_name_or_path))
        return config_class._from_file_dict(config_dict, pretrained_model_name_or_path, **unused)

    @staticmethod
    def register(model_type: str, config: type, exist_ok: bool = False) -> None:
        """Register a config class for code that is not a plugin; refuses an existing type."""
        register_config(model_type, config, exist_ok=exist_ok)


class _BaseAutoModelClass:
    _task = "base"
    _framework = "pt"

    def __init__(self) -> None:
        raise EnvironmentError(f"{type(self).__name__} is instantiated with {type(self).__name__}.from_pretrained(path) or .from_config(config).")

    @classmethod
    def _model_class(cls, config: PretrainedConfig) -> type:
        return get_model_class(config.model_type, cls._task, cls._framework)

    @classmethod
    def from_config(cls, config: PretrainedConfig, **kwargs: Any) -> Any:
        if not isinstance(config, PretrainedConfig):
            raise TypeError(f"{cls.__name__}.from_config expects a PretrainedConfig, got {type(config).__name__}.")
        return cls._model_class(config)._from_config(config, **kwargs)

    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path: str | os.PathLike, *model_args: Any, **kwargs: Any) -> Any:
        config = kwargs.pop("config", None)
        kwargs.pop("trust_remote_code", None)
        if not isinstance(config, PretrainedConfig):
            hub_kwargs = pop_hub_kwargs(kwargs)
            loading = {k: kwargs.pop(k) for k in MODEL_LOADING_KWARGS if k in kwargs}
            config, kwargs = AutoConfig.from_pretrained(
                config if config is not None else pretrained_model_name_or_path,
                return_unused_kwargs=True,
                **hub_kwargs,
                **kwargs,
            )
            kwargs.update(hub_kwargs)
            kwargs.update(loading)
        model_class = cls._model_class(config)
        return model_class.from_pretrained(pretrained_model_name_or_path, *model_args, config=config, **kwargs)

    @classmethod
    def register(cls, config_class: type, model_class: type, exist_ok: bool = False) -> None:
        """Register a model class for ``config_class`` in this Auto class; refuses an existing one."""
        register_model(config_class, cls._task, cls._framework, model_class, exist_ok=exist_ok)


def _make_auto_classes() -> dict[str, type]:
    classes = {}
    for framework, (_, human, prefix) in FRAMEWORKS.items():
        for task, auto_name in TASKS.items():
            name = prefix + auto_name
            doc = f"Loads the {human} model for task {task!r} of the model type in ``config.json``."
            classes[name] = type(name, (_BaseAutoModelClass,), {"_task": task, "_framework": framework, "__doc__": doc, "__module__": __name__})
    return classes


AUTO_MODEL_CLASSES = _make_auto_classes()
globals().update(AUTO_MODEL_CLASSES)
AutoModel = AUTO_MODEL_CLASSES["AutoModel"]
AutoModelForMaskedLM = AUTO_MODEL_CLASSES["AutoModelForMaskedLM"]
AutoModelForSequenceClassification = AUTO_MODEL_CLASSES["AutoModelForSequenceClassification"]


def _read_json(path: str | None) -> dict[str, Any]:
    """A JSON object file, or ``{}`` if there is none; raises as the class loaders that read it next do.

    ``config.json`` raises ``ConfigError`` as :class:`PretrainedConfig` does; tokenizer and
    preprocessor files raise ``OSError`` as their classes do.
    """
    if path is None:
        return {}
    return read_json_file(path, ConfigError if os.path.basename(path) == CONFIG_NAME else OSError)


class AutoTokenizer:
    """Builds the tokenizer of a checkpoint: the fast one when available, like Transformers."""

    def __init__(self) -> None:
        raise EnvironmentError("AutoTokenizer is instantiated with AutoTokenizer.from_pretrained(path).")

    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path: str | os.PathLike, *inputs: Any, **kwargs: Any) -> Any:
        use_fast = kwargs.pop("use_fast", True)
        kwargs.pop("trust_remote_code", None)
        config = kwargs.pop("config", None)
        hub_kwargs = pop_hub_kwargs(dict(kwargs))
        path = pretrained_model_name_or_path
        tokenizer_config_file = resolve_file(path, "tokenizer_config.json", **hub_kwargs)
        tokenizer_config = _read_json(tokenizer_config_file)

        slow = fast = None
        class_name = tokenizer_config.get("tokenizer_class")
        if class_name is not None and not isinstance(class_name, str):
            raise ValueError(f"{tokenizer_config_file!r}: 'tokenizer_class' must be a class name (a string), got {class_name!r:.80}.")
        if class_name:
            slow, fast = _tokenizer_classes_by_name(class_name)
        if slow is None and fast is None:
            if config is None:
                config_file = resolve_file(path, CONFIG_NAME, **hub_kwargs)
                if config_file is None and tokenizer_config_file is None and not os.path.isdir(path):
                    # A repo id with neither file (e.g. not cached, offline): a missing-file OSError.
                    raise missing_file_error(path, f"tokenizer_config.json or {CONFIG_NAME}", **hub_kwargs)
                model_type = _read_json(config_file).get("model_type")
                if model_type is not None and not isinstance(model_type, str):
                    raise ConfigError(f"{config_file!r}: 'model_type' must be a string such as \"bert\", got {model_type!r:.80}.")
            else:
                model_type = config.model_type
            if not model_type:
                raise ValueError(
                    f"Cannot tell which tokenizer {os.fspath(path)!r} needs: its "
                    f"tokenizer_config.json has no 'tokenizer_class' and there is no config.json "
                    f"with a 'model_type'. Load it with the tokenizer class directly "
                    f"(e.g. BertTokenizerFast.from_pretrained)."
                )
            slow, fast = get_tokenizer_classes(model_type)
        tokenizer_class = fast if (use_fast and fast is not None) else (slow or fast)
        return tokenizer_class.from_pretrained(path, *inputs, **kwargs)

    @staticmethod
    def register(config_class: type | str, slow_tokenizer_class: type | None = None, fast_tokenizer_class: type | None = None, exist_ok: bool = False) -> None:
        register_tokenizer(config_class, slow_tokenizer_class, fast_tokenizer_class, exist_ok=exist_ok)


def _tokenizer_classes_by_name(class_name: str) -> tuple[type | None, type | None]:
    from ..plugins import find_class

    base = class_name
    for suffix in ("Fast", "Legacy"):  # Transformers 5 writes e.g. "BertTokenizerLegacy" for slow ones
        base = base[: -len(suffix)] if base.endswith(suffix) else base
    found = []
    for name in (base, base + "Fast"):
        try:
            found.append(find_class(name))
        except AttributeError:
            found.append(None)
    return found[0], found[1]


class _AutoPreprocessor:
    """Shared logic of AutoFeatureExtractor, AutoImageProcessor and AutoProcessor."""

    _kind = ""
    _type_keys: tuple[str, ...] = ()
    _files = ("preprocessor_config.json",)

    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path: str | os.PathLike, **kwargs: Any) -> Any:
        kwargs.pop("trust_remote_code", None)
        hub_kwargs = pop_hub_kwargs(dict(kwargs))
        path = pretrained_model_name_or_path
        for filename in (*cls._files, "processor_config.json"):
            data = _read_json(resolve_file(path, filename, **hub_kwargs))
            # Transformers 5 nests a processor's parts in processor_config.json ("feature_extractor": {...}).
            for section in (data, data.get(cls._kind) if isinstance(data.get(cls._kind), dict) else {}):
                for key in cls._type_keys:
                    if section.get(key):
                        return cls._named_in_file(section[key], key, filename, path).from_pretrained(path, **kwargs)
        model_type = _read_json(resolve_file(path, CONFIG_NAME, **hub_kwargs)).get("model_type")
        if model_type is not None and not isinstance(model_type, str):
            raise ConfigError(f"The config.json of {os.fspath(path)!r}: 'model_type' must be a string such as \"bert\", got {model_type!r:.80}.")
        processor_class = get_processor_class(model_type, cls._kind) if model_type else None
        if processor_class is None:
            raise ValueError(
                f"No {cls._kind.replace('_', ' ')} found for {os.fspath(path)!r} (model type "
                f"{model_type!r}): its files name none and its plugin registers none."
            )
        return processor_class.from_pretrained(path, **kwargs)

    @classmethod
    def _class_named(cls, class_name: str) -> type:
        return _preprocessor_class_by_name(class_name)

    @classmethod
    def _named_in_file(cls, class_name: Any, key: str, filename: str, path: str | os.PathLike) -> type:
        """The class ``filename`` names under ``key``; a ValueError naming the file if it names none we have."""
        where = os.path.join(os.fspath(path), filename)
        if not isinstance(class_name, str):
            raise ValueError(f"{where!r}: {key!r} must be a class name (a string), got {class_name!r:.80}.")
        try:
            return cls._class_named(class_name)
        except AttributeError as exc:
            raise ValueError(f"{where!r} names {key}={class_name!r:.80}, which no installed plugin provides ({exc}).") from exc

    @classmethod
    def register(cls, config_class: type | str, processor_class: type, exist_ok: bool = False) -> None:
        register_processor(config_class, cls._kind, processor_class, exist_ok=exist_ok)


def _preprocessor_class_by_name(class_name: str) -> type:
    """The class a file names; Transformers' ``XxxFast``/``XxxPil`` image processors map to ``Xxx``."""
    from ..plugins import find_class

    try:
        return find_class(class_name)
    except AttributeError:
        for suffix in ("Fast", "Pil"):
            if class_name.endswith(suffix):
                try:
                    return find_class(class_name[: -len(suffix)])
                except AttributeError:
                    pass
        raise


class AutoFeatureExtractor(_AutoPreprocessor):
    _kind = "feature_extractor"
    _type_keys = ("feature_extractor_type",)


class AutoImageProcessor(_AutoPreprocessor):
    _kind = "image_processor"
    # Files of the feature-extractor era (facebook/detr-resnet-50) name "DetrFeatureExtractor".
    _type_keys = ("image_processor_type", "feature_extractor_type")

    @classmethod
    def _class_named(cls, class_name: str) -> type:
        if class_name.endswith("FeatureExtractor"):
            try:
                return _preprocessor_class_by_name(class_name[: -len("FeatureExtractor")] + "ImageProcessor")
            except AttributeError:
                pass
        return _preprocessor_class_by_name(class_name)


class AutoProcessor(_AutoPreprocessor):
    _kind = "processor"
    _type_keys = ("processor_class",)
    _files = ("processor_config.json", "preprocessor_config.json")


AUTO_CLASSES: dict[str, type] = {
    "AutoConfig": AutoConfig,
    "AutoTokenizer": AutoTokenizer,
    "AutoFeatureExtractor": AutoFeatureExtractor,
    "AutoImageProcessor": AutoImageProcessor,
    "AutoProcessor": AutoProcessor,
    **AUTO_MODEL_CLASSES,
}
