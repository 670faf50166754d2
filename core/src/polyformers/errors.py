"""Typed errors raised by polyformers.

Every error says what was expected, what was found, and how to fix it. They subclass the builtin
exception a user would catch for the same situation (``ValueError``, ``ImportError``, ``OSError``)
so code written against Transformers keeps working.
"""

from __future__ import annotations

from typing import Any


class PolyformersError(Exception):
    """Base class of every error raised by polyformers itself."""


# --- plugins -----------------------------------------------------------------------------------


class PluginError(PolyformersError, ImportError):
    """A plugin could not be used: not installed, broken, or speaking another plugin API."""


class PluginNotInstalledError(PluginError):
    """No installed plugin provides a model type or class name."""


class PluginLoadError(PluginError):
    """An installed plugin raised while being imported or activated.

    ``distribution``, ``version`` and ``cause_traceback`` say which plugin and why.
    """

    def __init__(self, message: str, *, distribution: str, version: str, cause_traceback: str):
        super().__init__(message)
        self.distribution = distribution
        self.version = version
        self.cause_traceback = cause_traceback


class PluginAPIVersionError(PluginLoadError):
    """A plugin speaks a plugin-API version this core does not support."""


class ModelTypeConflictError(PluginError):
    """Two installed distributions claim the same ``model_type`` and no choice was made."""


class FrameworkNotInstalledError(PolyformersError, ImportError):
    """A class needs a framework (torch, tensorflow, jax) that is not installed."""


class RegistrationError(PolyformersError, ValueError):
    """A registration (by a plugin hook or by ``register()``) was malformed or conflicting."""


# --- files and checkpoints ---------------------------------------------------------------------


class CheckpointError(PolyformersError, OSError):
    """A checkpoint file is missing, truncated or inconsistent. The message names the file."""


class ConfigError(PolyformersError, ValueError):
    """A ``config.json`` is missing, unreadable or does not describe a known model."""


class WeightShapeMismatchError(PolyformersError, RuntimeError):
    """Checkpoint tensors have other shapes than the model's parameters."""


# --- inputs ------------------------------------------------------------------------------------


class AudioInputError(PolyformersError, ValueError):
    """Audio that cannot be used: unreadable or empty file, wrong layout or sampling rate, no samples.

    The message names the input (a file path or the argument) and says how to fix it.
    """


class ImageInputError(PolyformersError, ValueError):
    """An image that cannot be used: unreadable, corrupt or too large a file, or an array of the wrong layout.

    The message names the input (a file path or the argument) and says how to fix it.
    """


def short_repr(value: Any, limit: int = 200) -> str:
    """``repr(value)``, cut to ``limit`` characters: error messages must not echo a megabyte "path" back."""
    text = repr(value)
    return text if len(text) <= limit else f"{text[: limit - 30]}... ({len(text)} characters)"
