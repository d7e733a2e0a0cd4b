"""The Python API: `from tagger import top_tags` in two lines."""

from __future__ import annotations

import os
import pathlib
import subprocess
import sys

import numpy as np
import pytest

from tagger.errors import UserError
from tests.checks import HANG_S, reference_windows
from tests.presets import TAGGER_TAGS as TAGS

ROOT = pathlib.Path(__file__).parents[2]


@pytest.mark.slow
def test_import_tagger_stays_free_of_tensorflow():
    code = ("import sys; from tagger import top_tags, clip_scores; "
            "print(sorted(m for m in ('tensorflow', 'keras') if m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          cwd=ROOT, timeout=HANG_S)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


def test_top_tags_of_one_file_and_of_a_list(cnn, music):
    from tagger import clip_scores, top_tags

    path, model = cnn
    windows, _ = reference_windows(music / "d.mp3")
    expected = model.predict(windows, verbose=0).mean(axis=0)  # (tags,)
    best = np.argsort(-expected)[:3]
    got = top_tags(music / "d.mp3", model=path, k=3)
    assert [tag for tag, _ in got] == [TAGS[i] for i in best]
    np.testing.assert_allclose([score for _, score in got], expected[best], atol=1e-5)
    names, scores = clip_scores(str(music / "d.mp3"), model=path)
    assert names == TAGS and scores.shape == (len(TAGS),)
    np.testing.assert_allclose(scores, expected, atol=1e-5)
    both = top_tags([music / "d.mp3", music / "short.wav"], model=path, k=2)
    assert len(both) == 2 and len(both[1]) == 2
    # the same tags; the scores to an ulp (d.mp3's windows share a batch with
    # short.wav's, in the order the decoder threads deliver them)
    assert [tag for tag, _ in both[0]] == [tag for tag, _ in got[:2]]
    np.testing.assert_allclose([s for _, s in both[0]], [s for _, s in got[:2]], rtol=1e-6)


def test_top_tags_errors_name_the_file(cnn, music, tmp_path):
    from tagger import top_tags

    path, _ = cnn
    with pytest.raises(UserError, match="broken.mp3: not decodable audio"):
        top_tags(music / "broken.mp3", model=path)
    with pytest.raises(UserError, match="not found"):
        top_tags(music / "a.wav", model=tmp_path / "none.keras")
    with pytest.raises(UserError, match="k must be"):
        top_tags(music / "a.wav", model=path, k=0)


def test_the_model_first_order_is_refused_with_the_call_to_write(cnn, music):
    from tagger import clip_scores, top_tags

    path, audio = cnn[0], str(music / "a.wav")
    with pytest.raises(TypeError) as caught:
        top_tags(path, audio, k=3)
    assert str(caught.value) == ("top_tags() takes the audio first and the model by keyword: "
                                 f"write top_tags({audio!r}, model={path!r})")
    with pytest.raises(TypeError, match=r"write clip_scores\('a.wav', model='msd-transformer'\)"):
        clip_scores("msd-transformer", "a.wav")


@pytest.mark.slow
def test_the_api_hides_tensorflows_start_up_lines(cnn, music):
    """A fresh process calling the API prints none of TensorFlow's start-up
    lines (absl's 'WARNING: All log messages before absl::InitializeLog()',
    oneDNN, CUDA), whichever entry point imports TensorFlow first: with a
    user's default environment (no TF_CPP_MIN_LOG_LEVEL), and with
    TF_CPP_MIN_LOG_LEVEL=2, which shows error lines, such as the failed
    cuInit of a machine without a GPU at the first operation."""
    default = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    runs = ((f"load_pretrained({cnn[0]!r})", default),
            (f"top_tags({str(music / 'a.wav')!r}, model={cnn[0]!r}, k=2)", default),
            (f"top_tags({str(music / 'a.wav')!r}, model={cnn[0]!r}, k=2)",
             {**default, "TF_CPP_MIN_LOG_LEVEL": "2"}))
    for call, env in runs:
        code = f"from tagger import load_pretrained, top_tags; {call}; print('ok')"
        done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                              cwd=ROOT, timeout=HANG_S, env=env)
        assert done.returncode == 0 and done.stdout.strip() == "ok", done.stderr
        assert done.stderr == "", (call, env.get("TF_CPP_MIN_LOG_LEVEL"), done.stderr)
