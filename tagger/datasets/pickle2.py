"""Python 2 pickles: writing them as Python 2 did, reading them safely.

The MSD split files (`filtered_list_*.cP`, `msd_id_to_tag_vector.cP`,
`MSD_id_to_7D_id.pkl`, ...) were written by Python 2's cPickle: strings are
byte strings (SHORT_BINSTRING / BINSTRING opcodes) and numpy arrays refer to
`numpy.core.multiarray._reconstruct`. `dump_py2` writes such files (for the
synthetic MSD); `load_py2` reads them with an Unpickler that resolves only
the few numpy names a tag-vector pickle needs, so a pickle cannot run code.
"""

from __future__ import annotations

import io
import pickle
import struct

# Globals a Python 2 pickle of lists, dicts and numpy arrays may name.
_ALLOWED = {
    ("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
    ("numpy.core.multiarray", "scalar"), ("numpy._core.multiarray", "scalar"),
    ("numpy", "ndarray"), ("numpy", "dtype"), ("_codecs", "encode"),
}
# numpy 2 moved numpy.core to numpy._core; Python 2 pickles use the old name.
_PY2_MODULE = {"numpy._core.multiarray": "numpy.core.multiarray",
               "numpy._core.numeric": "numpy.core.numeric"}


class _Py2Pickler(pickle._Pickler):
    """Protocol 2, with str and bytes as Python 2 byte strings."""

    dispatch = pickle._Pickler.dispatch.copy()

    def _save_binstring(self, obj):
        data = obj if isinstance(obj, bytes) else obj.encode("ascii")
        if len(data) < 256:
            self.write(pickle.SHORT_BINSTRING + bytes([len(data)]) + data)
        else:
            self.write(pickle.BINSTRING + struct.pack("<i", len(data)) + data)
        self.memoize(obj)

    dispatch[bytes] = _save_binstring
    dispatch[str] = _save_binstring

    def save_global(self, obj, name=None):
        name = name or obj.__qualname__
        module = getattr(obj, "__module__", None) or pickle.whichmodule(obj, name)
        module = _PY2_MODULE.get(module, module)
        self.write(pickle.GLOBAL + module.encode() + b"\n" + name.encode() + b"\n")
        self.memoize(obj)

    dispatch[type] = save_global


def dump_py2(obj) -> bytes:
    """`obj` (lists, dicts, ints, ASCII str/bytes, numpy arrays) pickled as
    Python 2's cPickle wrote it with protocol 2."""
    buffer = io.BytesIO()
    _Py2Pickler(buffer, protocol=2).dump(obj)
    return buffer.getvalue()


class _SafeUnpickler(pickle.Unpickler):
    def find_class(self, module, name):
        if (module, name) not in _ALLOWED:
            raise pickle.UnpicklingError(f"it names {module}.{name}, which a list of "
                                         "ids or tag vectors never needs")
        import importlib

        module = {"numpy.core.multiarray": "numpy._core.multiarray"}.get(module, module)
        try:
            return getattr(importlib.import_module(module), name)
        except ImportError:  # numpy 1.x
            return getattr(importlib.import_module(module.replace("._core", ".core")), name)


def load_py2(data: bytes):
    """Unpickles a Python 2 pickle; byte strings come back as str (latin-1,
    as numpy requires for arrays). Any other class raises UnpicklingError."""
    return _SafeUnpickler(io.BytesIO(data), encoding="latin1").load()
