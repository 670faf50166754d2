"""The plugin loader, end to end, with fake installed plugins.

Every plugin here is a real distribution written by :mod:`polyformers.testing.plugin_kit` into a
temporary directory (``*.dist-info`` + sources) and found through ``importlib.metadata``. Its
config is a tiny ``PretrainedConfig`` subclass and its "models" are plain Python classes with
``from_pretrained`` / ``_from_config``, so no framework is needed. Most tests run ``isolated``:
the plugins really installed in this environment (polyformers-bert, …) are hidden, so the suite
behaves the same with core alone.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import json
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

import polyformers
from polyformers import plugins, registry
from polyformers.auto import (
    AutoConfig,
    AutoModel,
    AutoModelForSequenceClassification,
    AutoTokenizer,
    FlaxAutoModel,
    TFAutoModel,
)
from polyformers.configuration_utils import PretrainedConfig
from polyformers.errors import (
    FrameworkNotInstalledError,
    ModelTypeConflictError,
    PluginAPIVersionError,
    PluginLoadError,
    PluginNotInstalledError,
    RegistrationError,
)
from polyformers.testing.plugin_kit import installed, make_distribution, plugin_module_source

# --- fake plugin families ----------------------------------------------------------------------

CONFIG_SOURCE = """
from polyformers import PretrainedConfig


class {stem}Config(PretrainedConfig):
    model_type = {model_type!r}
    provider = {dist!r}  # which distribution served this class

    def __init__(self, hidden_size=4, **kwargs):
        self.hidden_size = hidden_size
        super().__init__(**kwargs)
"""

MODEL_SOURCE = """
from {pkg}.configuration import {stem}Config


class {prefix}{stem}Model:
    config_class = {stem}Config
    framework = {framework!r}

    def __init__(self, config, **kwargs):
        self.config = config
        self.kwargs = kwargs

    @classmethod
    def _from_config(cls, config, **kwargs):
        return cls(config, **kwargs)

    @classmethod
    def from_pretrained(cls, path, *args, config=None, **kwargs):
        model = cls(config, **kwargs)
        model.path = path
        return model
"""

TOKENIZER_SOURCE = """
class {stem}Tokenizer:
    @classmethod
    def from_pretrained(cls, path, *args, **kwargs):
        tokenizer = cls()
        tokenizer.path = path
        return tokenizer
"""

FRAMEWORK_FILES = {"pt": ("modeling", ""), "tf": ("modeling_tf", "TF"), "flax": ("modeling_flax", "Flax")}


@dataclass
class FakePlugin:
    """What :func:`add_plugin` wrote, so that tests can name its modules and classes."""

    dist: str
    version: str
    model_type: str
    pkg: str
    stem: str

    @property
    def hook_module(self) -> str:
        return f"{self.pkg}._plugin"

    def imported(self) -> list[str]:
        """This plugin's modules currently in ``sys.modules``."""
        return sorted(m for m in sys.modules if m == self.pkg or m.startswith(self.pkg + "."))


def stem_of(model_type: str) -> str:
    return "".join(part.title() for part in re.split(r"[-_]", model_type))


def add_plugin(
    site: Path,
    dist: str,
    model_type: str,
    version: str = "1.0.0",
    *,
    frameworks: tuple[str, ...] = ("pt",),
    tokenizer: bool = True,
    declared_types: list[str] | None = None,
    prelude: str = "",
    model_prelude: str = "",
    **hooks: Any,
) -> FakePlugin:
    """Write a fake plugin distribution providing ``model_type``; ``hooks`` override results."""
    pkg = re.sub(r"[-.]", "_", dist)
    stem = stem_of(model_type)
    modules = {
        f"{pkg}.configuration": CONFIG_SOURCE.format(stem=stem, model_type=model_type, dist=dist),
        f"{pkg}.tokenization": TOKENIZER_SOURCE.format(stem=stem),
    }
    models, classes = [], [f"{stem}Config"]
    for framework in frameworks:
        module, prefix = FRAMEWORK_FILES[framework]
        modules[f"{pkg}.{module}"] = model_prelude + MODEL_SOURCE.format(
            pkg=pkg, stem=stem, prefix=prefix, framework=framework
        )
        models.append((model_type, "base", framework, f"{pkg}.{module}:{prefix}{stem}Model"))
        classes.append(f"{prefix}{stem}Model")
    results: dict[str, Any] = {
        "configs": {model_type: f"{pkg}.configuration:{stem}Config"},
        "models": models,
        "tokenizers": [(model_type, f"{pkg}.tokenization:{stem}Tokenizer", None)] if tokenizer else [],
    }
    if tokenizer:
        classes.append(f"{stem}Tokenizer")
    results.update(hooks)
    modules[f"{pkg}._plugin"] = plugin_module_source(prelude=prelude, **results)
    make_distribution(
        site,
        dist,
        version,
        modules=modules,
        plugins={model_type: f"{pkg}._plugin"},
        model_types=declared_types if declared_types is not None else [model_type],
        classes=classes,
    )
    return FakePlugin(dist, version, model_type, pkg, stem)


