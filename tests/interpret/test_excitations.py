"""extract_excitations.py and tagger.interpret.excitations on a tiny SE model."""

import json
import shutil
import subprocess
import sys

import keras
import numpy as np
import pandas as pd
import pytest

from tagger.commands import extract_excitations as cli
from tagger.errors import UserError
from tagger.interpret import excitations as ex
from tagger.interpret.excitation_run import ExcitationConfig, run_excitations
from tagger.interpret.plots import write_excitation_plots
from tagger.models.samplecnn import build_samplecnn, num_blocks_for
from tagger.records.reader import clip_dataset, clip_labels
from tests.checks import ROOT as ROOT_DIR
from tests.checks import call_main, is_png, one_line_error


def test_table_rows_columns_and_values(se_table, raw_records, se_dir):
    records, info = raw_records
    model = keras.models.load_model(se_dir / "model.keras")
    depths = num_blocks_for(59049)
    clip_ids, labels = clip_labels(records, "test", info)
    assert len(clip_ids) > 0
    assert list(se_table.columns) == ["clip_id", "depth", "ex"] + list(info.tag_names)
    assert len(se_table) == len(clip_ids) * depths
    assert list(se_table.clip_id) == list(np.repeat(clip_ids, depths))
    assert list(se_table.depth) == list(range(depths)) * len(clip_ids)
    for depth in range(depths):
        channels = model.get_layer(f"block{depth}_se_excite").output.shape[-1]
        vectors = se_table.loc[se_table.depth == depth, "ex"]
        assert all(v.shape == (channels,) and v.dtype == np.float32 for v in vectors)
        values = np.stack(vectors.to_list())
        assert (values > 0).all() and (values < 1).all()
    tags = se_table.loc[se_table.depth == 0, list(info.tag_names)].to_numpy()
    assert set(np.unique(tags)) <= {0, 1}
    np.testing.assert_array_equal(tags, labels.astype(int))


def test_clip_mean_equals_a_manual_per_segment_computation(se_table, se_dir, raw_records):
    records, info = raw_records
    model = keras.models.load_model(se_dir / "model.keras")
    clip = next(iter(clip_dataset(records, "test", info).skip(1).take(1)))
    segments = clip["segments"].numpy()  # (segments, 59049)
    assert len(segments) == 2
    rows = se_table[se_table.clip_id == int(clip["clip_id"])]
    for depth in (0, 4, 8):
        layer = keras.Model(model.input, model.get_layer(f"block{depth}_se_excite").output)
        per_segment = layer.predict(segments, verbose=0)  # (segments, C)
        expected = per_segment.mean(axis=0)
        np.testing.assert_allclose(rows.loc[rows.depth == depth, "ex"].iloc[0], expected,
                                   rtol=1e-5, atol=1e-6)


def test_keras_and_hdf5_give_the_same_table(se_table, se_dir, raw_records, tmp_path):
    records, _ = raw_records
    out = tmp_path / "sub" / "from_hdf5.pkl"
    lines = list(run_excitations(ExcitationConfig(
        model_path=str(se_dir / "model.hdf5"), data_dir=records, out=str(out),
        batch_size=3, progress=False)))
    assert "9 SE blocks" in lines[0] and str(out) in lines[0]
    table = pd.read_pickle(out)
    pd.testing.assert_frame_equal(table.drop(columns="ex"), se_table.drop(columns="ex"))
    np.testing.assert_allclose(np.concatenate(table.ex.to_list()),
                               np.concatenate(se_table.ex.to_list()), atol=1e-6)


def test_analysis_helpers(se_table):
    present = ex.present_tags(se_table)
    means = ex.tag_excitations(se_table, 0)
    assert list(means.index) == present
    first = se_table[se_table.depth == 0]
    tag = present[0]
    expected = np.mean(np.stack(first.loc[first[tag] == 1, "ex"].to_list()), axis=0)
    np.testing.assert_allclose(means.loc[tag].to_numpy(), expected, rtol=1e-6)
    order = ex.channel_order(means)
    assert np.all(np.diff(means.to_numpy().mean(axis=0)[order]) >= 0)
    spread = ex.tag_spread(se_table)
    assert list(spread.index) == list(range(9))
    assert spread.loc[3] == pytest.approx(ex.tag_excitations(se_table, 3).to_numpy()
                                          .std(axis=0).mean())
    assert ex.default_depths(se_table) == [0, 4, 8]
    compare = ex.default_compare_tags(se_table)
    expected = [next(t for t in group if t in present) for group in ex.COMPARE_GROUPS
                if any(t in present for t in group)]
    assert compare == expected and compare


