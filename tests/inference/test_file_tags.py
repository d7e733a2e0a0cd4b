"""tag.py --write-tags: our tags go into each file's own metadata, the audio
never changes, other tags stay, reruns replace rather than duplicate."""

from __future__ import annotations

import os
import stat

import numpy as np
import pytest

from tagger.commands import tag as tag_cli
from tagger.inference import file_tags
from tests.checks import tone

pytest.importorskip("mutagen")

# name: (soundfile format, subtype)
FORMATS = {"a.mp3": ("MP3", "MPEG_LAYER_III"), "b.flac": ("FLAC", "PCM_16"),
           "c.ogg": ("OGG", "VORBIS"), "d.opus": ("OGG", "OPUS"), "e.wav": ("WAV", "PCM_16")}


def make(folder, name, seconds=3.0):
    import soundfile as sf

    fmt, subtype = FORMATS[name]
    rate = 48000 if subtype == "OPUS" else 22050
    sf.write(str(folder / name), tone(seconds, rate, 1, 440.0, 1), rate, format=fmt,
             subtype=subtype)
    return folder / name


def decoded(path):
    import soundfile as sf

    return sf.read(str(path), dtype="float32")[0]


def id3_end(data: bytes) -> int:
    """Where an MP3's frames start: after its ID3v2 tag, if any."""
    if data[:3] != b"ID3":
        return 0
    size = 0
    for byte in data[6:10]:
        size = (size << 7) | byte
    return 10 + size + (10 if data[5] & 0x10 else 0)


def flac_frames(data: bytes) -> int:
    """Where a FLAC's audio frames start: after its metadata blocks."""
    assert data[:4] == b"fLaC"
    at = 4
    while True:
        last, length = data[at] & 0x80, int.from_bytes(data[at + 1:at + 4], "big")
        at += 4 + length
        if last:
            return at


def run_tag(capsys, *argv):
    code = tag_cli.main([str(a) for a in argv] + ["--no-progress"])
    out, err = capsys.readouterr()
    return code, out, [line for line in err.splitlines() if line.strip()]


@pytest.fixture
def library(tmp_path):
    import mutagen

    folder = tmp_path / "lib"
    folder.mkdir()
    for name in FORMATS:
        path = make(folder, name)
        audio = mutagen.File(path)
        if audio.tags is None:
            audio.add_tags()
        if name.endswith((".mp3", ".wav")):  # a tag of the user's that must stay
            from mutagen.id3 import TIT2

            audio.tags.add(TIT2(encoding=3, text=[f"my title {name}"]))
        else:
            audio.tags["TITLE"] = [f"my title {name}"]
        audio.save()
    return folder


def title(path):
    import mutagen

    tags = mutagen.File(path).tags
    return str(tags["TIT2"].text[0]) if path.suffix in (".mp3", ".wav") else tags["TITLE"][0]


