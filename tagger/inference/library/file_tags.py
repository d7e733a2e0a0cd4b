"""Tags written into the audio files' own metadata (tag.py --write-tags), with
mutagen, where music players and library managers read them.

- MP3 and WAV: ID3v2 (in WAV, its `id3 ` chunk): `TXXX:tagger`,
  `TXXX:tagger_scores`, `TXXX:tagger_model`; `TCON` with the genre.
- FLAC, Ogg Vorbis, Ogg Opus: Vorbis comments `TAGGER`, `TAGGER_SCORES`,
  `TAGGER_MODEL`; `GENRE`.
- M4A/MP4: freeform atoms `----:org.tagger:tagger`, `...:tagger_scores`,
  `...:tagger_model`; `\u00a9gen`.

`tagger` holds the selected tags joined by "; " (highest score first),
`tagger_scores` their scores in the same order (with `scores`),
`tagger_model` the model's name and fingerprint (`model_label`). The genre
(when asked) is the highest-scoring selected tag that is a genre of the
model's tag set (`tagger.datasets.genres`), and is left alone when none
is. Only these fields are set, and a rerun replaces them, never adds a
second copy. Every other tag in the file is kept as it was: in an MP3 or
WAV every other byte of the ID3v2 tag (its frames, of any size and ID, its
header's version and flags, its extended header and footer: the tag is
written by `id3_frames`, not by mutagen; a new tag is v2.4) and all
outside it (an MP3's end: ID3v1, `TAG+`, APEv2); every other Vorbis
comment in its order, the vendor string and a FLAC's other metadata blocks
(its padding block is resized); every other atom under an MP4's `ilst`,
covers included (in mutagen's order of atoms).

The audio data is never touched: only the tag region is rewritten (the
ID3 block at the start of an MP3, the metadata blocks of a FLAC, the
comment packets of an Ogg stream, the `id3 ` chunk of a WAV, the `moov`
atom of an MP4). Each file is written by copying it to a temporary name in
its folder, tagging the copy, flushing it to the disk and renaming it over
the file (`fileio.replacing`, which flushes the folder too): a run killed
at any moment, or a power cut, leaves the old file or the new one, and
the next run removes the copy a killed run left
(`folder_lock.remove_stale_temporaries`). Just before the rename the file
is checked again: one that another program changed meanwhile (its size,
modification or change time, or inode moved) is left as that program
wrote it, and skipped with the reason. The copy keeps the file's owner,
group, permission bits, access and modification times and extended
attributes; a file whose owner, group or attributes the copy cannot keep
(another user's, tagged by someone who is not root) is skipped with a
reason. A symbolic link is followed: the file it points to is tagged and
the link stays a link. A file with other hard links is skipped (the copy
would part it from them), as are a read-only file (or folder), a format
without a tag writer here, an ID3v2 tag whose frames cannot be told apart,
a WAV whose last chunk runs past the RIFF's end (a stream's data size
0xFFFFFFFF: a tag after it would be played as audio), one whose sizes are
unfinished (a recording stopped before it closed the file) or that lacks
a pad byte before its audio (`id3_frames`) and a file the tag
library fails to write (a damaged one: mutagen's error is the reason); so
is a file whose size or modification time changed after its audio was
read (its scores may not be its own).
"""

from __future__ import annotations

import os
import shutil
import stat
from typing import NamedTuple

from tagger import fileio, folder_lock
from tagger.inference.library import id3_frames
from tagger.inference.outputs import select_tags

FIELD = "tagger"
SCORES_FIELD = "tagger_scores"
MODEL_FIELD = "tagger_model"
MP4_PREFIX = "----:org.tagger:"
SEPARATOR = "; "
CHANGED_SINCE_READ = ("it changed after its audio was read, so its scores may not be its "
                      "own; the next run tags it again")
CHANGED_WHILE_COPIED = ("another program changed it while its tagged copy was made; left as "
                        "that program wrote it, the next run tags it again")


def model_label(name: str, fingerprint: str | None) -> str:
    """What `tagger_model` holds: the model's name (a pretrained name, or
    `family/name` of a model file) and the SHA-256 of its file, the results
    database's fingerprint (`common.model_fingerprint`), so files tagged
    by two versions of a model tell them apart."""
    return name if fingerprint is None else f"{name} sha256:{fingerprint}"


