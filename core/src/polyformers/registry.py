"""The registry: which class serves a model type, for each task and framework.

Entries are dotted paths (``"polyformers_bert.modeling_bert:BertModel"``) that are imported only
when first used, or classes given to ``register()``. Lookups go through :mod:`polyformers.plugins`,
which activates the plugin that owns a model type the first time it is asked for.
"""

from __future__ import annotations

import importlib
import importlib.util
import re
import traceback
from dataclasses import dataclass, field
from typing import Any

from .errors import FrameworkNotInstalledError, PluginLoadError, PluginNotInstalledError, RegistrationError

# Registry task -> the PyTorch Auto class that loads it (TF/Flax classes add their prefix).
TASKS: dict[str, str] = {
    "base": "AutoModel",
    "pretraining": "AutoModelForPreTraining",
    "causal-lm": "AutoModelForCausalLM",
    "masked-lm": "AutoModelForMaskedLM",
    "next-sentence-prediction": "AutoModelForNextSentencePrediction",
    "sequence-classification": "AutoModelForSequenceClassification",
    "multiple-choice": "AutoModelForMultipleChoice",
    "token-classification": "AutoModelForTokenClassification",
    "question-answering": "AutoModelForQuestionAnswering",
    "ctc": "AutoModelForCTC",
    "audio-classification": "AutoModelForAudioClassification",
    "audio-frame-classification": "AutoModelForAudioFrameClassification",
    "audio-xvector": "AutoModelForAudioXVector",
    "image-classification": "AutoModelForImageClassification",
    "object-detection": "AutoModelForObjectDetection",
    "image-segmentation": "AutoModelForImageSegmentation",
    "universal-segmentation": "AutoModelForUniversalSegmentation",
}

# Framework key -> (module that must be importable, name users know, class-name prefix).
FRAMEWORKS: dict[str, tuple[str, str, str]] = {
    "pt": ("torch", "PyTorch", ""),
    "tf": ("tensorflow", "TensorFlow", "TF"),
    "flax": ("flax", "JAX/Flax", "Flax"),
}
DEFAULT_EXTRAS = {"pt": "torch", "tf": "tf", "flax": "flax"}
PROCESSOR_KINDS = ("feature_extractor", "image_processor", "processor")

MANUAL_SOURCE = "register()"
_DOTTED_PATH = re.compile(r"^[A-Za-z_][\w.]*:[A-Za-z_]\w*$")


@dataclass
class Entry:
    """One registered class: a dotted path to import lazily, or the class itself."""

    model_type: str
    source: str  # the distribution that registered it, or MANUAL_SOURCE
    path: str | None = None
    obj: Any = None
    framework: str | None = None
    source_version: str = ""

    @property
    def class_name(self) -> str:
        return self.obj.__name__ if self.obj is not None else self.path.rsplit(":", 1)[1]

    def load(self) -> Any:
        if self.obj is not None:
            return self.obj
        module_name, attr = self.path.split(":")
        if self.framework is not None:
            require_framework(self.framework, self.model_type, self.class_name)
        try:
            module = importlib.import_module(module_name)
            self.obj = getattr(module, attr)
        except (FrameworkNotInstalledError, KeyboardInterrupt):
            raise
        except BaseException as exc:  # SystemExit too: a broken plugin must not end the process
            raise PluginLoadError(
                f"{self.source} {self.source_version} registered {self.path!r} for model type "
                f"{self.model_type!r}, but importing it failed: {type(exc).__name__}: {exc}. "
                f"Reinstall or upgrade {self.source}. Original traceback:\n{traceback.format_exc()}",
                distribution=self.source,
                version=self.source_version,
                cause_traceback=traceback.format_exc(),
            ) from exc
        return self.obj


def check_dotted_path(path: Any, what: str) -> str:
    if not isinstance(path, str) or not _DOTTED_PATH.match(path):
        raise RegistrationError(
            f"{what}: expected a dotted path like 'package.module:ClassName', got {path!r}."
        )
    return path


def framework_available(framework: str) -> bool:
    return importlib.util.find_spec(FRAMEWORKS[framework][0]) is not None


