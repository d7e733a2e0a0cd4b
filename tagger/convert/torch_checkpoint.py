"""PyTorch checkpoint files read into NumPy, without PyTorch and without
running any code the file names.

`torch.save` writes a pickle whose tensors refer to raw storages kept
outside it. Two layouts, and which release uses which:

- zip (torch >= 1.6; the Music Tagging Transformer's `teacher.ckpt` and
  `compact_student.ckpt`, 2021): `<root>/data.pkl` (the object),
  `<root>/data/<key>` (one storage's raw bytes each) and `<root>/byteorder`
  ("little" or "big"; absent: little).
- legacy (torch < 1.6; `ponswon.pth` of the self-attention release, saved
  with torch 1.0.1 in 2019): pickles one after another: the magic number,
  the protocol version (1001), the system info (byte order), the object,
  the list of storage keys, then each storage in that order as an int64
  element count followed by its bytes.

The pickle is read by `tagger.safe_pickle`'s restricted unpickler: the only
globals it resolves are PyTorch's tensor rebuild functions and storage
types (stood in for by our own: nothing of torch is imported),
`collections.OrderedDict`, NumPy scalars and arrays, and the
hyper-parameter containers a Lightning checkpoint holds (`AttributeDict`,
`argparse.Namespace`, its callbacks' class names as keys). Anything else is
one UserError naming the file and the global, raised before it is called.
A tensor comes back as a C-contiguous NumPy array of its dtype (bfloat16 as
`ml_dtypes.bfloat16`).
"""

from __future__ import annotations

import argparse
import collections
import io
import os
import pickle
import zipfile

import numpy as np

from tagger import safe_pickle
from tagger.errors import UserError

LEGACY_MAGIC = 0x1950a86a20f9469cfc6c
LEGACY_PROTOCOL = 1001

_STORAGE_DTYPES = {
    "DoubleStorage": "float64", "FloatStorage": "float32", "HalfStorage": "float16",
    "BFloat16Storage": "bfloat16", "LongStorage": "int64", "IntStorage": "int32",
    "ShortStorage": "int16", "CharStorage": "int8", "ByteStorage": "uint8",
    "BoolStorage": "bool",
}


def _dtype(name: str) -> np.dtype:
    if name == "bfloat16":
        import ml_dtypes  # installed with TensorFlow

        return np.dtype(ml_dtypes.bfloat16)
    return np.dtype(name)


class _StorageType:
    """Stands in for `torch.FloatStorage` and its kin: names a dtype."""

    def __init__(self, name: str):
        self.name, self.dtype_name = name, _STORAGE_DTYPES[name]

    def __call__(self, *args, **kwargs):
        raise pickle.UnpicklingError(f"a checkpoint never calls torch.{self.name}")


class _Storage:
    """One storage: a flat array of its dtype (None while not yet read)."""

    def __init__(self, dtype: np.dtype, array=None):
        self.dtype, self.array = dtype, array


class _AttributeDict(dict):
    """Stands in for Lightning's AttributeDict (hyper-parameters)."""

    def __getattr__(self, key):
        try:
            return self[key]
        except KeyError:
            raise AttributeError(key) from None


def _rebuild_tensor(storage, storage_offset, size, stride, requires_grad=False,
                    backward_hooks=None, metadata=None):
    """torch._utils._rebuild_tensor_v2, into NumPy: the view of `storage`
    at `storage_offset` with `size` and `stride` (in elements), copied."""
    if not isinstance(storage, _Storage):
        raise pickle.UnpicklingError("a tensor rebuilt from something other than a storage")
    if storage.array is None:  # the legacy layout's first pass: storages come later
        return None
    size, stride = tuple(int(n) for n in size), tuple(int(n) for n in stride)
    array = storage.array
    if len(size) != len(stride) or storage_offset < 0:
        raise pickle.UnpicklingError("a tensor's size and stride do not fit")
    if not size:  # a scalar
        if storage_offset >= array.size:
            raise pickle.UnpicklingError("a tensor reaches past the end of its storage")
        return np.array(array[storage_offset])
    if all(size):
        last = storage_offset + sum((n - 1) * s for n, s in zip(size, stride))
        if any(s < 0 for s in stride) or last >= array.size:
            raise pickle.UnpicklingError("a tensor reaches past the end of its storage")
        view = np.lib.stride_tricks.as_strided(
            array[storage_offset:], shape=size,
            strides=tuple(s * array.itemsize for s in stride), writeable=False)
        return np.ascontiguousarray(view)
    return np.zeros(size, array.dtype)