def tag_fields(scores, tag_names, model: str, top_k=None, threshold=None,
               with_scores: bool = False, genres: dict | None = None) -> dict:
    """Our fields for one file: {"tagger", "tagger_model"[, "tagger_scores"]
    [, "genre"]} as strings. `genres` ({tag: genre}, `genres_of`): the
    highest-scoring selected tag among them is the genre; none, no genre."""
    chosen = select_tags(scores, tag_names, top_k, threshold)
    fields = {FIELD: SEPARATOR.join(tag for tag, _ in chosen), MODEL_FIELD: model}
    if with_scores:
        fields[SCORES_FIELD] = SEPARATOR.join(f"{score:.3f}" for _, score in chosen)
    genre = next((genres[tag] for tag, _ in chosen if tag in (genres or {})), None)
    if genre is not None:
        fields["genre"] = genre
    return fields


class _ID3(NamedTuple):
    """An MP3's or WAV's ID3v2 tag (`id3_frames`): the file, the tag and
    where it is, our fields as it holds them, and those to write (`_set`)."""

    filename: str
    tag: id3_frames.Tag
    place: id3_frames.Place
    current: dict
    fields: dict


def _open(path: str):
    """(kind, the file's tags) for a format we write, else (None, reason)."""
    import mutagen
    from mutagen.flac import FLAC
    from mutagen.mp3 import MP3
    from mutagen.mp4 import MP4
    from mutagen.oggopus import OggOpus
    from mutagen.oggvorbis import OggVorbis
    from mutagen.wave import WAVE

    try:
        audio = mutagen.File(path)
        if isinstance(audio, (MP3, WAVE)):
            return "id3", _id3(path, isinstance(audio, WAVE))
    except id3_frames.UnreadableTag as error:
        return None, str(error)
    except Exception as error:  # mutagen.MutagenError and damaged headers
        return None, f"cannot read its tags ({type(error).__name__})"
    kinds = ((FLAC, "vorbis"), (OggVorbis, "vorbis"), (OggOpus, "vorbis"), (MP4, "mp4"))
    for cls, kind in kinds:
        if isinstance(audio, cls):
            return kind, audio
    name = type(audio).__name__ if audio is not None else "an unknown format"
    return None, f"writing tags into {name} files is not supported (MP3, WAV, FLAC, Ogg " \
                 "Vorbis/Opus and M4A are)"


def _id3(path: str, wave: bool) -> _ID3:
    """The ID3v2 tag of an MP3 (`wave`: WAV), with our fields as it holds them."""
    tag, place = id3_frames.read(path, wave)
    current = {}
    fields = {_id3_key(field): field for field in (FIELD, SCORES_FIELD, MODEL_FIELD, "genre")}
    for frame in tag.frames:
        read = id3_frames.decoded(tag, frame)
        if read is not None and read.HashKey in fields and read.text:
            current.setdefault(fields[read.HashKey], str(read.text[0]))  # the first copy
    return _ID3(path, tag, place, current, {})


def _id3_key(field: str) -> str:
    """mutagen's key of the ID3 frame of one of our fields."""
    return "TCON" if field == "genre" else f"TXXX:{field}"


def current_fields(kind: str, audio) -> dict:
    """Our fields as they are in the file now (absent ones left out)."""
    if kind == "id3":
        return dict(audio.current)
    tags, found = audio.tags, {}
    if tags is None:
        return found
    for field in (FIELD, SCORES_FIELD, MODEL_FIELD, "genre"):
        if kind == "vorbis":
            values = tags.get(field.upper())
            value = values[0] if values else None
        else:
            values = tags.get("\u00a9gen" if field == "genre" else MP4_PREFIX + field)
            value = None if not values else (values[0] if field == "genre"
                                              else bytes(values[0]).decode("utf-8"))
        if value is not None:
            found[field] = value
    return found


def _set(kind: str, audio, fields: dict) -> None:
    if kind == "id3":
        audio.fields.update(fields)
        return
    if audio.tags is None:
        audio.add_tags()
    tags = audio.tags
    for field, value in fields.items():
        if kind == "vorbis":
            tags[field.upper()] = [value]
        else:
            from mutagen.mp4 import MP4FreeForm

            if field == "genre":
                tags["\u00a9gen"] = [value]
            else:
                tags[MP4_PREFIX + field] = [MP4FreeForm(value.encode("utf-8"))]


def _save(kind: str, audio) -> None:
    if kind == "id3":
        frames = {_id3_key(field): (b"TCON", [value]) if field == "genre" else
                  (b"TXXX", [field, value]) for field, value in audio.fields.items()}
        id3_frames.write(audio.filename, audio.place,
                         id3_frames.with_frames(audio.tag, frames))
    else:
        audio.save()


class Written(NamedTuple):
    """What `write_fields` did: `outcome` "written", "unchanged", "would
    write" or "skipped"; `detail` the fields changed or why skipped; `stat`
    (when written) the tagged file's `os.stat` as it was put in place."""

    outcome: str
    detail: str
    stat: os.stat_result | None = None