def require_framework(framework: str, model_type: str, class_name: str) -> None:
    if framework_available(framework):
        return
    from . import plugins  # the kernel knows which distribution provides what

    module, human, _ = FRAMEWORKS[framework]
    raise FrameworkNotInstalledError(
        f"{class_name} needs {human}, which is not installed (no module {module!r}). "
        f"{plugins.framework_hint(model_type, framework)}"
    )


@dataclass
class Registry:
    """Every registration, keyed by what it serves and then by who registered it.

    Keeping each source's entries apart lets two plugins claim one model type without either
    silently winning: :mod:`polyformers.plugins` decides which source serves a lookup.
    """

    configs: dict[str, dict[str, Entry]] = field(default_factory=dict)
    models: dict[tuple[str, str, str], dict[str, Entry]] = field(default_factory=dict)
    tokenizers: dict[str, dict[str, tuple[Entry | None, Entry | None]]] = field(default_factory=dict)
    processors: dict[tuple[str, str], dict[str, Entry]] = field(default_factory=dict)
    pipeline_tasks: dict[str, dict[str, Any]] = field(default_factory=dict)

    def model_types(self) -> set[str]:
        """Model types with at least one live registration."""
        return (
            {mt for mt, by_source in self.configs.items() if by_source}
            | {key[0] for key, by_source in self.models.items() if by_source}
            | {mt for mt, by_source in self.tokenizers.items() if by_source}
        )

    def entries_named(self, class_name: str) -> list[Entry]:
        found = []
        for by_source in (*self.configs.values(), *self.models.values(), *self.processors.values()):
            found += [e for e in by_source.values() if e.class_name == class_name]
        for by_source in self.tokenizers.values():
            for pair in by_source.values():
                found += [e for e in pair if e is not None and e.class_name == class_name]
        return found

    def clear_source(self, source: str) -> None:
        for table in (self.configs, self.models, self.tokenizers, self.processors, self.pipeline_tasks):
            for by_source in table.values():
                by_source.pop(source, None)


REGISTRY = Registry()


# --- lookups (activate the owning plugin first) ------------------------------------------------


def _pick(table: dict, key: Any, model_type: str) -> Any | None:
    """The entry that serves ``key``: a manual registration first, else the owning plugin's."""
    from . import plugins

    by_source = table.get(key, {})
    if MANUAL_SOURCE in by_source:
        return by_source[MANUAL_SOURCE]
    owner = plugins.owner_distribution(model_type)
    if owner is not None and owner in by_source:
        return by_source[owner]
    return None


def get_config_class(model_type: str) -> type:
    from . import plugins

    plugins.ensure_model_type(model_type)
    entry = _pick(REGISTRY.configs, model_type, model_type)
    if entry is None:
        raise PluginNotInstalledError(
            f"No config class is registered for model type {model_type!r}. "
            f"{plugins.install_hint(model_type)}"
        )
    return entry.load()


def get_model_class(model_type: str, task: str, framework: str) -> type:
    from . import plugins

    plugins.ensure_model_type(model_type)
    entry = _pick(REGISTRY.models, (model_type, task, framework), model_type)
    if entry is None:
        provided = sorted(
            (t, f) for (mt, t, f), by_source in REGISTRY.models.items() if mt == model_type and by_source
        )
        auto_name = FRAMEWORKS[framework][2] + TASKS.get(task, task)
        listing = ", ".join(f"{FRAMEWORKS[f][2]}{TASKS[t]}" for t, f in provided) or "none"
        raise ValueError(
            f"Unrecognized configuration for {auto_name}: model type {model_type!r} has no "
            f"{FRAMEWORKS[framework][1]} model for task {task!r}. Classes it provides: {listing}."
        )
    return entry.load()


def get_tokenizer_classes(model_type: str) -> tuple[type | None, type | None]:
    """(slow, fast) tokenizer classes; a side the plugin does not provide is ``None``."""
    from . import plugins

    plugins.ensure_model_type(model_type)
    pair = _pick(REGISTRY.tokenizers, model_type, model_type)
    if pair is None:
        raise ValueError(f"Model type {model_type!r} has no registered tokenizer.")
    slow, fast = pair
    return (slow.load() if slow else None, fast.load() if fast else None)