def _rebuild_parameter(data, requires_grad=False, backward_hooks=None, *state):
    return data


SUBSTITUTES = {
    **{("torch", name): _StorageType(name) for name in _STORAGE_DTYPES},
    ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor,
    ("torch._utils", "_rebuild_parameter"): _rebuild_parameter,
    ("torch._utils", "_rebuild_parameter_with_state"): _rebuild_parameter,
    ("collections", "OrderedDict"): collections.OrderedDict,
    ("pytorch_lightning.utilities.parsing", "AttributeDict"): _AttributeDict,
    ("lightning_fabric.utilities.data", "AttributeDict"): _AttributeDict,
    ("lightning.fabric.utilities.data", "AttributeDict"): _AttributeDict,
    ("argparse", "Namespace"): argparse.Namespace,
    # Lightning < 1.5 keyed callback states by the callback's class
    **{(module, name): f"{module}.{name}" for module, name in (
        ("pytorch_lightning.callbacks.model_checkpoint", "ModelCheckpoint"),
        ("pytorch_lightning.callbacks.early_stopping", "EarlyStopping"),
        ("pytorch_lightning.callbacks.lr_monitor", "LearningRateMonitor"))},
}
ALLOWED = safe_pickle.NUMPY  # numbers in hyper-parameters and callback states


def _refused(path, error: safe_pickle.RefusedGlobal) -> UserError:
    return UserError(f"refused to read {str(path)!r}: its pickle names "
                     f"{error.module}.{error.name}, which a PyTorch weights file never needs "
                     "(a pickle can run any code it names); nothing was run")


def _unreadable(path, error) -> UserError:
    first = (str(error).splitlines() or [type(error).__name__])[0] or type(error).__name__
    return UserError(f"cannot read {str(path)!r} as PyTorch weights ({first[:120]}); "
                     "give the .pth/.ckpt file as downloaded")


def _load(file, persistent_load):
    return safe_pickle.load_stream(file, ALLOWED, "utf-8", SUBSTITUTES, persistent_load)


def _storage_id(pid):
    """(storage type, key, numel, view metadata) of a persistent id."""
    if not isinstance(pid, tuple) or not pid:
        raise pickle.UnpicklingError(f"unknown persistent id {type(pid).__name__}")
    kind = pid[0].decode("ascii") if isinstance(pid[0], bytes) else pid[0]
    if kind != "storage" or len(pid) < 5:
        raise pickle.UnpicklingError(f"unsupported persistent id {str(kind)[:40]!r}")
    storage_type, key, _location, numel = pid[1:5]
    if not isinstance(storage_type, _StorageType):
        raise pickle.UnpicklingError("a storage without a known storage type")
    view = pid[5] if len(pid) > 5 else None
    return storage_type, str(key), int(numel), view