def write_fields(path: str, fields: dict, dry_run: bool = False,
                 read: os.stat_result | None = None) -> Written:
    """Writes `fields` into the file at `path` (a link: the file it points
    to). Atomic: a tagged copy with the file's owner, mode, times and
    extended attributes replaces the file. `read`: the file's stat when
    the audio the fields come from was read; a file changed since is
    skipped."""
    target = os.path.realpath(str(path))  # a link stays; what it points to is tagged
    try:
        info = os.stat(target)  # before reading it: its access time is kept too
    except OSError as error:
        return Written("skipped", fileio.describe_os_error(error))
    if read is not None and stamp_of(read) != stamp_of(info):
        return Written("skipped", CHANGED_SINCE_READ)
    kind, audio = _open(target)
    if kind is None:
        return Written("skipped", audio)
    before = current_fields(kind, audio)
    changes = {k: v for k, v in fields.items() if before.get(k) != v}
    if not changes:
        return Written("unchanged", "")
    detail = ", ".join(f"{k}={v!r}" + (f" (was {before[k]!r})" if k in before else "")
                       for k, v in changes.items())
    if dry_run:
        return Written("would write", detail)
    refused = _cannot_replace(target, info)
    if refused:
        return Written("skipped", refused)
    try:
        tagged = _replace_with_tagged_copy(target, fields, info)
    except _Refused as refused:
        return Written("skipped", str(refused))
    except OSError as error:
        return Written("skipped", fileio.describe_os_error(error))
    return Written("written", detail, tagged)


def stamp_of(info: os.stat_result) -> str:
    """What tells a file changed between two `os.stat`s of it: its size and
    modification time in ns, as text (the beets plugin keeps it in a field,
    and a beets field keeps a float to 15 digits, which is not the file's
    time to the nanosecond)."""
    return f"size={info.st_size} mtime_ns={info.st_mtime_ns}"


def _cannot_replace(path: str, info: os.stat_result) -> str | None:
    """Why the file at `path` (no link; `info`: its stat) may not be
    replaced by a copy, or None."""
    writable = stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH
    if not info.st_mode & writable or not os.access(path, os.W_OK):
        return "the file is read-only"
    if info.st_nlink > 1:
        return (f"the file has {info.st_nlink - 1} other hard link(s), which a tagged copy "
                "replacing it would leave untagged")
    if not os.access(os.path.dirname(path), os.W_OK):
        return "its folder is read-only (a tagged copy is written there first)"
    return None


def _replace_with_tagged_copy(path: str, fields: dict,
                              info: os.stat_result) -> os.stat_result:
    """Tags a copy of `path` (`info`: its stat) beside it and renames it over
    `path`, unless `path` changed meanwhile; returns the copy's stat.
    _Refused (or OSError) says why not, and `path` is left as it is."""
    with fileio.replacing(path, check=lambda: _unchanged(path, info)) as tmp:
        shutil.copy2(path, tmp)  # bytes, permission bits, times, extended attributes
        refused = _keep_owner(tmp, info) or _tagged(tmp, fields)
        if refused is None:
            os.utime(tmp, ns=(info.st_atime_ns, info.st_mtime_ns))
            refused = _differs(path, tmp, info)
        if refused:
            raise _Refused(refused)  # the copy is removed, the file left as it was
        return os.stat(tmp)


def _tagged(path: str, fields: dict) -> str | None:
    """Writes `fields` into the file at `path`; None, or why it could not."""
    kind, audio = _open(path)
    if kind is None:
        return audio
    try:
        _set(kind, audio, fields)
        _save(kind, audio)
    except OSError:
        raise  # the disk's (full, gone), said as such
    except Exception as error:  # mutagen.MutagenError, and what a damaged file makes it raise
        return f"cannot write its tags ({type(error).__name__}: {error})"
    return None


class _Refused(Exception):
    """Why a tagged copy may not replace its file."""


def _unchanged(path: str, info: os.stat_result) -> None:
    """_Refused when the file at `path` is no longer the one `info` was
    taken of: another program wrote it (nothing of ours changes the
    original, not even its change time) or put another file there."""
    now = os.stat(path)
    fields = ("st_ino", "st_size", "st_mtime_ns", "st_ctime_ns")
    if any(getattr(now, field) != getattr(info, field) for field in fields):
        raise _Refused(CHANGED_WHILE_COPIED)


def _keep_owner(tmp: str, info: os.stat_result) -> str | None:
    """Gives the copy `tmp` the owner and group of `info`, then its mode
    again (a change of owner clears the set-id bits); None, or why not."""
    try:
        os.chown(tmp, info.st_uid, info.st_gid)
    except PermissionError:
        return (f"it belongs to uid {info.st_uid}, gid {info.st_gid}, which a tagged copy "
                "made by this user cannot keep; tag it as its owner (or as root)")
    os.chmod(tmp, stat.S_IMODE(info.st_mode))
    return None


