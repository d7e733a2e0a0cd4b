"""Reading pickles a user hands over, without letting them run code.

Unpickling calls whatever the pickle names: `os.system`, say, with the
pickle's own argument. Every pickle that comes from a user's file (the MTT
and MSD split lists, the MSD tag vectors, an excitation table) is read here
with an Unpickler that resolves only the globals that kind of file needs;
a pickle naming anything else is refused before it runs.

    LISTS      lists, dicts, strings, numbers: no global at all
    NUMPY      + numpy arrays and scalars (Python 2 and 3 pickles)
    DATAFRAME  + a pandas DataFrame of numbers and arrays (pandas 2 and 3)
"""

from __future__ import annotations

import importlib
import io
import pickle

LISTS: frozenset = frozenset()
NUMPY: frozenset = frozenset({
    ("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
    ("numpy.core.multiarray", "scalar"), ("numpy._core.multiarray", "scalar"),
    ("numpy.core.numeric", "_frombuffer"), ("numpy._core.numeric", "_frombuffer"),
    ("numpy", "ndarray"), ("numpy", "dtype"), ("_codecs", "encode"),
})
# What `pickle.dumps(DataFrame)` names, by pandas version (classes moved to
# the `pandas` namespace in pandas 3; string columns became a string dtype,
# Arrow-backed where pyarrow is installed, a NumPy-backed StringArray where not).
DATAFRAME: frozenset = NUMPY | frozenset({
    ("builtins", "slice"),
    ("pandas", "DataFrame"), ("pandas.core.frame", "DataFrame"),
    ("pandas.core.internals.managers", "BlockManager"),
    ("pandas._libs.internals", "_unpickle_block"),
    ("pandas.core.internals.blocks", "new_block"),
    ("pandas.core.indexes.base", "_new_Index"),
    ("pandas", "Index"), ("pandas.core.indexes.base", "Index"),
    ("pandas", "RangeIndex"), ("pandas.core.indexes.range", "RangeIndex"),
    ("pandas", "StringDtype"), ("pandas.core.arrays.string_", "StringDtype"),
    ("pandas.arrays", "ArrowStringArray"),
    ("pandas.core.arrays.string_arrow", "ArrowStringArray"),
    ("pyarrow.lib", "_restore_array"), ("pyarrow.lib", "type_for_alias"),
    ("pyarrow.lib", "py_buffer"),
    ("pandas.arrays", "StringArray"), ("pandas.core.arrays.string_", "StringArray"),
    ("pandas._libs.arrays", "__pyx_unpickle_NDArrayBacked"),
})
# numpy 2 moved numpy.core to numpy._core; Python 2 pickles use the old name.
_NUMPY_CORE = {"numpy.core.multiarray": "numpy._core.multiarray",
               "numpy.core.numeric": "numpy._core.numeric"}


class RefusedGlobal(pickle.UnpicklingError):
    """The pickle names a global outside the allowed set."""

    def __init__(self, module: str, name: str):
        super().__init__(f"it names {module}.{name}, which such a file never needs")
        self.module, self.name = module, name


class _RestrictedUnpickler(pickle.Unpickler):
    def __init__(self, file, allowed: frozenset, encoding: str, substitutes=None,
                 persistent_load=None):
        super().__init__(file, encoding=encoding)
        self._allowed = allowed
        self._substitutes = substitutes or {}
        self._persistent = persistent_load

    def find_class(self, module, name):
        if (module, name) in self._substitutes:
            return self._substitutes[(module, name)]
        if (module, name) not in self._allowed:
            raise RefusedGlobal(module, name)
        module = _NUMPY_CORE.get(module, module)
        try:
            return getattr(importlib.import_module(module), name)
        except ImportError:  # numpy 1.x
            return getattr(importlib.import_module(module.replace("._core", ".core")), name)

    def persistent_load(self, pid):
        if self._persistent is None:
            raise pickle.UnpicklingError("the pickle refers to objects outside it")
        return self._persistent(pid)


def loads(data: bytes, allowed: frozenset = LISTS, encoding: str = "latin1"):
    """Unpickles `data`, resolving only the (module, name) pairs in `allowed`;
    any other raises RefusedGlobal before it is called. Python 2 byte
    strings come back as str (latin-1, as numpy requires for arrays)."""
    return _RestrictedUnpickler(io.BytesIO(data), allowed, encoding).load()


def load_stream(file, allowed: frozenset = LISTS, encoding: str = "latin1",
                substitutes: dict | None = None, persistent_load=None):
    """One pickle read from the open binary `file` (which is left at its
    end), as `loads`; `substitutes` maps (module, name) to an object of
    ours that stands in for that global (a file format's own classes,
    rebuilt without their package), and `persistent_load(pid)` resolves the
    pickle's references to data outside it (PyTorch's storages)."""
    return _RestrictedUnpickler(file, allowed, encoding, substitutes, persistent_load).load()


# What a malformed pickle raises while it is read.
READ_ERRORS = (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError,
               IndexError, KeyError, UnicodeDecodeError, ImportError)


def load_file(path: str, expected: str, allowed: frozenset = LISTS):
    """The object pickled in file `path` (local or any tf.io.gfile scheme).

    A pickle naming a global outside `allowed` is one UserError naming the
    file and the global, raised before anything runs; an unreadable one is
    a UserError naming `expected` (what the file should hold)."""
    from tagger import fileio
    from tagger.errors import UserError

    data = fileio.read_bytes(path)
    try:
        return loads(data, allowed)
    except RefusedGlobal as error:
        raise UserError(f"refused to read {str(path)!r}: its pickle names "
                        f"{error.module}.{error.name}, which {expected} never needs "
                        "(a pickle can run any code it names)") from None
    except READ_ERRORS as error:
        raise UserError(f"{str(path)!r} is not a readable pickle "
                        f"({str(error).splitlines()[0] if str(error) else type(error).__name__}); "
                        f"expected {expected}") from None
