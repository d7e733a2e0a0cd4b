"""Python 2 pickles: writing them as Python 2 did, reading them safely.

The MSD split files (`filtered_list_*.cP`, `msd_id_to_tag_vector.cP`,
`MSD_id_to_7D_id.pkl`, ...) were written by Python 2's cPickle: strings are
byte strings (SHORT_BINSTRING / BINSTRING opcodes) and numpy arrays refer to
`numpy.core.multiarray._reconstruct`. `dump_py2` writes such files (for the
synthetic MSD); `load_py2` reads them with tagger.safe_pickle's Unpickler,
which resolves only the few numpy names a tag-vector pickle needs, so a
pickle cannot run code.
"""

from __future__ import annotations

import io
import pickle
import struct

from tagger import safe_pickle

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


def load_py2(data: bytes):
    """Unpickles a Python 2 pickle of lists, dicts and numpy arrays; byte
    strings come back as str (latin-1, as numpy requires for arrays). Any
    other global raises UnpicklingError (see tagger.safe_pickle)."""
    return safe_pickle.loads(data, safe_pickle.NUMPY)