def write_config_json(directory: Path, **values: Any) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "config.json").write_text(json.dumps(values), encoding="utf-8")
    return directory


@pytest.fixture(autouse=True)
def available_frameworks(monkeypatch: pytest.MonkeyPatch) -> set[str]:
    """Pretend every framework is installed (fake models need none); tests may remove some."""
    available = {"pt", "tf", "flax"}
    monkeypatch.setattr(registry, "framework_available", lambda framework: framework in available)
    return available


@pytest.fixture
def toy(site_dir: Path) -> FakePlugin:
    return add_plugin(site_dir, "polyformers-toy", "toy", "1.2.0", frameworks=("pt", "tf"))


@pytest.fixture
def other(site_dir: Path) -> FakePlugin:
    return add_plugin(site_dir, "other-plugin", "other", "0.3.0")


# --- discovery reads metadata only -------------------------------------------------------------


def test_discovery_reads_metadata_without_importing_plugins(site_dir, toy, other):
    with installed(site_dir, isolated=True):
        infos = {info.distribution: info for info in plugins.list_plugins()}

        assert sorted(infos) == ["other-plugin", "polyformers-toy"]
        info = infos["polyformers-toy"]
        assert (info.name, info.module, info.version) == ("toy", toy.hook_module, "1.2.0")
        assert info.model_types == ["toy"]
        assert sorted(info.classes) == ["TFToyModel", "ToyConfig", "ToyModel", "ToyTokenizer"]
        assert (info.status, info.frameworks, info.error) == ("inactive", [], None)
        assert toy.imported() == [] and other.imported() == []


def test_discovery_alongside_the_real_environment_imports_nothing(site_dir, toy):
    before = {m for m in sys.modules if m.startswith("polyformers_")}
    with installed(site_dir):  # not isolated: really installed plugins are listed too
        names = [info.distribution for info in plugins.list_plugins()]
        assert "polyformers-toy" in names
        assert all(info.status == "inactive" for info in plugins.list_plugins() if info.distribution == "polyformers-toy")
        newly_imported = {m for m in sys.modules if m.startswith("polyformers_")} - before
        assert newly_imported == set()


def test_plugin_is_imported_when_its_model_type_is_first_used(site_dir, toy, other):
    with installed(site_dir, isolated=True):
        config = AutoConfig.for_model("toy", hidden_size=7)

        assert type(config).__name__ == "ToyConfig" and config.hidden_size == 7
        assert toy.imported() == ["polyformers_toy", "polyformers_toy._plugin", "polyformers_toy.configuration"]
        assert other.imported() == []
        statuses = {info.distribution: info.status for info in plugins.list_plugins()}
        assert statuses == {"polyformers-toy": "active", "other-plugin": "inactive"}


def test_auto_classes_load_from_a_directory_with_config_json(site_dir, toy, other, tmp_path):
    checkpoint = write_config_json(tmp_path / "ckpt", model_type="toy", hidden_size=5, unknown_key=[1, 2])
    with installed(site_dir, isolated=True):
        config = AutoConfig.from_pretrained(checkpoint)
        assert type(config).__name__ == "ToyConfig"
        assert (config.hidden_size, config.unknown_key) == (5, [1, 2])
        assert other.imported() == []
        assert f"{toy.pkg}.modeling" not in sys.modules  # configs do not import models

        model = AutoModel.from_pretrained(checkpoint, some_flag=True)
        assert type(model).__name__ == "ToyModel" and model.framework == "pt"
        assert model.path == checkpoint and model.config.hidden_size == 5
        assert model.kwargs == {"some_flag": True}
        assert type(AutoModel.from_config(config)).__name__ == "ToyModel"
        assert type(TFAutoModel.from_config(config)).__name__ == "TFToyModel"
        assert type(AutoTokenizer.from_pretrained(checkpoint)).__name__ == "ToyTokenizer"
        assert other.imported() == []


