"""tag.py --write-tags: our tags go into each file's own metadata, the audio
never changes, other tags stay, reruns replace rather than duplicate; a
link's target is tagged and the link stays; the owner, mode, times and
extended attributes stay; the copy a killed run left is removed by the next
run; the model is named with its fingerprint; only a genre tag is a genre."""

from __future__ import annotations

import os
import stat
import subprocess
import sys

import mutagen
import numpy as np
import pytest

from tagger import fileio
from tagger.audio import file_info, load_audio
from tagger.commands import tag as tag_cli
from tagger.inference.common import model_fingerprint
from tagger.inference.library import file_tags
from tests.checks import HANG_S, tone, write_m4a
from tests.presets import TAGGER_TAGS

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

# name: (soundfile format, subtype); "M4A": AAC, written with FFmpeg's encoder
FORMATS = {"a.mp3": ("MP3", "MPEG_LAYER_III"), "b.flac": ("FLAC", "PCM_16"),
           "c.ogg": ("OGG", "VORBIS"), "d.opus": ("OGG", "OPUS"), "e.wav": ("WAV", "PCM_16"),
           "f.m4a": ("M4A", "AAC")}
ID3 = (".mp3", ".wav")


def make(folder, name, seconds=3.0):
    import soundfile as sf

    fmt, subtype = FORMATS[name]
    rate = 48000 if subtype == "OPUS" else 22050
    if fmt == "M4A":
        return write_m4a(folder / name, tone(seconds, rate, 1, 440.0, 1), rate)
    sf.write(str(folder / name), tone(seconds, rate, 1, 440.0, 1), rate, format=fmt,
             subtype=subtype)
    return folder / name


def decoded(path):
    """The file's samples at its own rate, by either decoder (tagger.audio)."""
    return load_audio(str(path), file_info(str(path)).sample_rate)


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


def mp4_media(data: bytes) -> bytes:
    """The payload of an MP4's `mdat` atom: its audio."""
    at = 0
    while at < len(data):
        size, kind = int.from_bytes(data[at:at + 4], "big"), data[at + 4:at + 8]
        if kind == b"mdat":
            return data[at + 8:at + size]
        at += size
    raise AssertionError("no mdat atom")


def run_tag(capsys, *argv):
    code = tag_cli.main([str(a) for a in argv] + ["--no-progress"])
    out, err = capsys.readouterr()
    return code, out, [line for line in err.splitlines() if line.strip()]


@pytest.fixture
def library(tmp_path):
    folder = tmp_path / "lib"
    folder.mkdir()
    for name in FORMATS:
        path = make(folder, name)
        audio = mutagen.File(path)
        if audio.tags is None:
            audio.add_tags()
        if name.endswith(ID3):  # a tag of the user's that must stay
            from mutagen.id3 import TIT2

            audio.tags.add(TIT2(encoding=3, text=[f"my title {name}"]))
        elif name.endswith(".m4a"):
            audio.tags["\u00a9nam"] = [f"my title {name}"]
        else:
            audio.tags["TITLE"] = [f"my title {name}"]
        audio.save()
    return folder


def title(path):
    tags = mutagen.File(path).tags
    if path.suffix in ID3:
        return str(tags["TIT2"].text[0])
    return tags["\u00a9nam" if path.suffix == ".m4a" else "TITLE"][0]


def fields_of(path):
    kind, audio = file_tags._open(str(path))
    return file_tags.current_fields(kind, audio)


def label_of(model_path, name=None):
    """What tagger_model holds for the model at `model_path`."""
    return f"{name or 'samplecnn/cnn'} sha256:{model_fingerprint(model_path)}"


