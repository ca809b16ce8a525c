"""Every config group option composes and builds what it names (CPU, Hydra's compose API)."""

from __future__ import annotations

import inspect
from importlib import resources

import pytest
from app_helpers import TINY, compose_config
from hydra.types import RunMode
from hydra.utils import get_method, instantiate

from alchemy_torch import Resampler, methods
from alchemy_torch.app.cli import paper_setting
from alchemy_torch.app.job import GROUPINGS
from alchemy_torch.datasets import registry
from alchemy_torch.evaluation import report

CONFIGS = resources.files("alchemy_torch.configs")
#: launchers from Hydra's plugins, beside our own options of hydra/launcher
PLUGIN_LAUNCHERS = ("basic", "joblib", "submitit_local", "submitit_slurm")


def options(group: str) -> list[str]:
    return sorted(
        p.name[: -len(".yaml")]
        for p in CONFIGS.joinpath(group).iterdir()
        if p.name.endswith(".yaml")
    )


def data_overrides(option: str) -> list[str]:
    """What a data option needs on the command line (files: a kind and paths)."""
    if option == "files":
        return ["data=files", "data.kind=flows", "data.dataset.paths=[conn.log]"]
    return [f"data={option}"]


def assert_binds(node) -> None:
    """The node's _target_ imports and accepts every key of the node."""
    target = get_method(node._target_)
    kwargs = {k: v for k, v in node.items() if not k.startswith("_")}
    inspect.signature(target).bind(**kwargs)


def test_every_group_has_options():
    for group in ("data", "method", "model", "evaluation", "experiment"):
        assert options(group), group


@pytest.mark.parametrize("option", options("data"))
def test_data_option_names_a_loader_that_takes_its_arguments(option):
    cfg = compose_config(data_overrides(option))
    assert cfg.data.name == option
    assert cfg.data.kind in ("flows", "http", "dns")
    assert cfg.features.kind == cfg.data.kind
    assert_binds(cfg.data.dataset)


@pytest.mark.filterwarnings("ignore:DnsFeatures. no geoip")
@pytest.mark.parametrize("kind", ["flows", "http", "dns"])
def test_synthetic_data_builds_records_of_its_kind(kind):
    cfg = compose_config([f"data=synthetic-{kind}", *TINY])
    records, labels = instantiate(cfg.data.dataset)
    assert len(labels) == 40 and labels.sum() == 4
    extractor = instantiate(cfg.features)
    assert extractor.kind == kind


def test_every_named_set_has_a_data_option_of_its_kind():
    mine = set(options("data"))
    for name, spec in registry.LOCAL.items():
        assert name in mine, f"configs/data/{name}.yaml is missing"
        assert compose_config([f"data={name}"]).data.kind == spec.kind
    assert {f"synthetic-{kind}" for kind in ("flows", "http", "dns")} <= mine


@pytest.mark.parametrize("option", options("method"))
def test_method_option_builds_its_method(option):
    method = instantiate(compose_config([f"method={option}"]).method)
    expected_class, fixed = methods.NAMES[option]
    assert type(method) is expected_class
    assert all(getattr(method, k) == v for k, v in fixed.items())


def test_oversample_takes_any_imbalanced_learn_sampler_from_the_command_line():
    overrides = ["method=oversample", "method.sampler._target_=imblearn.over_sampling.ADASYN"]
    method = instantiate(compose_config([*overrides, "+method.sampler.n_neighbors=3"]).method)
    assert type(method.over_sampler()).__name__ == "ADASYN"
    assert method.over_sampler().n_neighbors == 3


@pytest.mark.parametrize("kind", ["flows", "http", "dns"])
def test_alchemy_options_carry_the_slides_settings_of_the_data_type(kind):
    paper = methods.paper_defaults(kind)
    for pattern in (1, 2, 3, 4):
        cfg = compose_config([f"data=synthetic-{kind}", f"method=alchemy{pattern}"])
        method = instantiate(cfg.method)
        assert method.pattern == pattern
        assert isinstance(method.resampler, Resampler)
        assert method.resampler.option == paper["resampler"].option
        assert method.resampler.iterations == paper["resampler"].iterations
        assert tuple(method.p_range) == paper["p_range"] and method.f == paper["f"]
    noise = instantiate(compose_config([f"data=synthetic-{kind}", "method=noise"]).method)
    assert noise.copies == paper["resampler"].iterations  # the same budget as Alchemy


def test_paper_resolver_rejects_an_unknown_kind():
    with pytest.raises(ValueError, match="kind must be one of"):
        paper_setting("netflow", "option")


@pytest.mark.parametrize("option", options("model"))
def test_model_option_builds_a_classifier_with_the_run_seed(option):
    model = instantiate(compose_config([f"model={option}", "seed=7"]).model)
    assert hasattr(model, "fit") and hasattr(model, "predict_proba")
    assert model.random_state == 7


@pytest.mark.parametrize("option", options("evaluation"))
def test_evaluation_option_is_a_protocol(option):
    evaluation = compose_config([f"evaluation={option}"]).evaluation
    assert evaluation.folds >= 2 and evaluation.repeats >= 1
    assert evaluation.groups in GROUPINGS


@pytest.mark.parametrize("option", options("experiment"))
def test_experiment_sweeps_values_that_all_compose_and_build(option):
    cfg = compose_config([f"experiment={option}"], hydra_config=True)
    assert cfg.hydra.mode == RunMode.MULTIRUN
    params = cfg.hydra.sweeper.params
    assert params, "an experiment declares its sweep"
    for key, values in params.items():
        for value in str(values).split(","):
            cell = compose_config([f"experiment={option}", f"{key}={value}"])
            instantiate(cell.method)
            assert_binds(cell.model)


def test_paper_table_sweeps_the_slides_methods_and_models():
    params = compose_config(["experiment=paper_table"], hydra_config=True).hydra.sweeper.params
    assert params.method.split(",") == list(report.SLIDES_AUC.index)  # the slides' rows
    assert set(params.model.split(",")) == set(options("model"))


def test_every_key_a_sweep_varies_names_its_cell_folders():
    for experiment in options("experiment"):
        cfg = compose_config([f"experiment={experiment}"], hydra_config=True)
        excluded = set(cfg.hydra.job.config.override_dirname.exclude_keys)
        assert excluded <= set(report.CELL_KEYS)  # the report drops what the folder drops
        swept = set((cfg.hydra.sweeper.params or {}).keys())
        assert not swept & excluded - {"data"}  # data: a folder level of its own
    scarcity = compose_config(["experiment=scarcity"], hydra_config=True).hydra.sweeper.params
    assert scarcity["evaluation.train_malicious"] == "5,10,20,50,null"
    assert scarcity.method == "original,smote,adasyn,alchemy3,alchemy4"


@pytest.mark.parametrize("option", sorted({*options("hydra/launcher"), *PLUGIN_LAUNCHERS}))
def test_launcher_option_names_an_importable_launcher(option):
    cfg = compose_config([f"hydra/launcher={option}"], hydra_config=True)
    assert get_method(cfg.hydra.launcher._target_)


def test_unknown_option_and_group_value_are_rejected():
    with pytest.raises(Exception, match="Could not override 'nope'"):
        compose_config(["nope=1"])
    with pytest.raises(Exception, match="Could not find 'method/nope'"):
        compose_config(["method=nope"])