def test_lazy_class_access_activates_only_that_plugin(site_dir, toy, other):
    with installed(site_dir, isolated=True):
        model_class = polyformers.ToyModel

        assert model_class is sys.modules[f"{toy.pkg}.modeling"].ToyModel
        assert other.imported() == []
        assert f"{toy.pkg}.modeling_tf" not in sys.modules  # only the class asked for
        from polyformers import ToyConfig

        assert ToyConfig is model_class.config_class
        assert other.imported() == []


def test_refresh_sees_plugins_installed_and_removed(site_dir, tmp_path):
    with installed(site_dir, isolated=True):
        with pytest.raises(PluginNotInstalledError):
            AutoConfig.for_model("late")
    add_plugin(site_dir, "late-plugin", "late")
    with installed(site_dir, isolated=True):
        assert type(AutoConfig.for_model("late")).__name__ == "LateConfig"
    assert "late_plugin" not in sys.modules  # the kit purged it
    with pytest.raises(PluginNotInstalledError):
        AutoConfig.for_model("late")


# --- list_plugins ------------------------------------------------------------------------------


def test_list_plugins_reports_versions_frameworks_status_and_errors(site_dir, toy, other):
    add_plugin(site_dir, "broken-plugin", "broken", "0.0.1", prelude="raise RuntimeError('cannot start')")
    with installed(site_dir, isolated=True):
        AutoConfig.for_model("toy")
        with pytest.raises(PluginLoadError):
            AutoConfig.for_model("broken")

        infos = {info.distribution: info for info in plugins.list_plugins()}
        assert [i.distribution for i in plugins.list_plugins()] == ["broken-plugin", "other-plugin", "polyformers-toy"]
        toy_info, broken, inactive = infos["polyformers-toy"], infos["broken-plugin"], infos["other-plugin"]
        assert (toy_info.status, toy_info.frameworks, toy_info.error) == ("active", ["pt", "tf"], None)
        assert (broken.status, broken.version, broken.model_types) == ("failed", "0.0.1", ["broken"])
        assert isinstance(broken.error, PluginLoadError) and "cannot start" in str(broken.error)
        assert (inactive.status, inactive.frameworks) == ("inactive", [])

        assert str(toy_info) == "polyformers-toy 1.2.0 (toy): active; model types toy; frameworks pt, tf"
        assert str(broken).startswith("broken-plugin 0.0.1 (broken): failed; model types broken; error: ")

        activated = {info.distribution: info for info in plugins.list_plugins(activate=True)}
        assert (activated["other-plugin"].status, activated["other-plugin"].frameworks) == ("active", ["pt"])


# --- a broken plugin breaks only itself --------------------------------------------------------


@pytest.mark.parametrize(
    "raising",
    ["raise ImportError('no module named helper_xyz')", "raise RuntimeError('boom_xyz')", "raise SystemExit('exit_xyz')"],
    ids=["ImportError", "RuntimeError", "SystemExit"],
)
def test_plugin_failing_on_import_affects_only_its_model_types(site_dir, toy, tmp_path, raising):
    add_plugin(site_dir, "polyformers-broken", "broken", "2.3.4", prelude=raising)
    cause = raising.split("(")[0].split()[-1]
    checkpoint = write_config_json(tmp_path / "ckpt", model_type="broken")
    with installed(site_dir, isolated=True):
        assert type(AutoConfig.for_model("toy")).__name__ == "ToyConfig"

        for use in (
            lambda: AutoConfig.for_model("broken"),
            lambda: AutoConfig.from_pretrained(checkpoint),
            lambda: polyformers.BrokenModel,
        ):
            with pytest.raises(PluginLoadError) as excinfo:
                use()
            error = excinfo.value
            message = str(error)
            assert "polyformers-broken" in message and "2.3.4" in message
            assert cause in message and "_xyz" in message
            assert "Traceback (most recent call last)" in message
            assert re.search(r"polyformers_broken[/\\]_plugin\.py", message)  # the original traceback
            assert (error.distribution, error.version) == ("polyformers-broken", "2.3.4")
            assert "_xyz" in error.cause_traceback
            assert isinstance(error, ImportError)  # code catching ImportError keeps working

        assert type(AutoModel.from_config(AutoConfig.for_model("toy"))).__name__ == "ToyModel"
        statuses = {info.distribution: info.status for info in plugins.list_plugins()}
        assert statuses == {"polyformers-toy": "active", "polyformers-broken": "failed"}


