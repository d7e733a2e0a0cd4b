"""strict_json: what the run files and reports are written with."""

import json
import math

import numpy as np
import pytest

from tagger import strict_json


def test_non_finite_numbers_are_null_and_the_text_is_strict_json():
    data = {"auc": float("nan"), "best": math.inf, "low": -math.inf, "n": np.int64(3),
            "scores": np.array([0.5, np.nan], np.float32), "pair": (1, np.float64(0.25)),
            "ok": True, "none": None, "name": "rock"}
    text = strict_json.dumps(data, sort_keys=True)
    assert "NaN" not in text and "Infinity" not in text
    assert json.loads(text) == {"auc": None, "best": None, "low": None, "n": 3,
                                "scores": [0.5, None], "pair": [1, 0.25], "ok": True,
                                "none": None, "name": "rock"}


def test_numbers_read_back():
    assert math.isnan(strict_json.number(None))
    assert strict_json.number(None, math.inf) == math.inf
    assert strict_json.number(0.5) == 0.5
    assert math.isinf(strict_json.number(float("inf")))  # an old file's bare Infinity


def test_what_json_cannot_write_is_an_error_not_invalid_json():
    with pytest.raises(TypeError):
        strict_json.dumps({"x": object()})