def test_tags_go_in_the_audio_stays_and_reruns_replace(cnn, library, capsys):
    from tagger.datasets.genres import genres_of

    before = {p.name: (p.read_bytes(), decoded(p)) for p in library.iterdir()}
    assert file_info(str(library / "f.m4a")).decoder == "FFmpeg"  # AAC: not libsndfile's
    code, out, err = run_tag(capsys, cnn[0], library, "--write-tags", "--write-scores",
                             "--genre", "--top-k", "3")
    assert code == 0, err
    assert "tags written into 6 file(s); 0 already held them; 0 skipped" in err
    assert "f.m4a" in out  # tagged like the others
    genres = genres_of(TAGGER_TAGS)
    assert sorted(genres) == ["classical", "electronic", "rock", "techno"]
    for path in library.iterdir():
        data, samples = before[path.name]
        np.testing.assert_array_equal(decoded(path), samples)  # the audio is the same
        new = path.read_bytes()
        if path.suffix == ".mp3":
            assert new[id3_end(new):] == data[id3_end(data):]
        if path.suffix == ".flac":
            assert new[flac_frames(new):] == data[flac_frames(data):]
        if path.suffix == ".m4a":
            assert mp4_media(new) == mp4_media(data)
        fields = fields_of(path)
        chosen = fields["tagger"].split("; ")
        assert len(chosen) == 3
        assert len(fields["tagger_scores"].split("; ")) == 3
        assert fields["tagger_model"] == label_of(cnn[0])
        # the genre: the first chosen tag that is a genre, else none at all
        first_genre = next((tag for tag in chosen if tag in genres), None)
        assert fields.get("genre") == first_genre
        assert title(path) == f"my title {path.name}"
    assert sorted(p.name for p in library.iterdir()) == sorted(FORMATS)  # no temporaries
    # a rerun with other settings replaces our fields; none is duplicated
    code, _, err = run_tag(capsys, cnn[0], library, "--write-tags", "--top-k", "1")
    assert "tags written into 6 file(s)" in err[-1]
    code, _, err = run_tag(capsys, cnn[0], library, "--write-tags", "--top-k", "1")
    assert "tags written into 0 file(s); 6 already held them" in err[-1]
    for path in library.iterdir():
        audio = mutagen.File(path)
        if path.suffix in ID3:
            assert len(audio.tags.getall("TXXX:tagger")) == 1
            assert len(audio.tags.getall("TXXX:tagger")[0].text) == 1
        elif path.suffix == ".m4a":
            assert len(audio.tags["----:org.tagger:tagger"]) == 1
        else:
            assert len(audio.tags["TAGGER"]) == 1
        assert "; " not in fields_of(path)["tagger"]


def test_dry_run_changes_nothing(cnn, library, capsys):
    before = {p.name: p.read_bytes() for p in library.iterdir()}
    code, _, err = run_tag(capsys, cnn[0], library, "--write-tags", "--dry-run")
    assert code == 0
    assert sum(line.startswith("would write into ") for line in err) == 6
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


def test_a_file_the_tag_library_cannot_save_is_skipped_and_the_others_tagged(
        cnn, library, capsys):
    damaged = write_m4a(library / "0.m4a", tone(3.0, 22050, 1, 440.0, 1), 22050)  # tagged first
    data = bytearray(damaged.read_bytes())
    at = data.find(b"stco")  # the chunk offsets: a count beyond the table, as in a damaged file
    data[at + 8:at + 12] = (10**6).to_bytes(4, "big")
    damaged.write_bytes(bytes(data))
    code, _, err = run_tag(capsys, cnn[0], library, "--write-tags")
    assert code == 0, err
    assert f"tags not written into {damaged}: cannot write its tags (MP4MetadataError: " \
           "wrong offset inside b'stco')" in err
    assert "tags written into 6 file(s); 0 already held them; 1 skipped" in err
    assert damaged.read_bytes() == bytes(data)
    assert all("tagger" in fields_of(library / name) for name in FORMATS)
    assert sorted(os.listdir(library)) == sorted([*FORMATS, "0.m4a"])  # no copy left


def test_a_file_changed_after_its_audio_was_read_is_skipped(library):
    path = library / "b.flac"
    read = os.stat(path)
    with open(path, "ab") as f:  # the rest of a copy arrives
        f.write(b"\0" * 64)
    edited = path.read_bytes()
    written = file_tags.write_fields(str(path), {"tagger": "guitar", "tagger_model": "m"},
                                     read=read)
    assert written == ("skipped", file_tags.CHANGED_SINCE_READ, None)
    assert path.read_bytes() == edited