def test_class_module_failing_on_import_raises_plugin_load_error(site_dir):
    add_plugin(site_dir, "polyformers-halfbroken", "halfbroken", "0.9.0", model_prelude="raise RuntimeError('modeling_xyz')\n")
    with installed(site_dir, isolated=True):
        config = AutoConfig.for_model("halfbroken")  # the config does not need the model module
        with pytest.raises(PluginLoadError) as excinfo:
            AutoModel.from_config(config)
        message = str(excinfo.value)
        assert "polyformers-halfbroken" in message and "0.9.0" in message
        assert "modeling_xyz" in message and "Traceback (most recent call last)" in message
        assert excinfo.value.distribution == "polyformers-halfbroken"


def test_class_module_raising_system_exit_raises_plugin_load_error(site_dir):
    add_plugin(site_dir, "polyformers-exits", "exits", model_prelude="raise SystemExit('exit_xyz')\n")
    with installed(site_dir, isolated=True):
        config = AutoConfig.for_model("exits")
        try:
            AutoModel.from_config(config)
        except SystemExit:
            pytest.fail("SystemExit escaped from a plugin's class module")
        except PluginLoadError as error:
            assert "polyformers-exits" in str(error) and "exit_xyz" in str(error)


# --- plugin API version ------------------------------------------------------------------------


@pytest.mark.parametrize("api_version", [99, None, "1"], ids=["99", "missing", "string"])
def test_plugin_api_mismatch_names_distribution_version_and_supported_range(site_dir, toy, api_version):
    dist = add_plugin(site_dir, "polyformers-future", "future", "7.0.0")
    source = plugin_module_source(api_version=api_version, configs={"future": f"{dist.pkg}.configuration:FutureConfig"})
    (site_dir / dist.pkg / "_plugin.py").write_text(source, encoding="utf-8")
    supported = plugins.SUPPORTED_PLUGIN_APIS
    with installed(site_dir, isolated=True):
        with pytest.raises(PluginAPIVersionError) as excinfo:
            AutoConfig.for_model("future")
        message = str(excinfo.value)
        assert "polyformers-future" in message and "7.0.0" in message
        assert repr(api_version) in message and "POLYFORMERS_PLUGIN_API" in message
        assert f"{supported.start}..{supported.stop - 1}" in message
        assert isinstance(excinfo.value, PluginLoadError)
        assert f"{dist.pkg}.configuration" not in sys.modules  # no hook was called
        assert type(AutoConfig.for_model("toy")).__name__ == "ToyConfig"


# --- malformed hook results --------------------------------------------------------------------

BAD = "polyformers_bad"  # the package of the "polyformers-bad" distribution


@pytest.mark.parametrize(
    "hooks, hook, offending",
    [
        ({"configs": {"bad": "not a dotted path"}}, "polyformers_configs", "'not a dotted path'"),
        ({"configs": {"bad": 42}}, "polyformers_configs", "42"),
        ({"configs": {"undeclared": f"{BAD}.configuration:BadConfig"}}, "polyformers_configs", "'undeclared'"),
        ({"models": [("bad", "no-such-task", "pt", f"{BAD}.modeling:BadModel")]}, "polyformers_models", "'no-such-task'"),
        ({"models": [("bad", "base", "mxnet", f"{BAD}.modeling:BadModel")]}, "polyformers_models", "'mxnet'"),
        ({"models": [("bad", "base", "pt", "polyformers_bad.modeling.BadModel")]}, "polyformers_models", "'polyformers_bad.modeling.BadModel'"),
        ({"models": [("undeclared", "base", "pt", f"{BAD}.modeling:BadModel")]}, "polyformers_models", "'undeclared'"),
        ({"tokenizers": [("bad", f"{BAD}.tokenization:BadTokenizer", "fast tokenizer")]}, "polyformers_tokenizers", "'fast tokenizer'"),
        ({"processors": [("bad", "audio_thing", f"{BAD}.processing:BadProcessor")]}, "polyformers_processors", "'audio_thing'"),
    ],
    ids=["config-path", "config-not-str", "config-undeclared", "task", "framework", "model-path", "model-undeclared", "tokenizer-path", "processor-kind"],
)
def test_malformed_hook_result_disables_only_that_plugin(site_dir, toy, hooks, hook, offending):
    add_plugin(site_dir, "polyformers-bad", "bad", "0.1.0", **hooks)
    with installed(site_dir, isolated=True):
        with pytest.raises(PluginLoadError) as excinfo:
            AutoConfig.for_model("bad")
        message = str(excinfo.value)
        assert hook in message and offending in message
        assert "polyformers-bad" in message and "0.1.0" in message
        assert [i.status for i in plugins.list_plugins() if i.distribution == "polyformers-bad"] == ["failed"]
        # A bad plugin adds nothing, not even its valid results.
        tables = (registry.REGISTRY.configs, registry.REGISTRY.models, registry.REGISTRY.tokenizers, registry.REGISTRY.processors)
        assert not any("polyformers-bad" in by_source for table in tables for by_source in table.values())
        assert type(AutoConfig.for_model("toy")).__name__ == "ToyConfig"