def test_plots_are_png_files(se_table, tmp_path):
    paths = write_excitation_plots(se_table, str(tmp_path / "plots"), depths=[0, 8],
                                   compare_tags=None)
    names = [p.rsplit("/", 1)[-1] for p in paths]
    assert names == ["excitations_depth0.png", "excitations_depth8.png",
                     "excitations_compare_depth0.png", "excitation_spread.png"]
    assert all(is_png(p) for p in paths)
    from tagger.interpret.excitation_run import is_our_figure

    assert all(is_our_figure(p) for p in paths)  # a rerun may replace them
    (tmp_path / "mine.png").write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(64))
    assert not is_our_figure(str(tmp_path / "mine.png"))


def test_table_and_plots_go_to_any_gfile_path(se_table):
    import tensorflow as tf

    ex.save_table(se_table, "ram://excitations/table.pkl")
    pd.testing.assert_frame_equal(ex.load_table("ram://excitations/table.pkl"), se_table)
    paths = write_excitation_plots(se_table, "ram://excitations/plots", depths=[8])
    assert all(tf.io.gfile.exists(p) for p in paths) and len(paths) == 3


def test_se_layers_found_by_name_for_any_depth():
    model = build_samplecnn(num_tags=3, block="rese", alpha=2, width=1 / 16,
                            input_length=3 ** 5)
    names = ex.excite_layer_names(model)
    assert names == [f"block{i}_se_excite" for i in range(4)]
    outputs = ex.excitation_model(model).outputs
    assert [o.shape[-1] for o in outputs] == [16, 16, 16, 32]


def run_cli(capsys, *argv):
    return call_main(cli.main, capsys, *argv)


def test_cli_writes_table_and_plots(se_dir, raw_records, tmp_path, capsys):
    records, _ = raw_records
    code, out, err = run_cli(capsys, se_dir / "model.keras", "--data-dir", records,
                             "--out", tmp_path / "ex.pkl", "--plots", tmp_path / "plots",
                             "--depths", "1,7", "--compare-tags", "classical,techno",
                             "--batch-size", "5", "--no-progress")
    assert code == 0, err
    assert (tmp_path / "ex.pkl").exists() and "plots:" in out
    pngs = sorted(p.name for p in (tmp_path / "plots").iterdir())
    assert pngs == ["excitation_spread.png", "excitations_compare_depth0.png",
                    "excitations_depth1.png", "excitations_depth7.png"]


def test_model_without_se_blocks(res_model, raw_records, tmp_path, capsys):
    code, _, err = run_cli(capsys, res_model, "--data-dir", raw_records[0],
                           "--out", tmp_path / "x.pkl")
    one_line_error(code, err, "has no SE blocks (block type res)", "samplecnn_res_multi",
                   "--block se")
    assert not (tmp_path / "x.pkl").exists()