def test_the_stamp_tells_a_file_rewritten_a_nanosecond_later(tmp_path):
    """One test of a changed file (tag.py --write-tags and the beets plugin's
    stamp): its size and modification time to the nanosecond."""
    path = tmp_path / "a.mp3"
    path.write_bytes(b"x" * 10)
    stamp = file_tags.stamp_of(os.stat(path))
    assert stamp == f"size=10 mtime_ns={os.stat(path).st_mtime_ns}"
    os.utime(path, ns=(0, os.stat(path).st_mtime_ns + 1))
    assert file_tags.stamp_of(os.stat(path)) != stamp
    read = os.stat(path)
    os.utime(path, ns=(0, read.st_mtime_ns + 1))
    assert file_tags.write_fields(str(path), {"tagger": "guitar"}, read=read) == (
        "skipped", file_tags.CHANGED_SINCE_READ, None)


def test_a_file_another_program_edits_while_its_copy_is_tagged_is_left_as_edited(
        library, monkeypatch):
    path = library / "b.flac"
    save, edited = file_tags._save, {}

    def save_while_edited_elsewhere(kind, audio):
        save(kind, audio)
        other = mutagen.File(path)  # meanwhile a tag editor saves the original
        other.tags["TITLE"] = ["edited elsewhere"]
        other.save()
        edited["bytes"] = path.read_bytes()

    monkeypatch.setattr(file_tags, "_save", save_while_edited_elsewhere)
    lines = []
    writer = file_tags.TagWriter(TAGGER_TAGS, "m", log=lines.append)
    written = writer.write(str(path), np.linspace(0, 1, len(TAGGER_TAGS)))
    assert written == ("skipped", file_tags.CHANGED_WHILE_COPIED, None)
    assert lines == [f"tags not written into {path}: {file_tags.CHANGED_WHILE_COPIED}"]
    assert path.read_bytes() == edited["bytes"] and title(path) == "edited elsewhere"
    assert sorted(p.name for p in library.iterdir()) == sorted(FORMATS)  # no copy left


def test_a_library_tagged_before_gets_its_tags_from_a_later_run(cnn, library, tmp_path,
                                                                capsys):
    db = tmp_path / "lib.sqlite"
    code, _, err = run_tag(capsys, cnn[0], library, "--db", db)
    assert err[-1].startswith(f"{db}: 6 files tagged")
    code, _, err = run_tag(capsys, cnn[0], library, "--db", db, "--write-tags", "--dry-run")
    assert sum(line.startswith("would write into ") for line in err) == 6
    code, _, err = run_tag(capsys, cnn[0], library, "--db", db, "--write-tags")
    assert "tags written into 6 file(s)" in " ".join(err)
    assert err[-1].startswith(f"{db}: 6 files tagged and stored, 0 up to date")
    code, _, err = run_tag(capsys, cnn[0], library, "--db", db, "--write-tags")
    assert err[-1].startswith(f"{db}: 0 files tagged and stored, 6 up to date")


# -- the file that is replaced: links, owner, mode, times, attributes -----------


def test_a_link_is_followed_and_stays_a_link(cnn, library, tmp_path, capsys):
    elsewhere = tmp_path / "links"
    elsewhere.mkdir()
    link = elsewhere / "link.flac"
    link.symlink_to(library / "b.flac")
    code, _, err = run_tag(capsys, cnn[0], link, "--write-tags")
    assert code == 0 and "tags written into 1 file(s)" in err[-1], err
    assert link.is_symlink() and os.readlink(link) == str(library / "b.flac")
    assert fields_of(library / "b.flac")["tagger_model"] == label_of(cnn[0])  # the song
    assert sorted(os.listdir(elsewhere)) == ["link.flac"]
    assert sorted(os.listdir(library)) == sorted(FORMATS)