@pytest.mark.parametrize(
    "hooks, prelude, hook",
    [
        ({"models": 42}, "", "polyformers_models"),
        ({"models": [("bad", "base")]}, "", "polyformers_models"),
        ({"tokenizers": [("bad", None)]}, "", "polyformers_tokenizers"),
        (
            {"models": None},
            "from polyformers.hookspecs import hookimpl as _impl\n"
            "@_impl\ndef polyformers_models():\n    raise RuntimeError('hook raised')\n",
            "polyformers_models",
        ),
    ],
    ids=["not-a-sequence", "wrong-arity", "tokenizer-wrong-arity", "hook-raises"],
)
def test_malformed_hook_result_error_names_the_hook(site_dir, hooks, prelude, hook):
    add_plugin(site_dir, "polyformers-bad", "bad", "0.1.0", prelude=prelude, **hooks)
    with installed(site_dir, isolated=True):
        with pytest.raises(PluginLoadError) as excinfo:
            AutoConfig.for_model("bad")
        first_line = str(excinfo.value).splitlines()[0]
        assert "polyformers-bad" in first_line
        assert hook in first_line


def test_misspelled_hook_is_reported(site_dir):
    prelude = "from polyformers.hookspecs import hookimpl as _impl\n@_impl\ndef polyformers_model():\n    return []\n"
    add_plugin(site_dir, "polyformers-typo", "typo", prelude=prelude)
    with installed(site_dir, isolated=True):
        with pytest.raises(PluginLoadError, match="polyformers_model"):
            AutoConfig.for_model("typo")


# --- two distributions, one model type ---------------------------------------------------------


@pytest.fixture
def two_claimants(tmp_path: Path) -> tuple[Path, Path]:
    """``dup`` claimed by polyformers-dup-a 1.0.0 and dup-b-plugin 2.0.0, in separate site dirs."""
    site_a, site_b = tmp_path / "site-a", tmp_path / "site-b"
    add_plugin(site_a, "polyformers-dup-a", "dup", "1.0.0")
    add_plugin(site_b, "dup-b-plugin", "dup", "2.0.0")
    return site_a, site_b


def _in_order(two_claimants, order: str) -> tuple[Path, ...]:
    return two_claimants if order == "ab" else two_claimants[::-1]


@pytest.mark.parametrize("order", ["ab", "ba"])
def test_model_type_conflict_names_both_distributions(two_claimants, order, tmp_path):
    checkpoint = write_config_json(tmp_path / "ckpt", model_type="dup")
    with installed(*_in_order(two_claimants, order), isolated=True):
        for use in (lambda: AutoConfig.for_model("dup"), lambda: AutoConfig.from_pretrained(checkpoint), lambda: polyformers.DupModel):
            with pytest.raises(ModelTypeConflictError) as excinfo:
                use()
            message = str(excinfo.value)
            assert "polyformers-dup-a 1.0.0" in message and "dup-b-plugin 2.0.0" in message
            assert "polyformers.plugins.prefer(" in message and plugins.PREFER_ENV in message
        assert "polyformers_dup_a.configuration" not in sys.modules
        assert "dup_b_plugin.configuration" not in sys.modules


