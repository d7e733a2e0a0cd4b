import pytest

from tagger.config import TrainConfig
from tagger.training.schedule import (
    adam_then_sgd_schedule,
    make_optimizer,
    schedule_for,
    staged_schedule,
)


def test_staged_schedule_is_kim_2018():
    stages = staged_schedule(0.01, 0.2, 5, patience=2, max_epochs=100)
    assert [s.index for s in stages] == [0, 1, 2, 3, 4]
    for k, stage in enumerate(stages):
        assert stage.learning_rate == pytest.approx(0.01 * 0.2 ** k)
        assert stage.optimizer == "sgd" and stage.patience == 2


def test_initial_stage_skips_earlier_stages():
    stages = schedule_for(TrainConfig(initial_stage=3))
    assert [s.index for s in stages] == [3, 4]
    with pytest.raises(ValueError, match="past the last stage"):
        schedule_for(TrainConfig(initial_stage=5))


def test_adam_then_sgd_schedule():
    stages = adam_then_sgd_schedule((80, 100, 120), 200)
    assert [(s.optimizer, s.learning_rate, s.max_epochs) for s in stages] == [
        ("adam", 1e-4, 80), ("sgd", 1e-3, 20), ("sgd", 1e-4, 20), ("sgd", 1e-5, 80)]
    assert all(s.patience is None for s in stages)
    with pytest.raises(ValueError, match="must increase"):
        adam_then_sgd_schedule((80, 70, 120), 200)
    with pytest.raises(ValueError, match="takes 3 switch epochs"):
        adam_then_sgd_schedule((80, 100), 200)


def test_optimizers():
    sgd = make_optimizer(staged_schedule(0.01, 0.2, 2, 2, 10)[1], momentum=0.9)
    assert sgd.nesterov and sgd.momentum == 0.9
    assert float(sgd.learning_rate) == pytest.approx(0.002)
    adam = make_optimizer(adam_then_sgd_schedule((1, 2, 3), 4)[0])
    assert type(adam).__name__ == "Adam"
    scaled = make_optimizer(adam_then_sgd_schedule((1, 2, 3), 4)[1], mixed_precision="float16")
    assert type(scaled).__name__ == "LossScaleOptimizer"


def test_config_rejects_bad_values():
    with pytest.raises(ValueError, match="schedule"):
        TrainConfig(schedule="cosine")
    with pytest.raises(ValueError, match="batch_size"):
        TrainConfig(batch_size=0)


@pytest.mark.parametrize("field, value, valid", [
    ("lr", float("nan"), "> 0"), ("lr", float("inf"), "> 0"), ("lr", -0.01, "> 0"),
    ("lr", 0.0, "> 0"),
    ("lr_decay", 0.0, r"\(0, 1\]"), ("lr_decay", 1.5, r"\(0, 1\]"),
    ("lr_decay", float("nan"), r"\(0, 1\]"),
    ("momentum", 1.0, r"\[0, 1\)"), ("momentum", -0.1, r"\[0, 1\)"),
    ("momentum", float("nan"), r"\[0, 1\)"),
    ("patience", -1, ">= 0"), ("seed", -1, ">= 0"), ("steps_per_epoch", 0, ">= 1"),
    ("window_segments", 0, ">= 1"), ("shuffle_segments", 0, ">= 1"),
])
def test_config_states_the_valid_range_of_a_bad_number(field, value, valid):
    with pytest.raises(ValueError, match=rf"{field} \(--{field.replace('_', '-')}\) must be "
                                         rf".*{valid}, got {value!r}"):
        TrainConfig(**{field: value})


def test_config_accepts_the_ends_of_its_ranges():
    config = TrainConfig(lr=1e-9, lr_decay=1.0, momentum=0.0, patience=0, seed=0)
    assert (config.lr_decay, config.momentum) == (1.0, 0.0)
