"""The family registry: every spec is complete and agrees with its factory,
train.py's flags, demo.py, the embedding lookup and the `tags` layer's logits."""

import inspect

import numpy as np
import pytest

from tagger.cli import parser_actions
from tagger.commands import demo as demo_cli
from tagger.commands import train as train_cli
from tagger.config import SCHEDULES
from tagger.errors import UserError
from tagger.inference.engine.keras import embedding_layer_name
from tagger.models import FAMILIES, FAMILY_NAMES, MODELS, build_model, family
from tagger.models.family_spec import ANALYSES
from tagger.models.tagger_metadata import TaggerMetadata
from tagger.training.model_setup import family_spec
from tagger.training.trainer import tag_logits
from tests.checks import HANG_S


def test_registry_lists_every_family_once_by_its_module_name():
    assert set(FAMILIES) == set(FAMILY_NAMES) == set(MODELS)
    for name, spec in FAMILIES.items():
        assert spec.name == name
        assert spec.build.__name__ == f"build_{name}"
        assert MODELS[name] is spec.build
        assert spec.schedule in SCHEDULES
        assert set(spec.analyses) <= set(ANALYSES)


def test_every_family_says_its_sample_rate_in_hz():
    assert (family("samplecnn").sample_rate, family("fcn").sample_rate) == (22050, 16000)
    for spec in FAMILIES.values():
        assert spec.sample_rate == spec.preprocessor.sample_rate > 0, spec.name


def test_unknown_family_lists_the_valid_ones():
    with pytest.raises(ValueError, match="^unknown model family 'resnet'; valid: "
                                         + ", ".join(FAMILY_NAMES) + "$"):
        family("resnet")
    with pytest.raises(UserError, match="^unknown model family 'resnet'; valid: samplecnn, "):
        family_spec("resnet")


def test_flags_name_real_factory_arguments_and_train_options():
    p = train_cli.ArgumentParser()
    train_cli.add_model_flags(p)
    train_dests = {action.dest for action in parser_actions(p)}
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
    info = TaggerMetadata(model=name, model_args={}, tag_names=("a", "b", "c"),
                          sample_rate=22050, segment_length=729, window_segments=2,
                          input_kind="raw", logmel=None)
    layer = embedding_layer_name(model, info)
    assert layer == spec.embedding_layer
    assert embedding_layer_name(model) == layer  # found without the info too
    x = np.zeros((1,) + tuple(model.input.shape[1:]), np.float32)
    assert model(x).shape == (1, 3)
    x = np.random.default_rng(0).uniform(-1, 1, x.shape).astype(np.float32)
    logits = np.asarray(tag_logits(model)(x), np.float64)  # what distillation learns from
    np.testing.assert_allclose(1 / (1 + np.exp(-logits)), model(x), rtol=1e-5, atol=1e-7)


def test_train_builds_its_model_flags_from_the_specs():
    """One option per flag, declared alike by every family that takes it; its
    help names each family, what the flag is to it and its defaults (the
    flag's or the factory's), and the group lists every family's input."""
    flags = train_cli.family_flags()
    for dest, owners in flags.items():
        assert len({train_cli.declaration(declared) for _, declared in owners}) == 1, dest
    assert [spec.name for spec, _ in flags["alpha"]] == ["samplecnn"]
    p = train_cli.ArgumentParser()
    train_cli.add_model_flags(p)
    helps = {action.dest: " ".join(action.help.split()) for action in parser_actions(p)}
    assert helps["dropout"].endswith(
        "dropout before the output, in [0, 1) (default: multiscale 0.4, the others 0.5)")
    assert helps["n_channels"] == (
        "short_cnn / short_res / fcn / crnn / sample_level / sample_level_se / cnnsa / "
        "hcnn: channel unit of the blocks; musicnn: back-end channels; pons_musicnn: "
        "mid-end channels; pons_vgg: filters (default: fcn / musicnn / crnn / pons_musicnn "
        "64, the others 128)")
    assert helps["block"] == "samplecnn: block type (default: se)"
    assert helps["attention_ndim"] == "transformer: encoder width (default: from --size)"
    description = " ".join(p.format_help().split())  # the families' group's description
    for name in FAMILY_NAMES:
        assert f"{name} (" in description, name
    assert "fcn (1 x 464000 samples at 16000 Hz, 96-bin log-mel)" in description
    assert "samplecnn (1 x 59049 samples at 22050 Hz, raw waveform)" in description