def _differs(path: str, tmp: str, info: os.stat_result) -> str | None:
    """Whether the tagged copy `tmp` lost something of `path` (`info`): its
    owner, group, mode or extended attributes; None when it kept them."""
    copied = os.stat(tmp)
    if (copied.st_uid, copied.st_gid, copied.st_mode) != (info.st_uid, info.st_gid,
                                                           info.st_mode):
        return "a tagged copy cannot keep its owner, group and permissions here"
    lost = sorted(set(_xattrs(path).items()) - set(_xattrs(tmp).items()))
    if lost:
        return (f"a tagged copy cannot keep its extended attribute(s) "
                f"{', '.join(name for name, _ in lost)}")
    return None


def _xattrs(path: str) -> dict:
    """{name: value} of the extended attributes of `path` this process can
    read ({} where the platform or file system has none)."""
    if not hasattr(os, "listxattr"):
        return {}
    try:
        names = os.listxattr(path)
    except OSError:
        return {}
    values = {}
    for name in names:
        try:
            values[name] = os.getxattr(path, name)
        except OSError:
            pass
    return values


class TagWriter:
    """`write(path, clip_scores)` per tagged file; `summary()` lines.

    `model`: what `tagger_model` records (`model_label`). With `genre`, the
    model's tags must hold genres of a known tag set (`genres_of`)."""

    def __init__(self, tag_names, model: str, top_k=None, threshold=None,
                 scores: bool = False, genre: bool = False, dry_run: bool = False, log=print):
        try:
            import mutagen  # noqa: F401
        except ImportError:
            from tagger.errors import UserError

            raise UserError("--write-tags needs mutagen, which is not installed: pip install "
                            "mutagen") from None
        self.tag_names, self.model = list(tag_names), model
        self.top_k, self.threshold = top_k, threshold
        self.scores, self.dry_run, self.log = scores, dry_run, log
        self.genres = None
        if genre:
            from tagger.datasets.genres import TAG_SETS, genres_of, tag_set_of

            self.genres = genres_of(self.tag_names)
            if not self.genres:
                from tagger.errors import UserError

                known = tag_set_of(self.tag_names)
                raise UserError(
                    "--genre writes a genre only from the model's genre tags, and "
                    + (f"its {known} tags hold none" if known else
                       "this model's tags are of no tag set with a genre list "
                       f"({', '.join([*TAG_SETS, 'MTG-Jamendo'])})")
                    + "; leave out --genre")
        self.counts = {"written": 0, "unchanged": 0, "would write": 0, "skipped": 0}
        self._swept = set()  # folders cleared of temporaries killed runs left

    def _fields(self, clip_scores) -> dict:
        return tag_fields(clip_scores, self.tag_names, self.model, self.top_k,
                          self.threshold, self.scores, self.genres)

    def write(self, path: str, clip_scores, read: os.stat_result | None = None) -> Written:
        """Our fields from `clip_scores` into the file at `path` (`read`: its
        stat when its audio was read, `write_fields`)."""
        if not self.dry_run:
            self._sweep(os.path.dirname(os.path.realpath(str(path))))
        written = write_fields(path, self._fields(clip_scores), self.dry_run, read)
        self.counts[written.outcome] += 1
        if written.outcome == "skipped":
            self.log(f"tags not written into {fileio.path_text(path)}: {written.detail}")
        elif written.outcome == "would write":
            self.log(f"would write into {fileio.path_text(path)}: {written.detail}")
        return written

    def _sweep(self, folder: str) -> None:
        """Once per folder: removes the tagged copies a killed run left there."""
        if folder in self._swept:
            return
        self._swept.add(folder)
        removed = folder_lock.remove_stale_temporaries(folder)
        if removed:
            self.log(f"removed {len(removed)} temporary file(s) that an interrupted run "
                     f"left in {folder}: {', '.join(removed)}")

    def would_change(self, path: str, clip_scores) -> bool:
        """Whether `write` would change the file (a supported format whose
        fields differ from those `clip_scores` give)."""
        fields = self._fields(clip_scores)
        kind, audio = _open(os.path.realpath(str(path)))
        if kind is None:
            return False
        before = current_fields(kind, audio)
        return any(before.get(k) != v for k, v in fields.items())

    def summary(self) -> list[str]:
        c = self.counts
        if self.dry_run:
            return [f"--dry-run: tags would change in {c['would write']} file(s), "
                    f"{c['unchanged']} already hold them, {c['skipped']} cannot take them; "
                    "nothing was changed"]
        return [f"tags written into {c['written']} file(s); {c['unchanged']} already held "
                f"them; {c['skipped']} skipped"]