def _read_zip(archive: zipfile.ZipFile):
    names = archive.namelist()
    pickles = [n for n in names if n.endswith("/data.pkl") or n == "data.pkl"]
    if len(pickles) != 1:
        raise pickle.UnpicklingError(f"a zip without one data.pkl ({len(pickles)} found)")
    root = pickles[0][:-len("data.pkl")]
    order = "little"
    if root + "byteorder" in names:
        order = archive.read(root + "byteorder").decode("ascii").strip()
        if order not in ("little", "big"):
            raise pickle.UnpicklingError(f"unknown byte order {order[:20]!r}")
    storages = {}

    def persistent_load(pid):
        storage_type, key, numel, _ = _storage_id(pid)
        if key not in storages:
            dtype = _dtype(storage_type.dtype_name)
            if order == "big":
                dtype = dtype.newbyteorder(">")
            raw = archive.read(f"{root}data/{key}")
            if len(raw) < numel * dtype.itemsize:
                raise pickle.UnpicklingError(f"storage {key} is shorter than its size")
            array = np.frombuffer(raw, dtype, count=len(raw) // dtype.itemsize)
            storages[key] = _Storage(dtype, array.astype(dtype.newbyteorder("=")))
        return storages[key]

    with archive.open(pickles[0]) as file:
        return _load(io.BytesIO(file.read()), persistent_load)


def _read_legacy(file):
    if _load(file, None) != LEGACY_MAGIC:
        raise pickle.UnpicklingError("not a PyTorch checkpoint (no magic number)")
    if _load(file, None) != LEGACY_PROTOCOL:
        raise pickle.UnpicklingError("an unsupported legacy protocol version")
    info = _load(file, None)
    little = info.get("little_endian", True) if isinstance(info, dict) else True
    start = file.tell()
    storages = {}  # key -> _Storage (numel, then the array)
    views = {}  # view key -> (root key, offset, size)

    def first_pass(pid):
        storage_type, key, numel, view = _storage_id(pid)
        if key not in storages:
            storages[key] = (_dtype(storage_type.dtype_name), numel)
        if view is not None:
            view_key, offset, size = view
            views[str(view_key)] = (key, int(offset), int(size))
            return _Storage(storages[key][0])
        return _Storage(storages[key][0])

    _load(file, first_pass)
    keys = _load(file, None)
    if not isinstance(keys, list) or set(map(str, keys)) != set(storages):
        raise pickle.UnpicklingError("the storage keys do not match the tensors")
    arrays = {}
    for key in map(str, keys):
        dtype, numel = storages[key]
        if not little:
            dtype = dtype.newbyteorder(">")
        count = np.frombuffer(file.read(8), "<i8" if little else ">i8")
        if count.size != 1 or int(count[0]) != numel:
            raise pickle.UnpicklingError(f"storage {key} has an unexpected size")
        raw = file.read(numel * dtype.itemsize)
        if len(raw) != numel * dtype.itemsize:
            raise pickle.UnpicklingError(f"storage {key} is cut short")
        arrays[key] = np.frombuffer(raw, dtype).astype(dtype.newbyteorder("="))
    end = file.tell()

    def second_pass(pid):
        _, key, _, view = _storage_id(pid)
        array = arrays[key]
        if view is not None:
            _, offset, size = views[str(view[0])]
            array = array[offset:offset + size]
        return _Storage(array.dtype, array)

    file.seek(start)
    loaded = _load(file, second_pass)
    file.seek(end)
    return loaded


def read(path) -> object:
    """The object `torch.save` wrote to `path`, tensors as NumPy arrays.
    UserError (one line) for a refused global or an unreadable file."""
    path = os.fspath(path)
    try:
        if zipfile.is_zipfile(path):
            with zipfile.ZipFile(path) as archive:
                return _read_zip(archive)
        with open(path, "rb") as file:
            return _read_legacy(file)
    except safe_pickle.RefusedGlobal as error:
        raise _refused(path, error) from None
    except FileNotFoundError:
        raise UserError(f"{path!r} not found") from None
    except (OSError, zipfile.BadZipFile, *safe_pickle.READ_ERRORS) as error:
        raise _unreadable(path, error) from None


def read_state_dict(path) -> dict:
    """{name: array} of a PyTorch weights file: a state dict, or a
    (Lightning) checkpoint dict holding one under `state_dict`."""
    loaded = read(path)
    if isinstance(loaded, dict) and isinstance(loaded.get("state_dict"), dict):
        loaded = loaded["state_dict"]
    if not isinstance(loaded, dict) or not loaded or not all(
            isinstance(v, np.ndarray) for v in loaded.values()):
        raise UserError(f"{str(path)!r} holds no PyTorch state dict (a mapping of names "
                        "to tensors); give the .pth/.ckpt file as downloaded")
    return {str(k): v for k, v in loaded.items()}
