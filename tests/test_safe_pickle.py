"""A user's pickle that would run a command is refused, by every reader."""

import os
import pickle

import numpy as np
import pandas as pd
import pytest

from tagger import safe_pickle
from tagger.datasets import mtt
from tagger.datasets.msd import pickles
from tagger.errors import UserError
from tagger.interpret import excitations


class _RunsCommand:
    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


def _hostile(path, marker):
    path.write_bytes(pickle.dumps([_RunsCommand(marker)], protocol=2))
    return path


def _refused(error, path):
    message = str(error.value)
    assert "\n" not in message
    assert repr(str(path)) in message and "refused" in message
    assert "system" in message  # the global it names (posix.system or os.system)


@pytest.mark.slow
def test_build_mtt_split_list_that_runs_a_command_is_refused(tmp_path, capsys):
    from tagger.commands import build_mtt

    marker = tmp_path / "ran"
    lists = tmp_path / "lists"
    lists.mkdir()
    hostile = _hostile(lists / "train_list_pub.cP", marker)
    for name in ("valid_list_pub.cP", "test_list_pub.cP"):
        (lists / name).write_bytes(pickle.dumps(["0/a.npy"], protocol=0))
    data = tmp_path / "mtt"
    (data / "mp3").mkdir(parents=True)
    (data / mtt.ANNOTATIONS_FILE).write_text(
        '"clip_id"\t"rock"\t"mp3_path"\n"1"\t"1"\t"0/a.mp3"\n')
    code = build_mtt.main(["--data-dir", str(data), "--split", str(lists),
                           "--out-dir", str(tmp_path / "out"), "--top-k", "1"])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1
    assert repr(str(hostile)) in err and "refused" in err and "system" in err
    assert not marker.exists()


def test_msd_classic_pickles_that_run_a_command_are_refused(tmp_path):
    marker = tmp_path / "ran"
    path = _hostile(tmp_path / "filtered_list_test.cP", marker)
    with pytest.raises(UserError) as error:
        pickles.read_id_list(str(path))
    _refused(error, path)
    assert not marker.exists()


def test_excitation_table_that_runs_a_command_is_refused(tmp_path):
    marker = tmp_path / "ran"
    path = _hostile(tmp_path / "excitations.pkl", marker)
    with pytest.raises(UserError) as error:
        excitations.load_table(str(path))
    _refused(error, path)
    assert not marker.exists()


@pytest.mark.parametrize("string_storage", ["python", "pyarrow"])
def test_a_real_excitation_table_still_loads(tmp_path, string_storage):
    """Text columns pickle as a NumPy-backed StringArray without pyarrow and
    as an Arrow array with it: both load."""
    if string_storage == "pyarrow":
        pytest.importorskip("pyarrow", reason="the Arrow-backed string column needs pyarrow")
    with pd.option_context("mode.string_storage", string_storage):
        table = pd.DataFrame({"clip_id": np.arange(3, dtype=np.int64), "depth": [0, 1, 0],
                              "path": ["a.mp3", "b.mp3", "c.mp3"],
                              "ex": [np.ones(4, np.float32), np.zeros(2, np.float32),
                                     np.full(4, 0.5, np.float32)],
                              "rock": np.array([1, 0, 1], np.int8)})
    assert table["path"].array.dtype.storage == string_storage
    excitations.save_table(table, str(tmp_path / "t.pkl"))
    pd.testing.assert_frame_equal(excitations.load_table(str(tmp_path / "t.pkl")), table)


def test_a_table_that_is_not_a_dataframe_is_refused(tmp_path):
    (tmp_path / "t.pkl").write_bytes(pickle.dumps([1, 2]))
    with pytest.raises(UserError, match="holds a list, not an excitation table"):
        excitations.load_table(str(tmp_path / "t.pkl"))


def test_loads_allows_only_the_named_globals():
    array = np.arange(3, dtype=np.float32)
    assert safe_pickle.loads(pickle.dumps(["a", 1])) == ["a", 1]
    np.testing.assert_array_equal(safe_pickle.loads(pickle.dumps(array), safe_pickle.NUMPY),
                                  array)
    with pytest.raises(safe_pickle.RefusedGlobal, match="numpy"):
        safe_pickle.loads(pickle.dumps(array))  # LISTS: no numpy at all