@pytest.mark.slow  # starts a process
def test_specs_and_train_help_import_no_keras():
    """Every family's spec, its flags and defaults, and train.py's parser and
    --help come without Keras or TensorFlow: `python train.py --help` is quick."""
    import os
    import subprocess
    import sys

    code = ("import contextlib, io, sys\n"
            "from tagger.commands import train\n"
            "from tagger.models import FAMILY_NAMES, family\n"
            "for spec in map(family, FAMILY_NAMES):\n"
            "    defaults = [spec.default(flag.keyword) for flag in spec.flags]\n"
            "shown = io.StringIO()\n"
            "with contextlib.redirect_stdout(shown), contextlib.suppress(SystemExit):\n"
            "    train.main(['--help'])\n"
            "assert '--model' in shown.getvalue()\n"
            "print(sorted({'keras', 'tensorflow'} & set(sys.modules)))\n")
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    out = subprocess.run([sys.executable, "-c", code], cwd=root, capture_output=True,
                         text=True, timeout=HANG_S)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["[]"]


def test_a_family_registers_from_its_own_module(tmp_path, monkeypatch):
    """register_family adds a family without editing the registry: train.py
    offers it, with its flags; names are unique and match the spec."""
    import sys

    from tagger import models

    (tmp_path / "toy_family.py").write_text(
        "import dataclasses\n"
        "from tagger.models import family\n"
        "from tagger.models.family_spec import ModelFlag\n"
        "FAMILY = dataclasses.replace(\n"
        "    family('short_cnn'), name='toy',\n"
        "    flags=(ModelFlag('toy_depth', help='toy layers', metavar='N'),))\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "toy_family", raising=False)
    models.register_family("toy", "toy_family")
    try:
        assert models.FAMILY_NAMES[-1] == "toy" and family("toy").name == "toy"
        assert models.FAMILIES["toy"].build is family("short_cnn").build
        args = train_cli.parse_args(["--model", "toy", "--toy-depth", "3"])
        assert family("toy").model_args(args) == {"toy_depth": 3}
        with pytest.raises(ValueError, match="^model family 'toy' is registered already$"):
            models.register_family("toy", "toy_family")
        with pytest.raises(ValueError, match="toy_family.FAMILY is named 'toy', not 'other'"):
            models.register_family("other", "toy_family")
    finally:
        models.REGISTRY.unregister("toy")
    assert "toy" not in models.FAMILY_NAMES


def test_run_names_and_analyses_follow_the_configuration():
    samplecnn = family("samplecnn")
    assert samplecnn.run_name({}) == "samplecnn-se-multi"
    assert samplecnn.run_name({"block": "rese", "multi": False}) == "samplecnn-rese"
    assert family("transformer").run_name({"size": "student"}) == "transformer"
    assert samplecnn.block({}) == "se" and family("fcn").block({}) is None
    assert samplecnn.analyses_for({"block": "rese"}) == ("excitations",)
    assert samplecnn.analyses_for({"block": "basic"}) == ()
    assert family("sample_level_se").analyses_for({}) == ("excitations",)
    assert family("cnnsa").analyses_for({}) == ("attention",)


@pytest.mark.parametrize("name", FAMILY_NAMES)
def test_the_default_input_is_the_preprocessors_window(name):
    """Every factory builds its input through its family's preprocessor: left
    out, the window is the spec's segments of the spec's segment length."""
    from tagger.config import SEGMENT_LENGTH

    spec = family(name)
    assert spec.preprocessor.segments == spec.window_segments >= 1
    model = build_model(name, num_tags=3, **spec.tiny)
    samples = spec.window_segments * spec.segment_length
    assert model.input.shape == (None, samples)
    assert model.get_layer("waveform").name == "waveform"
    if not spec.raw_waveform:
        assert model.get_layer("log_mel").sample_rate == spec.preprocessor.sample_rate
    assert spec.segment_length == SEGMENT_LENGTH or spec.sample_rate == 16000