@pytest.mark.parametrize("order", ["ab", "ba"])
@pytest.mark.parametrize("chosen", ["polyformers-dup-a", "dup-b-plugin"])
@pytest.mark.parametrize("how", ["prefer", "env"])
def test_conflict_is_resolved_by_prefer_or_env_never_by_install_order(two_claimants, order, chosen, how, monkeypatch):
    if how == "prefer":
        plugins.prefer("dup", chosen)
    else:
        monkeypatch.setenv(plugins.PREFER_ENV, f"other=x, dup = {chosen}")
    with installed(*_in_order(two_claimants, order), isolated=True):
        config = AutoConfig.for_model("dup")
        assert config.provider == chosen
        assert type(AutoModel.from_config(config)).__module__.startswith(chosen.replace("-", "_"))
        assert polyformers.DupModel.config_class.provider == chosen
        loser = ({"polyformers-dup-a", "dup-b-plugin"} - {chosen}).pop().replace("-", "_")
        assert f"{loser}.configuration" not in sys.modules and f"{loser}.modeling" not in sys.modules


def test_prefer_normalises_names_and_wins_over_env(two_claimants, monkeypatch):
    monkeypatch.setenv(plugins.PREFER_ENV, "dup=polyformers-dup-a")
    plugins.prefer("dup", "Dup_B.Plugin")
    with installed(*two_claimants, isolated=True):
        assert AutoConfig.for_model("dup").provider == "dup-b-plugin"


def test_preferring_a_distribution_that_does_not_provide_the_type(two_claimants):
    plugins.prefer("dup", "polyformers-elsewhere")
    with installed(*two_claimants, isolated=True):
        with pytest.raises(ModelTypeConflictError, match="'polyformers-elsewhere'.*does not provide") as excinfo:
            AutoConfig.for_model("dup")
        assert "polyformers-dup-a 1.0.0" in str(excinfo.value) and "dup-b-plugin 2.0.0" in str(excinfo.value)


# --- nothing installed for a model type or class -----------------------------------------------


def test_unknown_model_type_lists_what_is_installed(site_dir, toy, tmp_path):
    checkpoint = write_config_json(tmp_path / "ckpt", model_type="nosuchtype")
    with installed(site_dir, isolated=True):
        for use in (lambda: AutoConfig.for_model("nosuchtype"), lambda: AutoConfig.from_pretrained(checkpoint)):
            with pytest.raises(PluginNotInstalledError, match="'nosuchtype'.*installed plugins provide: toy"):
                use()
        assert toy.imported() == []


def test_known_family_without_its_plugin_names_the_distribution(site_dir, toy, tmp_path):
    checkpoint = write_config_json(tmp_path / "ckpt", model_type="bert")
    with installed(site_dir, isolated=True):  # polyformers-bert, if installed, is hidden
        for use in (lambda: AutoConfig.for_model("bert"), lambda: AutoConfig.from_pretrained(checkpoint)):
            with pytest.raises(PluginNotInstalledError, match="pip install polyformers-bert"):
                use()
        with pytest.raises(AttributeError, match="pip install polyformers-bert"):
            polyformers.BertModel
        with pytest.raises(AttributeError, match="pip install polyformers-bert"):
            polyformers.TFBertForMaskedLM
        with pytest.raises(AttributeError, match="pip install polyformers-wav2vec2"):
            polyformers.Wav2Vec2ForCTC


def test_bert_missing_in_this_environment():
    """The same, without hiding anything: only meaningful where polyformers-bert is absent."""
    if importlib.util.find_spec("polyformers_bert") is not None:
        pytest.skip("polyformers-bert is installed here")
    plugins.refresh()
    with pytest.raises(PluginNotInstalledError, match="pip install polyformers-bert"):
        AutoConfig.for_model("bert")
    with pytest.raises(AttributeError, match="polyformers-bert"):
        polyformers.BertModel


def test_unknown_attribute_is_an_attribute_error(site_dir, toy):
    with installed(site_dir, isolated=True):
        with pytest.raises(AttributeError, match="has no attribute 'Foo'"):
            polyformers.Foo
        assert not hasattr(polyformers, "NoSuchModelForAnything")
        with pytest.raises(ImportError):
            from polyformers import Foo  # noqa: F401
        with pytest.raises(AttributeError):
            polyformers._private_thing
        assert toy.imported() == []


# --- missing framework ---------------------------------------------------------------------------


