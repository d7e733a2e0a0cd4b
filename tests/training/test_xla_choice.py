"""--xla auto: a long run times its step without and with XLA once per
model and machine, keeps the faster, and trains as it would have without
the timing (training/xla_choice.py)."""

from __future__ import annotations

import json
import os
import re

import keras
import numpy as np
import pytest
import tensorflow as tf

from tagger import cache
from tagger.commands import train as train_cli
from tagger.errors import UserError
from tagger.training import xla_choice
from tagger.training.run import train
from tagger.training.trainer import make_train_function
from tests.presets import tiny_train_config

FIELDS = {"cache_version": 1, "architecture_sha256": "0" * 64, "batch": 8}
LONG = xla_choice.TIMED_FROM_STEPS


class FakeTimer:
    """Seconds per step by mode (False: without XLA, True: with it); the
    modes of each call."""

    def __init__(self, plain: float, xla: float):
        self.seconds = {False: plain, True: xla}
        self.calls = []

    def __call__(self, *modes):
        self.calls.append(modes)
        return [self.seconds[mode] for mode in modes]


def choose(setting, timer, planned=LONG, fields=FIELDS):
    return xla_choice.choose(setting, fields, planned, timer, tf.distribute.get_strategy(),
                             chief=True)


@pytest.fixture
def own_cache(monkeypatch, tmp_path):
    monkeypatch.setenv("TAGGER_HOME", str(tmp_path / "cache"))
    return tmp_path / "cache" / xla_choice.FOLDER


def test_on_and_off_are_not_timed(own_cache):
    timer = FakeTimer(1.0, 0.1)
    assert choose(True, timer) == xla_choice.XlaChoice(True, "XLA: on (--xla on)")
    assert choose(False, timer) == xla_choice.XlaChoice(False, "XLA: off (--xla off)")
    assert timer.calls == [] and not own_cache.exists()
    with pytest.raises(ValueError, match="True, False or 'auto'"):
        choose("yes", timer)


def test_a_short_stage_is_not_timed(own_cache):
    timer = FakeTimer(1.0, 0.1)
    choice = choose("auto", timer, planned=LONG - 1)
    assert not choice.compile and timer.calls == []
    assert f"a stage of {LONG - 1} steps is too short" in choice.line


def test_a_stage_quick_without_xla_times_only_that(own_cache):
    """Under TIMED_FROM_SECONDS without XLA: XLA is not compiled at all."""
    timer = FakeTimer(0.01, 0.001)
    choice = choose("auto", timer)
    assert not choice.compile and timer.calls == [(False,)]
    assert f"takes about {0.01 * LONG / 60:.0f} minutes without it" in choice.line
    assert not own_cache.exists()


@pytest.mark.parametrize("plain, xla, compiled", [(2.0, 1.0, True), (2.0, 1.95, False),
                                                  (1.0, 3.0, False)])
def test_the_faster_is_chosen_and_kept(own_cache, plain, xla, compiled):
    timer = FakeTimer(plain, xla)
    first = choose("auto", timer)
    assert first.compile is compiled and timer.calls == [(False,), (False, True)]
    state = "on" if compiled else "off"
    assert first.line == (f"XLA: {state} (a training step takes {plain * 1e3:.0f} ms without "
                          f"XLA and {xla * 1e3:.0f} ms with it on this machine, timed now; "
                          "--xla on or off decides instead)")
    entry, = own_cache.iterdir()
    saved = json.loads(entry.read_text())
    assert (saved["plain"], saved["xla"]) == (plain, xla)
    assert {k: v for k, v in saved.items() if k in FIELDS} == FIELDS

    again = FakeTimer(plain, xla)
    second = choose("auto", again)
    assert second.compile is compiled and again.calls == []  # read, not timed
    assert re.fullmatch(rf"XLA: {state} \(a training step takes \d+ ms without XLA and \d+ ms "
                        r"with it on this machine, timed \d{4}-\d\d-\d\d \d\d:\d\d UTC, read "
                        r"from the cache; --xla on or off decides instead\)", second.line)
    other = FakeTimer(plain, xla)  # another model: its own entry
    choose("auto", other, fields={**FIELDS, "architecture_sha256": "1" * 64})
    assert other.calls == [(False,), (False, True)] and len(list(own_cache.iterdir())) == 2


def test_a_step_xla_cannot_compile_runs_without_it(own_cache):
    class NoXla(FakeTimer):
        def __call__(self, *modes):
            if True in modes:
                raise tf.errors.InvalidArgumentError(None, None, "Detected unsupported "
                                                     "operations when trying to compile\nmore")
            return super().__call__(*modes)

    choice = choose("auto", NoXla(2.0, 1.0))
    assert choice == xla_choice.XlaChoice(False, "XLA: off (the step does not compile with "
                                                 "XLA: Detected unsupported operations when "
                                                 "trying to compile)")
    assert not own_cache.exists()


