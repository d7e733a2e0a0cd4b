"""build_folder.py --labels-from: tags from the folders a library is kept
in, or from the genre tags other programs wrote into its MP3, FLAC, Ogg
and WAV files (read back from the records), and one-line errors."""

import pytest

from tagger.commands import build_folder
from tagger.datasets.file_labels import tag_values
from tagger.records.info import load_info
from tagger.records.reader import clip_dataset
from tests.checks import call_main, one_line_error, tone

RATE = 16000
FLAGS = ["--sample-rate", str(RATE), "--segment-length", str(RATE // 2), "--workers", "1",
         "--no-progress", "--val-fraction", "0.2", "--test-fraction", "0.2"]
# each file and the genres written into it (None: no tag at all)
GENRES = {"rock/a.mp3": ["(17)"],  # ID3v2.3, a genre by its ID3v1 number, as old taggers wrote it
          "rock/b.mp3": ["Rock", "Drum & Bass"],  # ID3v2.4, two values (NUL-separated)
          "jazz/c.flac": ["Jazz", "Blues"],  # a Vorbis comment GENRE twice
          "jazz/d.ogg": ["Jazz "],  # a Vorbis comment GENRE, a stray space
          "jazz/e.wav": None,  # no tag
          "f.wav": ["Pop"]}  # an ID3 chunk in a WAV, directly in the root


@pytest.fixture(scope="module")
def library(tmp_path_factory):
    """Six files of 1 s, tagged with mutagen the way other programs tag them."""
    import soundfile
    from mutagen.flac import FLAC
    from mutagen.id3 import ID3, TCON
    from mutagen.oggvorbis import OggVorbis
    from mutagen.wave import WAVE

    root = tmp_path_factory.mktemp("library")
    for n, (name, genres) in enumerate(GENRES.items()):
        path = root / name
        path.parent.mkdir(exist_ok=True)
        soundfile.write(str(path), tone(1.0, RATE, 1, 220.0 + 50 * n, seed=n), RATE)
        if genres is None:
            continue
        if name.endswith(".mp3"):
            tag = ID3()
            tag.add(TCON(encoding=1 if name == "rock/a.mp3" else 3, text=genres))
            tag.save(str(path), v2_version=3 if name == "rock/a.mp3" else 4)
        elif name.endswith(".wav"):
            wave = WAVE(str(path))
            wave.add_tags()
            wave.tags.add(TCON(encoding=3, text=genres))
            wave.save()
        else:
            audio = (FLAC if name.endswith(".flac") else OggVorbis)(str(path))
            audio["GENRE"] = genres
            audio.save()
    assert ID3(str(root / "rock/a.mp3")).version[:2] == (2, 3)
    assert (root / "rock/b.mp3").read_bytes().count(b"Rock\0Drum & Bass") == 1
    return root


def records_tags(out) -> tuple:
    """(dataset_info, {path: tag vector} of the labelled splits' records)."""
    info = load_info(str(out))
    return info, {c["path"].decode(): tuple(c["tags"].astype(int))
                  for split in ("train", "val", "test")
                  for c in clip_dataset(str(out), split, info).as_numpy_iterator()}


def test_tag_values_by_one_name_in_every_format(library):
    assert {name: tag_values(str(library / name), "genre") for name in GENRES} == {
        "rock/a.mp3": ["Rock"], "rock/b.mp3": ["Rock", "Drum & Bass"],
        "jazz/c.flac": ["Jazz", "Blues"], "jazz/d.ogg": ["Jazz "], "jazz/e.wav": [],
        "f.wav": ["Pop"]}
    assert tag_values(str(library / "jazz/c.flac"), "GENRE") == ["Jazz", "Blues"]
    assert tag_values(str(library / "rock/b.mp3"), "mood") == []


def test_labels_from_genre_tags(library, tmp_path, capsys):
    out = tmp_path / "records"
    code, printed, err = call_main(build_folder.main, capsys, library, "--out-dir", out,
                                   "--labels-from", "tags:genre", *FLAGS)
    assert code == 0, err
    info, tags = records_tags(out)
    # by count (Jazz and Rock 2 files each), ties by name; values never split
    assert info.tag_names == ("Jazz", "Rock", "Blues", "Drum & Bass", "Pop")
    assert tags == {"rock/a.mp3": (0, 1, 0, 0, 0), "rock/b.mp3": (0, 1, 0, 1, 0),
                    "jazz/c.flac": (1, 0, 1, 0, 0), "jazz/d.ogg": (1, 0, 0, 0, 0),
                    "f.wav": (0, 0, 0, 0, 1)}
    assert {s: v["clips"] for s, v in info.splits.items()} == {
        "train": 3, "val": 1, "test": 1, "student": 1}  # the file without a genre
    student = list(clip_dataset(str(out), "student", info).as_numpy_iterator())
    assert [c["path"].decode() for c in student] == ["jazz/e.wav"]
    assert info.build["labels_from"] == "tags:genre"
    assert "5 tags" in printed


def test_labels_from_folders(library, tmp_path, capsys):
    out = tmp_path / "records"
    code, _, err = call_main(build_folder.main, capsys, library, "--out-dir", out,
                             "--labels-from", "folders", *FLAGS)
    assert code == 0, err
    info, tags = records_tags(out)
    assert info.tag_names == ("jazz", "rock")
    assert tags == {"rock/a.mp3": (0, 1), "rock/b.mp3": (0, 1), "jazz/c.flac": (1, 0),
                    "jazz/d.ogg": (1, 0), "jazz/e.wav": (1, 0)}
    assert info.splits["student"]["clips"] == 1  # f.wav, in no folder
    # another labels source gives other records: refused as another --labels is
    code, _, err = call_main(build_folder.main, capsys, library, "--out-dir", out,
                             "--labels-from", "tags:genre", *FLAGS)
    one_line_error(code, err, "--overwrite")
    assert load_info(str(out)).tag_names == ("jazz", "rock")


@pytest.mark.parametrize("flags, message", [
    (["--labels-from", "tag:genre"], "--labels-from must be 'folders' or 'tags:NAME' (a text "
                                     "tag of the files, e.g. tags:genre or tags:mood), got "
                                     "'tag:genre'"),
    (["--labels-from", "nothing"], "got 'nothing'"),
    (["--labels-from", "tags:"], "got 'tags:'"),
    (["--labels-from", "folders", "--labels", "tags.csv"], "both name the tags; give one"),
    (["--labels-from", "tags:mood"], "carries a 'mood' tag"),
])
def test_bad_labels_from_is_one_line(library, tmp_path, capsys, flags, message):
    out = tmp_path / "records"
    code, _, err = call_main(build_folder.main, capsys, library, "--out-dir", out, *flags,
                             *FLAGS)
    one_line_error(code, err, message)
    assert not out.exists()


def test_tag_values_of_an_m4a_and_of_moods(tmp_path):
    import soundfile
    from mutagen.flac import FLAC
    from mutagen.id3 import ID3, TMOO, TXXX
    from mutagen.mp4 import MP4, MP4FreeForm

    from tests.checks import write_m4a

    m4a = write_m4a(tmp_path / "a.m4a", tone(0.5, RATE, 1, 440.0, 0), RATE)
    audio = MP4(str(m4a))
    audio["\xa9gen"] = ["Jazz", "Soul"]
    audio["----:com.apple.iTunes:MOOD"] = [MP4FreeForm(b"Calm")]
    audio.save()
    mp3 = tmp_path / "b.mp3"
    soundfile.write(str(mp3), tone(0.5, RATE, 1, 440.0, 0), RATE)
    tag = ID3()
    tag.add(TMOO(encoding=3, text=["Happy"]))
    tag.add(TXXX(encoding=3, desc="STYLE", text=["Bebop", "Cool"]))
    tag.save(str(mp3))
    flac = tmp_path / "c.flac"
    soundfile.write(str(flac), tone(0.5, RATE, 1, 440.0, 0), RATE)
    comments = FLAC(str(flac))
    comments["mood"] = ["Sad"]
    comments.save()
    assert tag_values(str(m4a), "genre") == ["Jazz", "Soul"]
    assert tag_values(str(m4a), "mood") == ["Calm"]  # an iTunes freeform atom
    assert tag_values(str(mp3), "mood") == ["Happy"]  # TMOO, mutagen's easy 'mood'
    assert tag_values(str(mp3), "style") == ["Bebop", "Cool"]  # a TXXX frame
    assert tag_values(str(flac), "MOOD") == ["Sad"]
    assert tag_values(str(mp3), "genre") == tag_values(str(tmp_path / "none.mp3"), "x") == []
