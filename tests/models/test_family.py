"""The family registry: every spec is complete and agrees with its factory,
train.py's flags, demo.py and the embedding lookup."""

import inspect

import numpy as np
import pytest

from tagger.commands import demo as demo_cli
from tagger.commands import train as train_cli
from tagger.errors import UserError
from tagger.inference.engine.keras import embedding_layer_name
from tagger.models import FAMILIES, FAMILY_NAMES, MODELS, build_model, family
from tagger.models.family_spec import ANALYSES
from tagger.training.model_setup import family_spec


def test_registry_lists_every_family_once_by_its_module_name():
    assert set(FAMILIES) == set(FAMILY_NAMES) == set(MODELS)
    for name, spec in FAMILIES.items():
        assert spec.name == name
        assert spec.build.__name__ == f"build_{name}"
        assert MODELS[name] is spec.build
        assert spec.schedule in ("staged", "won")
        assert set(spec.analyses) <= set(ANALYSES)


def test_unknown_family_lists_the_valid_ones():
    with pytest.raises(ValueError, match="valid models: " + ", ".join(sorted(FAMILY_NAMES))):
        family("resnet")
    with pytest.raises(UserError, match="unknown model 'resnet'"):
        family_spec("resnet")


def test_flags_name_real_factory_arguments_and_train_options():
    p = train_cli.ArgumentParser()
    train_cli.add_model_flags(p)
    train_dests = {action.dest for action in p._actions}
    for spec in FAMILIES.values():
        parameters = inspect.signature(spec.build).parameters
        for flag in spec.flags:
            assert flag.dest in train_dests, (spec.name, flag.dest)
            assert flag.keyword in parameters, (spec.name, flag.keyword)
        for name in list(spec.tiny) + list(spec.demo.model_args):
            assert name in parameters, (spec.name, name)


def test_model_args_take_the_flags_given_for_the_family():
    args = train_cli.parse_args(["--model", "samplecnn", "--block", "rese", "--no-multi",
                                 "--dropout", "0.3"])
    assert family("samplecnn").model_args(args) == {
        "block": "rese", "multi": False, "alpha": 16, "width": 1.0, "weight_decay": 0.0,
        "dropout": 0.3}
    args = train_cli.parse_args(["--model", "transformer", "--size", "student"])
    assert family("transformer").model_args(args) == {"size": "student"}
    with pytest.raises(UserError, match="--block applies to --model samplecnn only "
                                             r"\(this run uses --model transformer\)"):
        train_cli.config_from_args(train_cli.parse_args(
            ["--model", "transformer", "--block", "rese"]))


def test_train_and_demo_offer_every_family_with_its_demo_setting():
    for name in FAMILY_NAMES:
        assert train_cli.parse_args(["--model", name]).model == name
        config = demo_cli.config_from_args(demo_cli.parse_args(["--model", name]))
        spec = family(name)
        assert config.model_args == spec.demo.model_args
        assert (config.batch_size, config.lr, config.epochs) == (
            spec.demo.batch_size, spec.demo.lr, spec.demo.epochs)
    with pytest.raises(SystemExit):
        train_cli.parse_args(["--model", "resnet"])


@pytest.mark.parametrize("name", FAMILY_NAMES)
def test_tiny_preset_builds_and_has_its_embedding_layer(name):
    spec = family(name)
    if spec.raw_waveform:
        model = build_model(name, num_tags=3, input_length=729, **spec.tiny)
    else:
        from tests.presets import TINY_LOGMEL

        model = build_model(name, num_tags=3, segments=2, **spec.tiny, logmel=TINY_LOGMEL)
    layer = embedding_layer_name(model, {"model": name})
    assert layer == spec.embedding_layer
    assert embedding_layer_name(model) == layer  # found without the info too
    x = np.zeros((1,) + tuple(model.input.shape[1:]), np.float32)
    assert model(x).shape == (1, 3)
