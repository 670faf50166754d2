"""Imported when a tiny-mlp model is first used: imports nothing heavy, names classes by path."""

from polyformers.hookspecs import ModelSpec, hookimpl

POLYFORMERS_PLUGIN_API = 1  # the plugin API this module speaks


@hookimpl
def polyformers_configs():
    return {"tiny-mlp": "tiny_mlp.configuration:TinyMlpConfig"}


@hookimpl
def polyformers_models():
    # (model_type, task, framework, path); task "base" is what AutoModel loads.
    return [ModelSpec("tiny-mlp", "base", "pt", "tiny_mlp.modeling:TinyMlpModel")]


@hookimpl
def polyformers_framework_extras():
    return {"pt": "torch"}
