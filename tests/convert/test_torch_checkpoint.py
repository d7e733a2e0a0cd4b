"""The torch-free checkpoint reader (tagger.convert.torch_checkpoint):
exactly what `torch.load` returns for every release's layout (zip and the
legacy format), and a pickle that tries to run a command is refused in one
line with nothing run."""

import os
import pickle
import subprocess
import sys
import zipfile

import numpy as np
import pytest

from tagger.commands import convert_weights
from tagger.convert import torch_checkpoint
from tagger.errors import UserError
from tests.checks import HANG_S, call_main, one_line_error


class _RunsACommand:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


def write_zip_checkpoint(path, obj_pickle: bytes, storages=None):
    """The zip layout torch.save writes (torch >= 1.6), by hand."""
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("archive/data.pkl", obj_pickle)
        archive.writestr("archive/byteorder", "little")
        for key, data in (storages or {}).items():
            archive.writestr(f"archive/data/{key}", data)
        archive.writestr("archive/version", "3\n")


def write_legacy_checkpoint(path, obj_pickle: bytes):
    """The legacy layout (torch < 1.6): magic, protocol, sys info, object, keys."""
    with open(path, "wb") as file:
        for header in (torch_checkpoint.LEGACY_MAGIC, torch_checkpoint.LEGACY_PROTOCOL,
                       {"protocol_version": 1001, "little_endian": True}):
            pickle.dump(header, file, protocol=2)
        file.write(obj_pickle)
        pickle.dump([], file, protocol=2)


@pytest.mark.parametrize("layout", ["zip", "legacy"])
def test_a_pickle_that_runs_a_command_is_refused_and_nothing_runs(layout, tmp_path, capsys):
    marker = tmp_path / "ran"
    payload = pickle.dumps({"state_dict": {"w": _RunsACommand(marker)}}, protocol=2)
    path = tmp_path / "evil.ckpt"
    (write_zip_checkpoint if layout == "zip" else write_legacy_checkpoint)(path, payload)
    with pytest.raises(UserError) as caught:
        torch_checkpoint.read(path)
    message = str(caught.value)
    assert "\n" not in message and str(path) in message
    assert "system" in message and "nothing was run" in message
    out = tmp_path / "out.keras"
    code, _, err = call_main(convert_weights.main, capsys, path, "--from", "transformer",
                             "--out", out)
    one_line_error(code, err, "refused to read", "system")
    assert not marker.exists() and not out.exists()


def test_other_globals_and_broken_files_are_one_line(tmp_path):
    import builtins

    class Evaluates:
        def __reduce__(self):
            return builtins.eval, ("1 + 1",)

    path = tmp_path / "eval.pth"
    write_zip_checkpoint(path, pickle.dumps(Evaluates(), protocol=2))
    with pytest.raises(UserError, match="builtin__.eval"):
        torch_checkpoint.read(path)
    for name, data in [("text.pth", b"not a checkpoint\n"), ("empty.pth", b"")]:
        (tmp_path / name).write_bytes(data)
        with pytest.raises(UserError, match="cannot read .* as PyTorch weights"):
            torch_checkpoint.read(tmp_path / name)
    write_zip_checkpoint(tmp_path / "nostate.ckpt", pickle.dumps({"epoch": 3}, protocol=2))
    with pytest.raises(UserError, match="holds no PyTorch state dict"):
        torch_checkpoint.read_state_dict(tmp_path / "nostate.ckpt")