def test_a_file_with_other_hard_links_is_skipped(cnn, library, capsys):
    os.link(library / "b.flac", library / "same.flac")
    before = (library / "b.flac").read_bytes()
    code, _, err = run_tag(capsys, cnn[0], library / "same.flac", "--write-tags")
    assert code == 0
    assert err[0] == (f"tags not written into {library / 'same.flac'}: the file has 1 other "
                      "hard link(s), which a tagged copy replacing it would leave untagged")
    assert (library / "b.flac").read_bytes() == before
    assert os.stat(library / "b.flac").st_nlink == 2


def xattrs_supported(path) -> bool:
    try:
        os.setxattr(path, "user.probe", b"1")
        os.removexattr(path, "user.probe")
        return True
    except OSError:
        return False


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() != 0,
                    reason="giving a file to another user (uid 4242) needs root")
def test_owner_group_mode_times_and_attributes_are_kept(cnn, library, capsys):
    path = library / "b.flac"
    os.chown(path, 4242, 4242)
    os.chmod(path, 0o640)
    os.utime(path, ns=(1_600_000_000_123_456_789, 1_500_000_000_987_654_321))
    attributes = xattrs_supported(path)
    if attributes:
        os.setxattr(path, "user.rating", b"5 stars")
    before = os.stat(path)
    code, _, err = run_tag(capsys, cnn[0], path, "--write-tags")
    assert code == 0 and "tags written into 1 file(s)" in err[-1], err
    after = os.stat(path)
    assert after.st_ino != before.st_ino  # a tagged copy replaced it ...
    assert fields_of(path)["tagger_model"] == label_of(cnn[0])
    # ... and kept everything of the file but its tags
    assert (after.st_uid, after.st_gid, stat.S_IMODE(after.st_mode)) == (4242, 4242, 0o640)
    assert after.st_mtime_ns == before.st_mtime_ns  # (decoding it read it: a new atime)
    if attributes:
        assert os.getxattr(path, "user.rating") == b"5 stars"
    times = (1_600_000_000_123_456_789, 1_500_000_000_987_654_321)
    os.utime(path, ns=times)
    assert file_tags.write_fields(str(path), {"tagger": "rock", "tagger_model": "m"})[0] \
        == "written"
    assert (os.stat(path).st_atime_ns, os.stat(path).st_mtime_ns) == times


def test_a_file_whose_owner_a_copy_cannot_keep_is_skipped(cnn, library, capsys,
                                                          monkeypatch):
    """As a user who is not root tagging another user's file (group-writable):
    the copy would be the tagger's own, so the file is left as it is."""
    def not_permitted(path, uid, gid):
        raise PermissionError(1, "Operation not permitted")

    monkeypatch.setattr(file_tags.os, "chown", not_permitted)
    path = library / "b.flac"
    before, info = path.read_bytes(), os.stat(path)
    code, _, err = run_tag(capsys, cnn[0], path, "--write-tags")
    assert code == 0
    assert err[0] == (f"tags not written into {path}: it belongs to uid {info.st_uid}, gid "
                      f"{info.st_gid}, which a tagged copy made by this user cannot keep; "
                      "tag it as its owner (or as root)")
    assert err[-1] == "tags written into 0 file(s); 0 already held them; 1 skipped"
    assert path.read_bytes() == before
    assert sorted(os.listdir(library)) == sorted(FORMATS)  # no copy left


# -- what a killed run leaves -----------------------------------------------------

KILLED_WRITER = """
import os, signal, sys
sys.path.insert(0, {root!r})
from tagger.inference.library import file_tags
file_tags._save = lambda kind, audio: os.kill(os.getpid(), signal.SIGKILL)
file_tags.write_fields(sys.argv[1], {{"tagger": "guitar", "tagger_model": "m"}})
"""