def get_processor_class(model_type: str, kind: str) -> type | None:
    from . import plugins

    plugins.ensure_model_type(model_type)
    entry = _pick(REGISTRY.processors, (model_type, kind), model_type)
    return entry.load() if entry else None


# --- manual registration (code that is not packaged as a plugin) ------------------------------


def _refuse_override(what: str, taken: bool, exist_ok: bool) -> None:
    if taken and not exist_ok:
        raise RegistrationError(
            f"{what} is already registered (by an installed plugin or an earlier register() "
            f"call). Pass exist_ok=True to override it, or use another model_type."
        )


def register_config(model_type: str, config_class: type, exist_ok: bool = False) -> None:
    from . import plugins

    declared = getattr(config_class, "model_type", None)
    if declared != model_type:
        raise RegistrationError(
            f"The config class {config_class.__name__} has model_type={declared!r}, but it is "
            f"being registered as {model_type!r}: set model_type = {model_type!r} on the class."
        )
    taken = bool(REGISTRY.configs.get(model_type)) or plugins.is_claimed(model_type)
    _refuse_override(f"model_type {model_type!r}", taken, exist_ok)
    REGISTRY.configs.setdefault(model_type, {})[MANUAL_SOURCE] = Entry(model_type, MANUAL_SOURCE, obj=config_class)


def register_model(config_class: type, task: str, framework: str, model_class: type, exist_ok: bool = False) -> None:
    from . import plugins

    model_type = getattr(config_class, "model_type", None)
    if not model_type:
        raise RegistrationError(
            f"{getattr(config_class, '__name__', config_class)!r} has no model_type: register "
            f"a PretrainedConfig subclass that sets model_type."
        )
    own_config = getattr(model_class, "config_class", None)
    if own_config is not None and own_config is not config_class:
        raise RegistrationError(
            f"{model_class.__name__}.config_class is {own_config.__name__}, but it is being "
            f"registered for {config_class.__name__}: they must match."
        )
    key = (model_type, task, framework)
    taken = bool(REGISTRY.models.get(key))
    if not taken and plugins.is_claimed(model_type):
        plugins.ensure_model_type(model_type)
        taken = bool(REGISTRY.models.get(key))
    _refuse_override(f"A {FRAMEWORKS[framework][1]} {TASKS[task]} model for {model_type!r}", taken, exist_ok)
    REGISTRY.models.setdefault(key, {})[MANUAL_SOURCE] = Entry(
        model_type, MANUAL_SOURCE, obj=model_class, framework=framework
    )


def register_tokenizer(
    config_class: type | str, slow_tokenizer_class: type | None = None, fast_tokenizer_class: type | None = None, exist_ok: bool = False
) -> None:
    from . import plugins

    model_type = config_class if isinstance(config_class, str) else getattr(config_class, "model_type", None)
    if slow_tokenizer_class is None and fast_tokenizer_class is None:
        raise RegistrationError("Pass slow_tokenizer_class, fast_tokenizer_class, or both.")
    taken = bool(REGISTRY.tokenizers.get(model_type))
    if not taken and plugins.is_claimed(model_type):
        plugins.ensure_model_type(model_type)
        taken = bool(REGISTRY.tokenizers.get(model_type))
    _refuse_override(f"A tokenizer for {model_type!r}", taken, exist_ok)
    REGISTRY.tokenizers.setdefault(model_type, {})[MANUAL_SOURCE] = tuple(
        Entry(model_type, MANUAL_SOURCE, obj=c) if c is not None else None
        for c in (slow_tokenizer_class, fast_tokenizer_class)
    )


def register_processor(config_class: type | str, kind: str, processor_class: type, exist_ok: bool = False) -> None:
    from . import plugins

    model_type = config_class if isinstance(config_class, str) else getattr(config_class, "model_type", None)
    key = (model_type, kind)
    taken = bool(REGISTRY.processors.get(key))
    if not taken and plugins.is_claimed(model_type):
        plugins.ensure_model_type(model_type)
        taken = bool(REGISTRY.processors.get(key))
    _refuse_override(f"A {kind} for {model_type!r}", taken, exist_ok)
    REGISTRY.processors.setdefault(key, {})[MANUAL_SOURCE] = Entry(model_type, MANUAL_SOURCE, obj=processor_class)
