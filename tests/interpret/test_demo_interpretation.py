"""The demo's last step: excitations for SE/ReSE models, attention maps of a
test clip for the attention families, a note for the others."""

from pathlib import Path

import pytest

from tagger.demos.pipeline import DemoConfig, interpret_model
from tagger.records.reader import split_audio_files
from tests.checks import is_png
from tests.presets import TINY_SE


@pytest.mark.slow
def test_demo_writes_excitations_and_figures(se_dir, raw_records, tmp_path):
    config = DemoConfig(work_dir=str(tmp_path), model="samplecnn", model_args=dict(TINY_SE),
                        progress=False)
    lines = list(interpret_model(config, str(se_dir), "unused", raw_records[0]))
    assert (tmp_path / "excitations.pkl").stat().st_size > 0
    figures = sorted((tmp_path / "excitation_plots").glob("*.png"))
    assert len(figures) == 5 and all(is_png(p) for p in figures)
    assert str(tmp_path / "excitations.pkl") in lines[-1] and "excitation_plots" in lines[-1]
    again = list(interpret_model(config, str(se_dir), "unused", raw_records[0]))
    assert again == [f"excitations: {tmp_path / 'excitations.pkl'}, figures in "
                     f"{tmp_path / 'excitation_plots'} (already there)"]


def test_demo_maps_a_test_clip_of_an_attention_model(self_attention_model, synthetic_mtt,
                                                     raw_records, tmp_path):
    config = DemoConfig(work_dir=str(tmp_path), model="self_attention", progress=False)
    lines = list(interpret_model(config, str(self_attention_model.parent), synthetic_mtt[0],
                                 raw_records[0]))
    first_test_clip = split_audio_files(raw_records[0], f"{synthetic_mtt[0]}/mp3", "test")[0]
    assert lines[-1].startswith(f"attention maps of {first_test_clip} in ")
    assert (tmp_path / "attention_maps" / (Path(first_test_clip).stem + "_maps.json")).exists()
    figures = sorted((tmp_path / "attention_maps").glob("*.png"))
    assert len(figures) == 2 and all(is_png(p) for p in figures)


def test_demo_skips_models_without_se_or_attention(tmp_path):
    for model, args in (("multiscale", {}), ("samplecnn", {"block": "res"})):
        config = DemoConfig(work_dir=str(tmp_path), model=model, model_args=args)
        lines = list(interpret_model(config, str(tmp_path), "unused", "unused"))
        assert len(lines) == 1 and "skipped" in lines[0]
    assert not list(tmp_path.iterdir())
