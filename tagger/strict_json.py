"""JSON that every parser reads: a non-finite number (NaN, an undefined
ROC-AUC; Infinity, a best score not yet set) is written as null, never as
the bare `NaN`/`Infinity` that Python's json module writes by default and
strict parsers (JavaScript, jq, Go, ...) refuse.

    dumps(obj, **kwargs)      json.dumps with non-finite numbers as null,
                              and allow_nan=False so none can slip through
    number(value, missing)    a number read back: null (None) -> `missing`
"""

from __future__ import annotations

import json
import math
import numbers


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
