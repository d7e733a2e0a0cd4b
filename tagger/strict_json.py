"""JSON that every parser reads: a non-finite number (NaN, an undefined
ROC-AUC; Infinity, a best score not yet set) is written as null, never as
the bare `NaN`/`Infinity` that Python's json module writes by default and
strict parsers (JavaScript, jq, Go, ...) refuse.

    dumps(obj, **kwargs)      json.dumps with non-finite numbers as null,
                              and allow_nan=False so none can slip through
    number(value, missing)    a number read back: null (None) -> `missing`
    read_dataclass(cls, ...)  a frozen dataclass from a versioned JSON object
"""

from __future__ import annotations

import dataclasses
import json
import math
import numbers

from tagger.errors import UserError


def finite(obj):
    """`obj` with every non-finite float (NumPy's included) replaced by None,
    tuples and NumPy arrays as lists; other values as they are."""
    if isinstance(obj, dict):
        return {key: finite(value) for key, value in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [finite(value) for value in obj]
    if isinstance(obj, numbers.Real) and not isinstance(obj, (bool, numbers.Integral)):
        value = float(obj)
        return value if math.isfinite(value) else None
    if isinstance(obj, numbers.Integral) and not isinstance(obj, bool):
        return int(obj)
    if hasattr(obj, "tolist") and hasattr(obj, "dtype"):  # a NumPy array or scalar
        return finite(obj.tolist())
    return obj


def dumps(obj, **kwargs) -> str:
    """json.dumps of `finite(obj)`: non-finite numbers become null; a value
    json cannot represent is an error, never invalid JSON."""
    return json.dumps(finite(obj), allow_nan=False, **kwargs)


def number(value, missing: float = math.nan) -> float:
    """A number as read back from `dumps` output: None (a non-finite number
    written as null) gives `missing`; old files' NaN/Infinity pass through."""
    return missing if value is None else float(value)


def read_dataclass(cls, data, source: str, remedy: str, version: int):
    """The dataclass `cls` from the JSON object `data` of `source` (words
    naming the file), whose `schema_version` (1 where absent) is at most
    `version`. A field of `cls` without a default missing from `data` is a
    UserError naming `source` and the field(s), then `remedy`."""
    if not isinstance(data, dict):
        raise UserError(f"{source} is not a JSON object; {remedy}")
    found = data.get("schema_version", 1)
    if not isinstance(found, int) or found > version:
        raise UserError(f"{source} has schema version {found!r}; this version of tagger "
                        f"reads up to {version}")
    fields = dataclasses.fields(cls)
    missing = [f.name for f in fields if f.default is dataclasses.MISSING and f.name not in data]
    if missing:
        raise UserError(f"{source} lacks {', '.join(missing)}; {remedy}")
    return cls(**{f.name: data[f.name] for f in fields if f.name in data})