@pytest.mark.parametrize("extras, extra", [(None, "tf"), ({"pt": "torch", "tf": "tensorflow-cpu"}, "tensorflow-cpu")])
def test_missing_framework_names_the_extra_and_the_provided_frameworks(site_dir, available_frameworks, extras, extra):
    hooks = {"framework_extras": extras} if extras else {}
    fw = add_plugin(site_dir, "polyformers-fw", "fw", "3.1.0", frameworks=("pt", "tf"), **hooks)
    available_frameworks.discard("tf")
    with installed(site_dir, isolated=True):
        config = AutoConfig.for_model("fw")
        for use in (lambda: TFAutoModel.from_config(config), lambda: polyformers.TFFwModel):
            with pytest.raises(FrameworkNotInstalledError) as excinfo:
                use()
            message = str(excinfo.value)
            assert "TFFwModel needs TensorFlow" in message
            assert f"pip install 'polyformers-fw[{extra}]'" in message
            assert "PyTorch" in message  # what the plugin does provide
            assert isinstance(excinfo.value, ImportError)
        assert f"{fw.pkg}.modeling_tf" not in sys.modules
        assert type(AutoModel.from_config(config)).__name__ == "FwModel"  # PyTorch still works


def test_framework_the_plugin_does_not_provide_lists_what_it_does(site_dir, toy):
    with installed(site_dir, isolated=True):
        with pytest.raises(ValueError, match=r"no JAX/Flax model.*AutoModel, TFAutoModel"):
            FlaxAutoModel.from_config(AutoConfig.for_model("toy"))


# --- register() for code that is not a plugin -------------------------------------------------


class HandmadeConfig(PretrainedConfig):
    model_type = "handmade"


class HandmadeModel:
    config_class = HandmadeConfig

    def __init__(self, config):
        self.config = config

    @classmethod
    def _from_config(cls, config, **kwargs):
        return cls(config)


class HandmadeTokenizer:
    @classmethod
    def from_pretrained(cls, path, *args, **kwargs):
        return cls()


class OtherHandmadeModel(HandmadeModel):
    pass


def test_register_for_non_plugin_code(tmp_path):
    AutoConfig.register("handmade", HandmadeConfig)
    AutoModel.register(HandmadeConfig, HandmadeModel)
    AutoTokenizer.register(HandmadeConfig, slow_tokenizer_class=HandmadeTokenizer)

    config = AutoConfig.for_model("handmade")
    assert type(config) is HandmadeConfig
    assert type(AutoModel.from_config(config)) is HandmadeModel
    checkpoint = write_config_json(tmp_path / "ckpt", model_type="handmade")
    assert type(AutoConfig.from_pretrained(checkpoint)) is HandmadeConfig
    assert type(AutoTokenizer.from_pretrained(checkpoint)) is HandmadeTokenizer
    with pytest.raises(ValueError, match="no PyTorch model for task 'sequence-classification'"):
        AutoModelForSequenceClassification.from_config(config)

    with pytest.raises(RegistrationError, match="exist_ok=True"):
        AutoConfig.register("handmade", HandmadeConfig)
    with pytest.raises(RegistrationError, match="exist_ok=True"):
        AutoModel.register(HandmadeConfig, OtherHandmadeModel)
    with pytest.raises(RegistrationError, match="exist_ok=True"):
        AutoTokenizer.register(HandmadeConfig, fast_tokenizer_class=HandmadeTokenizer)
    assert type(AutoModel.from_config(config)) is HandmadeModel  # the refused override changed nothing

    AutoModel.register(HandmadeConfig, OtherHandmadeModel, exist_ok=True)
    assert type(AutoModel.from_config(config)) is OtherHandmadeModel


def test_register_checks_what_it_is_given():
    with pytest.raises(RegistrationError, match="model_type='handmade'.*'mismatch'"):
        AutoConfig.register("mismatch", HandmadeConfig)

    class Unrelated(PretrainedConfig):
        model_type = "unrelated"

    with pytest.raises(RegistrationError, match="config_class is HandmadeConfig"):
        AutoModel.register(Unrelated, HandmadeModel)