def test_tags_go_in_the_audio_stays_and_reruns_replace(cnn, library, capsys):
    import mutagen

    before = {p.name: (p.read_bytes(), decoded(p)) for p in library.iterdir()}
    code, _, err = run_tag(capsys, cnn[0], library, "--write-tags", "--write-scores",
                           "--genre", "--top-k", "3")
    assert code == 0, err
    assert "tags written into 5 file(s); 0 already held them; 0 skipped" in err
    for path in library.iterdir():
        data, samples = before[path.name]
        np.testing.assert_array_equal(decoded(path), samples)  # the audio is the same
        new = path.read_bytes()
        if path.suffix == ".mp3":
            assert new[id3_end(new):] == data[id3_end(data):]
        if path.suffix == ".flac":
            assert new[flac_frames(new):] == data[flac_frames(data):]
        kind, audio = file_tags._open(str(path))
        fields = file_tags.current_fields(kind, audio)
        assert len(fields["tagger"].split("; ")) == 3
        assert len(fields["tagger_scores"].split("; ")) == 3
        assert fields["tagger_model"] == os.path.basename(cnn[0])
        assert fields["genre"] == fields["tagger"].split("; ")[0]
        assert title(path) == f"my title {path.name}"
    assert sorted(p.name for p in library.iterdir()) == sorted(FORMATS)  # no temporaries
    # a rerun with other settings replaces our fields; none is duplicated
    code, _, err = run_tag(capsys, cnn[0], library, "--write-tags", "--top-k", "1")
    assert "tags written into 5 file(s)" in err[-1]
    code, _, err = run_tag(capsys, cnn[0], library, "--write-tags", "--top-k", "1")
    assert "tags written into 0 file(s); 5 already held them" in err[-1]
    for path in library.iterdir():
        audio = mutagen.File(path)
        if path.suffix in (".mp3", ".wav"):
            assert len(audio.tags.getall("TXXX:tagger")) == 1
            assert len(audio.tags.getall("TXXX:tagger")[0].text) == 1
        else:
            assert len(audio.tags["TAGGER"]) == 1
        kind, audio = file_tags._open(str(path))
        assert "; " not in file_tags.current_fields(kind, audio)["tagger"]


def test_dry_run_changes_nothing(cnn, library, capsys):
    before = {p.name: p.read_bytes() for p in library.iterdir()}
    code, _, err = run_tag(capsys, cnn[0], library, "--write-tags", "--dry-run")
    assert code == 0
    assert sum(line.startswith("would write into ") for line in err) == 5
    assert "nothing was changed" in err[-1]
    assert {p.name: p.read_bytes() for p in library.iterdir()} == before


def test_read_only_and_unsupported_files_are_skipped_with_a_reason(cnn, music, tmp_path,
                                                                   capsys):
    import shutil

    folder = tmp_path / "lib"
    folder.mkdir()
    locked = make(folder, "b.flac")
    os.chmod(locked, stat.S_IRUSR | stat.S_IRGRP)
    shutil.copy(music / "sub" / "e.aiff", folder / "e.aiff")
    before = locked.read_bytes()
    code, _, err = run_tag(capsys, cnn[0], folder, "--write-tags")
    assert code == 0
    assert f"tags not written into {locked}: the file is read-only" in err
    assert any(line.startswith(f"tags not written into {folder / 'e.aiff'}: writing tags "
                               "into AIFF files is not supported") for line in err), err
    assert locked.read_bytes() == before


def test_a_failure_mid_write_leaves_the_old_file(library, monkeypatch):
    path = library / "b.flac"
    before = path.read_bytes()

    def broken(kind, audio):
        with open(audio.filename, "r+b") as f:  # half the copy written, then the end
            f.truncate(100)
        raise KeyboardInterrupt

    monkeypatch.setattr(file_tags, "_save", broken)
    with pytest.raises(KeyboardInterrupt):
        file_tags.write_fields(str(path), {"tagger": "guitar", "tagger_model": "m"})
    assert path.read_bytes() == before
    assert sorted(p.name for p in library.iterdir()) == sorted(FORMATS)


def test_a_library_tagged_before_gets_its_tags_from_a_later_run(cnn, library, tmp_path,
                                                                capsys):
    db = tmp_path / "lib.sqlite"
    code, _, err = run_tag(capsys, cnn[0], library, "--db", db)
    assert err[-1].startswith(f"{db}: 5 files tagged")
    code, _, err = run_tag(capsys, cnn[0], library, "--db", db, "--write-tags", "--dry-run")
    assert sum(line.startswith("would write into ") for line in err) == 5
    code, _, err = run_tag(capsys, cnn[0], library, "--db", db, "--write-tags")
    assert "tags written into 5 file(s)" in " ".join(err)
    assert err[-1].startswith(f"{db}: 5 files tagged and stored, 0 up to date")
    code, _, err = run_tag(capsys, cnn[0], library, "--db", db, "--write-tags")
    assert err[-1].startswith(f"{db}: 0 files tagged and stored, 5 up to date")
