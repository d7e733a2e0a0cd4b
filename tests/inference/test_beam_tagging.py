"""tag.py --runner direct: RunInference on Beam's DirectRunner gives the
local tag.py's scores."""

from __future__ import annotations

import json

import numpy as np
import pytest

from tagger.commands import tag as tag_cli

pytest.importorskip("apache_beam")

NAMES = ["a.wav", "short.wav", "d.mp3", "broken.mp3"]


def run_tag(capsys, *argv):
    code = tag_cli.main([str(a) for a in argv] + ["--no-progress"])
    out, err = capsys.readouterr()
    return code, out, [line for line in err.splitlines() if line.strip()]


@pytest.mark.slow
def test_direct_runner_scores_equal_the_local_ones(cnn, music, tmp_path, capsys):
    from tagger.inference.tag.config import TagConfig
    from tagger.inference.tag.run import tag

    inputs = [music / n for n in NAMES]
    out = tmp_path / "tags.jsonl"
    code, _, err = run_tag(capsys, cnn[0], *inputs, "--runner", "direct", "--out", out,
                           "--top-k", "3")
    assert code == 0 and err[-1] == f"wrote {out}: 4 files tagged on Beam's DirectRunner"
    rows = {r["path"]: r for r in map(json.loads, out.read_text().splitlines())}
    local = tag(TagConfig(model=cnn[0], inputs=tuple(map(str, inputs)), progress=False),
                log=lambda line: None)
    assert len(local.results) == 3 and set(rows) == {str(p) for p in inputs}
    for result in local.results:
        row = rows[result.path]
        assert np.max(np.abs(np.array(row["tag_scores"]) - result.clip_scores)) <= 1e-6
        assert (row["windows"], row["padded"]) == (result.windows, result.padded)
        assert len(row["tags"]) == 3
    assert "error" in rows[str(music / "broken.mp3")]
    code, _, err = run_tag(capsys, cnn[0], music / "a.wav", "--runner", "direct", "--db",
                           tmp_path / "x.sqlite", "--out", tmp_path / "y.jsonl")
    assert code == 2 and "--db applies without --runner" in err[0]
    code, _, err = run_tag(capsys, cnn[0], music / "a.wav", "--runner", "direct", "--workers",
                           "4", "--out", tmp_path / "y.jsonl")
    assert code == 2 and len(err) == 1 and "--workers applies without --runner" in err[0]
    code, _, err = run_tag(capsys, cnn[0], music / "a.wav", "--runner", "direct")
    assert code == 2 and "add --out PATH" in err[0]


@pytest.mark.slow
def test_a_name_that_is_not_utf8_is_tagged_on_beam(cnn, music, tmp_path, capsys):
    import os
    import shutil

    root = tmp_path / "lib"
    root.mkdir()
    shutil.copy(music / "a.wav", root / "a.wav")
    shutil.copy(music / "a.wav", os.fsdecode(os.path.join(os.fsencode(str(root)),
                                                           b"bad\xff.wav")))
    out = tmp_path / "tags.jsonl"
    code, _, err = run_tag(capsys, cnn[0], root, "--runner", "direct", "--out", out)
    assert code == 0, err
    rows = {r["path"]: r for r in map(json.loads, out.read_text().splitlines())}
    assert set(rows) == {f"{root}/a.wav", f"{root}/bad\\xff.wav"}
    np.testing.assert_allclose(rows[f"{root}/bad\\xff.wav"]["tag_scores"],
                               rows[f"{root}/a.wav"]["tag_scores"], atol=1e-6)