def test_register_refuses_a_type_an_installed_plugin_provides(site_dir, toy):
    with installed(site_dir, isolated=True):
        toy_config_class = polyformers.ToyConfig

        class MyToyConfig(PretrainedConfig):
            model_type = "toy"

        class MyToyModel:
            config_class = toy_config_class

            @classmethod
            def _from_config(cls, config, **kwargs):
                return cls()

        class MyToyTokenizer:
            pass

        with pytest.raises(RegistrationError, match="'toy' is already registered"):
            AutoConfig.register("toy", MyToyConfig)
        with pytest.raises(RegistrationError, match="already registered"):
            AutoModel.register(toy_config_class, MyToyModel)
        with pytest.raises(RegistrationError, match="already registered"):
            AutoTokenizer.register("toy", slow_tokenizer_class=MyToyTokenizer)
        # A task the plugin does not provide is free.
        AutoModelForSequenceClassification.register(toy_config_class, MyToyModel)
        assert type(AutoModelForSequenceClassification.from_config(toy_config_class())) is MyToyModel

        AutoConfig.register("toy", MyToyConfig, exist_ok=True)
        AutoModel.register(toy_config_class, MyToyModel, exist_ok=True)
        assert type(AutoConfig.for_model("toy")) is MyToyConfig
        assert type(AutoModel.from_config(toy_config_class())) is MyToyModel


def test_register_refuses_a_plugin_type_without_importing_the_plugin(site_dir, toy):
    class MyToyConfig(PretrainedConfig):
        model_type = "toy"

    with installed(site_dir, isolated=True):
        with pytest.raises(RegistrationError):
            AutoConfig.register("toy", MyToyConfig)
        assert toy.imported() == []  # the metadata said enough


# --- one distribution, several hook modules ----------------------------------------------------


def test_a_distribution_with_two_hook_modules_serves_both(site_dir):
    configs = """
        from polyformers import PretrainedConfig

        class TwinAConfig(PretrainedConfig):
            model_type = "twin-a"

        class TwinBConfig(PretrainedConfig):
            model_type = "twin-b"
    """
    make_distribution(
        site_dir,
        "polyformers-twins",
        "1.0.0",
        modules={
            "twins.configuration": configs,
            "twins._plugin_a": plugin_module_source(configs={"twin-a": "twins.configuration:TwinAConfig"}),
            "twins._plugin_b": plugin_module_source(configs={"twin-b": "twins.configuration:TwinBConfig"}),
        },
        plugins={"twin-a": "twins._plugin_a", "twin-b": "twins._plugin_b"},
        model_types={"twin-a": "twins._plugin_a", "twin-b": "twins._plugin_b"},
    )
    with installed(site_dir, isolated=True):
        assert type(AutoConfig.for_model("twin-b")).__name__ == "TwinBConfig"
        assert type(AutoConfig.for_model("twin-a")).__name__ == "TwinAConfig"


# --- the kit itself ----------------------------------------------------------------------------


def test_plugin_kit_installs_and_uninstalls_a_distribution(site_dir):
    dist_info = make_distribution(
        site_dir,
        "Polyformers.Kit-Check",
        "4.5.6",
        modules={"kit_check._plugin": plugin_module_source(), "kit_check/data.py": "VALUE = 1\n"},
        plugins={"kitcheck": "kit_check._plugin"},
        model_types=["kitcheck"],
        classes={"KitCheckModel": "kit_check._plugin"},
    )
    assert dist_info == site_dir / "polyformers_kit_check-4.5.6.dist-info"
    assert (site_dir / "kit_check" / "__init__.py").is_file()
    entry_points = (dist_info / "entry_points.txt").read_text()
    assert "[polyformers.model_types]\nkitcheck = kit_check._plugin\n" in entry_points

    with installed(site_dir):
        assert importlib.metadata.version("Polyformers.Kit-Check") == "4.5.6"
        import kit_check.data  # noqa: F401

        assert "kit_check.data" in sys.modules
    assert "kit_check.data" not in sys.modules and "kit_check" not in sys.modules
    assert str(site_dir) not in sys.path
    with pytest.raises(importlib.metadata.PackageNotFoundError):
        importlib.metadata.version("Polyformers.Kit-Check")


def test_plugin_kit_refuses_a_name_list_without_a_single_hook_module(site_dir):
    with pytest.raises(ValueError, match="exactly one plugin module"):
        make_distribution(site_dir, "two-hooks", plugins={"a": "x._a", "b": "x._b"}, model_types=["a", "b"])


def test_lazy_class_access_follows_a_later_preference(two_claimants):
    with installed(*two_claimants, isolated=True):
        plugins.prefer("dup", "polyformers-dup-a")
        assert polyformers.DupModel.config_class.provider == "polyformers-dup-a"
        plugins.prefer("dup", "dup-b-plugin")
        assert AutoConfig.for_model("dup").provider == "dup-b-plugin"
        assert polyformers.DupModel.config_class.provider == "dup-b-plugin"