def test_user_errors(se_dir, se_table, raw_records, tmp_path, capsys):
    records, info = raw_records
    model = se_dir / "model.keras"
    code, _, err = run_cli(capsys, tmp_path / "missing.keras", "--data-dir", records)
    one_line_error(code, err, "not found")
    code, _, err = run_cli(capsys, model, "--data-dir", tmp_path)
    one_line_error(code, err, "dataset_info.json")
    code, _, err = run_cli(capsys, model, "--data-dir", records, "--out", tmp_path / "a.pkl",
                           "--plots", tmp_path / "p", "--depths", "0,9")
    one_line_error(code, err, "depth(s) [9] out of range", "0..8")
    code, _, err = run_cli(capsys, model, "--data-dir", records, "--out", tmp_path / "a.pkl",
                           "--plots", tmp_path / "p", "--compare-tags", "classical,polka")
    one_line_error(code, err, "unknown tag(s) ['polka']")
    absent = next(t for t in info.tag_names if t not in ex.present_tags(se_table))
    code, _, err = run_cli(capsys, model, "--data-dir", records, "--out", tmp_path / "a.pkl",
                           "--plots", tmp_path / "p", "--compare-tags", absent,
                           "--no-progress")
    one_line_error(code, err, f"tag(s) ['{absent}'] have no positive clip")
    code, _, err = run_cli(capsys, model, "--depths", "one")
    one_line_error(code, err, "comma-separated integers")
    code, _, err = run_cli(capsys, model, "--data-dir", records, "--depths", "0",
                           "--compare-tags", "classical")
    one_line_error(code, err, "--depths, --compare-tags apply with --plots DIR only")
    for plots in (tmp_path / "a.pkl", tmp_path / "ex.txt"):  # --out's file, another file
        (tmp_path / "ex.txt").write_text("mine")
        code, _, err = run_cli(capsys, model, "--data-dir", records, "--out", tmp_path / "a.pkl",
                               "--plots", plots)
        one_line_error(code, err, "--plots", "folder")
    mine = tmp_path / "p" / "excitation_spread.png"  # a user's file of a figure's name
    mine.parent.mkdir()
    mine.write_bytes(b"\x89PNG\r\n\x1a\n mine")
    code, _, err = run_cli(capsys, model, "--data-dir", records, "--out", tmp_path / "a.pkl",
                           "--plots", mine.parent)
    one_line_error(code, err, "is not a figure of ours", "--overwrite")
    assert mine.read_bytes() == b"\x89PNG\r\n\x1a\n mine"
    assert (tmp_path / "ex.txt").read_text() == "mine"
    # A dataset whose tags do not match the model's (same count, other order).
    other = tmp_path / "reordered"
    shutil.copytree(records, other)
    changed = dict(info.to_json(), tag_names=list(reversed(info.tag_names)))
    (other / "dataset_info.json").write_text(json.dumps(changed))
    code, _, err = run_cli(capsys, model, "--data-dir", other)
    one_line_error(code, err, "tag names differ")
    with pytest.raises(UserError, match="no SE blocks"):
        ex.excite_layer_names(keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)]))


@pytest.mark.slow  # a fresh interpreter: TensorFlow's start-up dominates
def test_real_command_line(se_dir, raw_records, tmp_path):
    records, _ = raw_records
    result = subprocess.run(
        [sys.executable, str(ROOT_DIR / "extract_excitations.py"), str(se_dir / "model.hdf5"),
         "--data-dir", records, "--out", str(tmp_path / "ex.pkl"), "--plots",
         str(tmp_path / "plots"), "--no-progress"],
        capture_output=True, text=True, cwd=ROOT_DIR)
    assert result.returncode == 0, result.stderr
    assert "saved to" in result.stdout and "plots:" in result.stdout
    table = pd.read_pickle(tmp_path / "ex.pkl")
    assert table.depth.nunique() == 9
    assert len(list((tmp_path / "plots").glob("*.png"))) == 5


def test_depth_figure_names_every_tag_as_a_heat_map_row(se_table):
    from tagger.interpret.excitations import channel_order, present_tags, tag_excitations
    from tagger.interpret.plots import plot_tag_excitation_map

    tags = present_tags(se_table)
    figure = plot_tag_excitation_map(se_table, 8)
    left, right = figure.axes[:2]
    for ax in (left, right):  # every tag readable by name, in the table's order
        assert [label.get_text() for label in ax.get_yticklabels()] == tags
    means = tag_excitations(se_table, 8).to_numpy()
    means = means[:, channel_order(tag_excitations(se_table, 8))]
    shown = left.get_images()[0].get_array()
    np.testing.assert_allclose(shown, means, rtol=1e-6)  # (tags, channels)
    np.testing.assert_allclose(right.get_images()[0].get_array(),
                               means - means.mean(axis=0), atol=1e-6)
    assert len(left.get_lines()) == 0  # no curves to tell apart
