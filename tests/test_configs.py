"""Every config group option composes and builds what it names (CPU, Hydra's compose API)."""

from __future__ import annotations

import inspect
from importlib import resources

import pytest
from app_helpers import TINY, compose_config
from hydra.types import RunMode
from hydra.utils import get_method, instantiate
from omegaconf import OmegaConf

from alchemy_torch import Resampler, datasets, features, methods
from alchemy_torch.app.cli import paper_setting
from alchemy_torch.app.job import GROUPINGS, PROTOCOLS
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
    if option == "union":
        return ["data=union", "data.names=[flows-iot23-small,flows-ctu-sme11]"]
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


def data_of(features_option: str) -> str:
    """The data option a features option is for: the one its name starts with."""
    return next(d for d in options("data") if features_option.startswith(d))


@pytest.mark.parametrize("option", options("features"))
def test_features_option_drops_features_of_its_data_kind(option):
    cfg = compose_config([f"data={data_of(option)}", f"+features={option}"])
    full = instantiate(compose_config([f"data={data_of(option)}"]).features)
    subset = instantiate(cfg.features)  # an unknown name stops here
    assert set(subset.feature_names) == set(full.feature_names) - set(cfg.features.drop)


@pytest.mark.slow
def test_http_control_drops_what_the_audit_flags(shared_data):
    """The control's list is the audit's (experiments/README.md, Real data)."""
    drop = compose_config(["+features=http-stratosphere-flagged"]).features.drop
    ds = datasets.load("http-stratosphere", shared_data, align_time="capture")
    audit = datasets.audit(ds, features.make("http"), threshold=0.95)
    assert sorted(drop) == sorted(audit.flagged.feature)


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


#: The slides' settings (METHOD.md §3.9), typed here rather than read from
#: methods.paper_defaults (what the ${paper:} resolver calls): kind -> option, K, p_range, f
SLIDES = {
    "flows": (1, 20, (0.0, 0.98), 5.0),
    "http": (4, 20, (0.0, 0.999), 5.0),
    "dns": (4, 20, (0.0, 0.999), 5.0),
}


@pytest.mark.parametrize("kind", sorted(SLIDES))
def test_alchemy_options_carry_the_slides_settings_of_the_data_type(kind):
    option, iterations, p_range, f = SLIDES[kind]
    for pattern in (1, 2, 3, 4):
        cfg = compose_config([f"data=synthetic-{kind}", f"method=alchemy{pattern}"])
        method = instantiate(cfg.method)
        assert method.pattern == pattern
        assert isinstance(method.resampler, Resampler)
        assert method.resampler.option == option and method.resampler.iterations == iterations
        assert tuple(method.p_range) == p_range and method.f == f
    noise = instantiate(compose_config([f"data=synthetic-{kind}", "method=noise"]).method)
    assert noise.copies == iterations  # the same budget as Alchemy


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
    assert evaluation.get("protocol", "cross_validation") in PROTOCOLS
    if evaluation.get("protocol") == "transfer":
        assert evaluation.repeats >= 1 and evaluation.groups is None
        assert_binds(
            OmegaConf.create(
                {
                    "_target_": "alchemy_torch.datasets.from_files",
                    "paths": ["a.log"],
                    "label_rule": evaluation.test_label_rule,
                    "align_time": evaluation.test_align_time,
                }
            )
        )
    else:
        assert evaluation.folds >= 2 and evaluation.repeats >= 1
        assert evaluation.groups in GROUPINGS


def test_a_union_takes_the_kind_of_its_sets_and_refuses_mixed_ones():
    cfg = compose_config(data_overrides("union"))
    assert cfg.data.kind == "flows" and cfg.data.dataset.names == [
        "flows-iot23-small",
        "flows-ctu-sme11",
    ]
    mixed = compose_config(["data=union", "data.names=[flows-iot23-small,dns-stratosphere]"])
    with pytest.raises(Exception, match="sets of different kinds"):
        mixed.data.kind


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
    assert set(params.model.split(",")) == set(options("model")) - {"setnet"}  # reads records


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