@pytest.mark.parametrize("damage", [
    lambda text: text[:len(text) // 2],  # truncated
    lambda text: text.replace('"xla": 1.0', '"xla": -1.0'),  # not a timing
    lambda text: text.replace('"batch": 8', '"batch": 9'),  # another key's
])
def test_a_damaged_entry_is_timed_again(own_cache, damage):
    choose("auto", FakeTimer(2.0, 1.0))
    entry, = own_cache.iterdir()
    entry.write_text(damage(entry.read_text()))
    timer = FakeTimer(2.0, 1.0)
    assert choose("auto", timer).compile and timer.calls == [(False,), (False, True)]
    assert json.loads(entry.read_text())["xla"] == 1.0  # rewritten


def test_an_unwritable_cache_is_one_warning(monkeypatch, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    monkeypatch.setenv("TAGGER_HOME", str(blocker))
    choice = choose("auto", FakeTimer(2.0, 1.0))
    assert choice.compile
    line, warning = choice.line.splitlines()
    assert line.startswith("XLA: on (") and warning.startswith(
        "warning: the XLA timing was not kept in ") and "the next run times it again" in warning
    assert cache.CACHE_ADVICE in warning


def test_the_step_timer_times_both_and_puts_the_weights_back():
    """A real step, with and without XLA: both timed, both trained the
    model (the optimizer counted their steps) and the weights, moving
    statistics and dropout seed are as they were before."""
    strategy = tf.distribute.get_strategy()
    keras.utils.set_random_seed(1)
    model = keras.Sequential([keras.Input((6,)), keras.layers.Dense(5),
                              keras.layers.BatchNormalization(), keras.layers.Dropout(0.5),
                              keras.layers.Dense(3, activation="sigmoid", name="tags")])
    rng = np.random.default_rng(0)
    data = tf.data.Dataset.from_tensors((rng.normal(size=(8, 6)).astype("float32"),
                                         (rng.random((8, 3)) > 0.5).astype("float32")))
    before = [v.numpy().copy() for v in model.variables]

    def optimizer():
        sgd = keras.optimizers.SGD(0.5)
        sgd.build(model.trainable_variables)
        return sgd

    timer = xla_choice.StepTimer(
        lambda jit, opt: make_train_function(model, opt, strategy, 8, jit), optimizer,
        lambda: iter(data.repeat()), model.variables, steps=2, rounds=1)
    plain, xla = timer(False, True)
    assert plain > 0 and xla > 0
    assert int(timer._optimizer.iterations) == 8  # (warm-up + 1 round) x 2 steps x 2 modes
    for variable, value in zip(model.variables, before):
        np.testing.assert_array_equal(variable.numpy(), value, err_msg=variable.path)
    plain, = timer(False)  # traced once: timed again at once
    assert plain > 0 and int(timer._optimizer.iterations) == 12


def test_flags(tmp_path):
    def setting(*flags):
        return train_cli.config_from_args(train_cli.parse_args(["--data-dir", "d", *flags]))

    assert setting().jit_compile == "auto"
    assert setting("--xla", "on").jit_compile is True
    assert setting("--jit-compile").jit_compile is True  # the former name
    assert setting("--jit-compile", "--xla", "on").jit_compile is True
    assert setting("--xla", "off").jit_compile is False
    with pytest.raises(UserError, match=r"--jit-compile is --xla on, but --xla off is given"):
        setting("--jit-compile", "--xla", "off")
    with pytest.raises(ValueError, match="jit_compile must be True, False or 'auto'"):
        tiny_train_config("d", tmp_path, jit_compile="sometimes")


@pytest.mark.slow
def test_a_timed_run_trains_as_an_untimed_one(raw_records, tmp_path, monkeypatch, capsys):
    """A run that times its step (without XLA: it is not long enough to
    compile it) and one that does not time it train the same weights."""
    monkeypatch.setenv("TAGGER_HOME", str(tmp_path / "cache"))
    monkeypatch.setattr(xla_choice, "TIMED_FROM_SECONDS", float("inf"))
    weights = []
    for name, timed_from, said in (("timed", 1, "minutes without it"),
                                   ("untimed", 10**9, "steps is too short")):
        monkeypatch.setattr(xla_choice, "TIMED_FROM_STEPS", timed_from)
        metrics = train(tiny_train_config(raw_records[0], tmp_path, run_name=name,
                                          num_stages=1, validation_steps=1,
                                          evaluate_test=False))
        weights.append(keras.saving.load_model(os.path.join(metrics["run_dir"],
                                                            "model.keras")).get_weights())
        lines = [line for line in capsys.readouterr().out.splitlines() if "XLA" in line]
        assert len(lines) == 1 and lines[0].startswith("XLA: off (") and said in lines[0]
    for timed, untimed in zip(*weights):
        np.testing.assert_array_equal(timed, untimed)