@pytest.mark.slow
def test_the_copy_a_killed_run_left_is_removed_by_the_next(cnn, library, capsys):
    path = library / "b.flac"
    before = path.read_bytes()
    done = subprocess.run([sys.executable, "-c", KILLED_WRITER.format(root=ROOT), str(path)],
                          capture_output=True, timeout=HANG_S)
    assert done.returncode == -9, done.stderr
    [left] = [n for n in os.listdir(library) if n not in FORMATS]
    assert fileio.temporary_of(left) == "b.flac" and path.read_bytes() == before
    assert fileio.temporary_writer(left)["pid"] != os.getpid()
    # what is not provably a temporary of ours whose writer is gone stays
    running = os.path.basename(fileio.temporary_path(str(library / "c.ogg")))  # this process
    other_host = f".d.opus.tagger-{os.getpid() + 10**6}-{fileio.host_digest('elsewhere')}-" \
                 "0123abcd.tmp"
    kept = [running, other_host, ".e.wav.0123456789ab.tmp", "e.wav.tmp", "a.mp3.tmp.keep"]
    for name in kept:
        (library / name).write_bytes(b"not ours to remove")
    code, _, err = run_tag(capsys, cnn[0], library / "b.flac", "--write-tags")
    assert code == 0
    assert err[0] == (f"removed 1 temporary file(s) that an interrupted run left in "
                      f"{library}: {left}")
    assert "tags written into 1 file(s)" in err[-1]
    assert sorted(os.listdir(library)) == sorted([*FORMATS, *kept])
    assert fields_of(path)["tagger"]


# -- what is recorded --------------------------------------------------------------


def test_the_model_is_recorded_by_name_and_fingerprint(cnn, library, capsys, monkeypatch):
    import tagger.pretrained

    code, _, _ = run_tag(capsys, cnn[0], library / "b.flac", "--write-tags")
    assert fields_of(library / "b.flac")["tagger_model"] == label_of(cnn[0])
    # a pretrained tagger given by its name is recorded under that name
    resolve = tagger.pretrained.resolve_model
    monkeypatch.setattr(tagger.pretrained, "resolve_model",
                        lambda model, **kw: cnn[0] if model == "msd-transformer"
                        else resolve(model, **kw))
    code, _, err = run_tag(capsys, "msd-transformer", library / "b.flac", "--write-tags")
    assert code == 0 and "tags written into 1 file(s)" in err[-1], err
    assert fields_of(library / "b.flac")["tagger_model"] == label_of(cnn[0], "msd-transformer")


def test_only_a_genre_tag_is_written_as_the_genre():
    from tagger.convert.zoo import JAMENDO_TAGS
    from tagger.datasets.genres import genres_of

    genres = genres_of(TAGGER_TAGS)  # MagnaTagATune names
    scores = np.array([0.1, 0.2, 0.9, 0.3, 0.8, 0.4, 0.5, 0.6])  # slow, strings, rock, ...

    def fields(top_k):
        return file_tags.tag_fields(scores, TAGGER_TAGS, "m", top_k=top_k, genres=genres)

    assert fields(2) == {"tagger": "slow; strings", "tagger_model": "m"}  # no genre in them
    assert fields(3)["genre"] == "rock"  # the first genre among the chosen tags
    assert fields(5)["genre"] == "rock"
    jamendo = np.zeros(len(JAMENDO_TAGS))
    jamendo[JAMENDO_TAGS.index("mood/theme---happy")] = 0.9
    jamendo[JAMENDO_TAGS.index("genre---hiphop")] = 0.8
    assert file_tags.tag_fields(jamendo, JAMENDO_TAGS, "m", top_k=2,
                                genres=genres_of(JAMENDO_TAGS))["genre"] == "hiphop"


def test_genre_with_a_model_whose_tags_hold_no_genres_is_refused():
    from tagger.errors import UserError

    with pytest.raises(UserError, match="this model's tags are of no tag set with a genre "
                                        "list .MagnaTagATune, MSD Last.fm, MTG-Jamendo.; "
                                        "leave out --genre"):
        file_tags.TagWriter(["kick", "snare", "hat"], "m", genre=True)
    with pytest.raises(UserError, match="its MagnaTagATune tags hold none"):
        file_tags.TagWriter(["guitar", "slow", "fast", "piano"], "m", genre=True)