@pytest.mark.slow
def test_a_hand_written_zip_checkpoint_reads_without_torch(tmp_path):
    """A float32 tensor (2, 3) at storage offset 1 with transposed strides and
    Lightning-style hyper-parameters, in the opcodes torch.save writes,
    read in a process where torch cannot be imported."""
    import struct

    def text(value: str) -> bytes:  # BINUNICODE
        return b"X" + struct.pack("<I", len(value)) + value.encode()

    tensor = (b"ctorch._utils\n_rebuild_tensor_v2\n("
              b"(" + text("storage") + b"ctorch\nFloatStorage\n" + text("0") + text("cpu")
              + b"K\x07tQ"  # the persistent id: a tuple, BINPERSID
              b"K\x01K\x02K\x03\x86K\x01K\x02\x86\x89"  # offset, size, stride, False
              b"ccollections\nOrderedDict\n)RtR")
    data = (b"\x80\x02}(" + text("w") + tensor + text("hyper_parameters")
            + b"}" + text("lr") + b"G" + struct.pack(">d", 0.1) + b"su.")
    values = np.arange(7, dtype="<f4")
    path = tmp_path / "hand.ckpt"
    write_zip_checkpoint(path, data, {"0": values.tobytes()})
    script = ("import sys, json; sys.modules['torch'] = None\n"
              "from tagger.convert import torch_checkpoint as t\n"
              f"o = t.read({str(path)!r})\n"
              "print(json.dumps([o['w'].tolist(), str(o['w'].dtype), o['hyper_parameters']]))")
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                            cwd=os.path.dirname(os.path.dirname(os.path.dirname(
                                os.path.abspath(__file__)))), timeout=HANG_S)
    assert result.returncode == 0, result.stderr
    import json

    got, dtype, hyper = json.loads(result.stdout)
    expected = np.lib.stride_tricks.as_strided(values[1:], (2, 3), (4, 8))
    assert got == expected.tolist() and dtype == "float32" and hyper == {"lr": 0.1}


# --- against torch: every release's checkpoints, both layouts --------------------------

def _torch_state_dicts():
    torch = pytest.importorskip("torch")
    from tests.convert import originals

    torch.manual_seed(0)
    teacher = originals.MusicTaggingTransformer(attention_ndim=256).state_dict()
    student = originals.MusicTaggingTransformer(attention_ndim=64).state_dict()
    compact = {f"network.{k}": v for k, v in student.items()}
    compact.update({f"teacher_network.{k}": v for k, v in teacher.items()})
    released = originals.ReleasedSelfAttention().state_dict()
    extra = {"half": torch.randn(3, 2).half(), "bf16": torch.randn(4).bfloat16(),
             "strided": torch.randn(4, 6)[1:, ::2], "t": torch.randn(3, 5).t(),
             "scalar": torch.tensor(2.5), "empty": torch.zeros(0, 4),
             "flags": torch.tensor([True, False]), "step": torch.tensor(12)}
    return torch, {
        "teacher.ckpt": {"epoch": 7, "global_step": 10, "state_dict": {
            f"network.{k}": v for k, v in teacher.items()},
            "hyper_parameters": {"lr": 1e-4, "name": "teacher"}},
        "compact_student.ckpt": compact,
        "ponswon.pth": {f"module.{k}": v for k, v in released.items()},
        "kinds.pth": extra,
        # a module's own state_dict(): an OrderedDict carrying `_metadata`
        "module.pth": torch.nn.Sequential(torch.nn.Linear(3, 2),
                                          torch.nn.BatchNorm1d(2)).state_dict(),
    }


def _bytes(torch, tensor):
    if tensor.dtype == torch.bfloat16:
        tensor = tensor.view(torch.int16)
    return np.ascontiguousarray(tensor.numpy()).tobytes()


@pytest.mark.parametrize("legacy", [False, True], ids=["zip", "legacy"])
def test_reader_returns_exactly_what_torch_load_returns(legacy, tmp_path):
    torch, files = _torch_state_dicts()
    for name, obj in files.items():
        path = tmp_path / name
        torch.save(obj, path, _use_new_zipfile_serialization=not legacy)
        assert zipfile.is_zipfile(path) != legacy
        expected = torch.load(path, map_location="cpu", weights_only=True)
        got = torch_checkpoint.read(path)
        expected_state = expected.get("state_dict", expected)
        got_state = got.get("state_dict", got)
        assert list(got_state) == list(expected_state), name
        for key, tensor in expected_state.items():
            array = got_state[key]
            assert isinstance(array, np.ndarray), (name, key)
            assert str(array.dtype) == str(tensor.dtype).replace("torch.", ""), (name, key)
            assert array.shape == tuple(tensor.shape), (name, key)
            assert array.tobytes() == _bytes(torch, tensor), (name, key)
        if "hyper_parameters" in expected:
            assert got["hyper_parameters"] == expected["hyper_parameters"]
            assert got["epoch"] == 7
        assert set(torch_checkpoint.read_state_dict(path)) == set(expected_state)
