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
`tagger_model` the model's file name. Only these fields (and the genre,
when asked) are set: every other tag in the file is kept, and a rerun
replaces our fields, never adds a second copy.

The audio data is never touched: mutagen rewrites only the tag region
(the ID3 block at the start of an MP3, the metadata blocks of a FLAC, the
comment packets of an Ogg stream, the `id3 ` chunk of a WAV, the `moov`
atom of an MP4). Each file is written by copying it to a temporary name in
its folder, tagging the copy and renaming it over the file (os.replace):
a run killed at any moment leaves the old file or the new one. A read-only
file (or folder) and a format without a tag writer here are skipped with
a reason.
"""

from __future__ import annotations

import os
import shutil
import stat

from tagger import fileio
from tagger.inference.outputs import select_tags

FIELD = "tagger"
SCORES_FIELD = "tagger_scores"
MODEL_FIELD = "tagger_model"
MP4_PREFIX = "----:org.tagger:"
SEPARATOR = "; "


def tag_fields(scores, tag_names, model_name: str, top_k=None, threshold=None,
               with_scores: bool = False, genre: bool = False) -> dict:
    """Our fields for one file: {"tagger", "tagger_model"[, "tagger_scores"]
    [, "genre"]} as strings."""
    chosen = select_tags(scores, tag_names, top_k, threshold)
    fields = {FIELD: SEPARATOR.join(tag for tag, _ in chosen), MODEL_FIELD: model_name}
    if with_scores:
        fields[SCORES_FIELD] = SEPARATOR.join(f"{score:.3f}" for _, score in chosen)
    if genre and chosen:
        fields["genre"] = chosen[0][0]
    return fields


def _open(path: str):
    """(kind, mutagen file) for a format we write, else (None, reason)."""
    import mutagen
    from mutagen.flac import FLAC
    from mutagen.mp3 import MP3
    from mutagen.mp4 import MP4
    from mutagen.oggopus import OggOpus
    from mutagen.oggvorbis import OggVorbis
    from mutagen.wave import WAVE

    try:
        audio = mutagen.File(path)
    except Exception as error:  # mutagen.MutagenError and damaged headers
        return None, f"cannot read its tags ({type(error).__name__})"
    kinds = ((MP3, "id3"), (WAVE, "id3"), (FLAC, "vorbis"), (OggVorbis, "vorbis"),
             (OggOpus, "vorbis"), (MP4, "mp4"))
    for cls, kind in kinds:
        if isinstance(audio, cls):
            return kind, audio
    name = type(audio).__name__ if audio is not None else "an unknown format"
    return None, f"writing tags into {name} files is not supported (MP3, WAV, FLAC, Ogg " \
                 "Vorbis/Opus and M4A are)"


def current_fields(kind: str, audio) -> dict:
    """Our fields as they are in the file now (absent ones left out)."""
    tags, found = audio.tags, {}
    if tags is None:
        return found
    for field in (FIELD, SCORES_FIELD, MODEL_FIELD, "genre"):
        if kind == "id3":
            frame = tags.get("TCON" if field == "genre" else f"TXXX:{field}")
            value = str(frame.text[0]) if frame is not None and frame.text else None
        elif kind == "vorbis":
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
    if audio.tags is None:
        audio.add_tags()
    tags = audio.tags
    for field, value in fields.items():
        if kind == "id3":
            from mutagen.id3 import TCON, TXXX

            if field == "genre":
                tags.setall("TCON", [TCON(encoding=3, text=[value])])
            else:
                tags.setall(f"TXXX:{field}", [TXXX(encoding=3, desc=field, text=[value])])
        elif kind == "vorbis":
            tags[field.upper()] = [value]
        else:
            from mutagen.mp4 import MP4FreeForm

            if field == "genre":
                tags["\u00a9gen"] = [value]
            else:
                tags[MP4_PREFIX + field] = [MP4FreeForm(value.encode("utf-8"))]


def _save(kind: str, audio) -> None:
    if kind == "id3":
        version = audio.tags.version[1] if audio.tags.version[1] in (3, 4) else 4
        audio.save(v2_version=version)
    else:
        audio.save()


def write_fields(path: str, fields: dict, dry_run: bool = False) -> tuple[str, str]:
    """Writes `fields` into the file at `path`: ("written" | "unchanged" |
    "would write" | "skipped", detail). Atomic: a tagged copy replaces the file."""
    path = str(path)
    kind, audio = _open(path)
    if kind is None:
        return "skipped", audio
    before = current_fields(kind, audio)
    changes = {k: v for k, v in fields.items() if before.get(k) != v}
    if not changes:
        return "unchanged", ""
    detail = ", ".join(f"{k}={v!r}" + (f" (was {before[k]!r})" if k in before else "")
                       for k, v in changes.items())
    if dry_run:
        return "would write", detail
    writable = stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH
    if not os.stat(path).st_mode & writable or not os.access(path, os.W_OK):
        return "skipped", "the file is read-only"
    folder = os.path.dirname(os.path.abspath(path))
    if not os.access(folder, os.W_OK):
        return "skipped", "its folder is read-only (a tagged copy is written there first)"
    tmp = fileio.temporary_path(os.path.abspath(path))
    try:
        shutil.copy2(path, tmp)  # bytes, permission bits and times
        kind, copy = _open(tmp)
        _set(kind, copy, fields)
        _save(kind, copy)
        os.replace(tmp, path)
    except OSError as error:
        fileio.remove_quietly(tmp)
        return "skipped", fileio.describe_os_error(error)
    except BaseException:
        fileio.remove_quietly(tmp)
        raise
    return "written", detail


class TagWriter:
    """`write(path, clip_scores)` per tagged file; `summary()` lines."""

    def __init__(self, tag_names, model_name: str, top_k=None, threshold=None,
                 scores: bool = False, genre: bool = False, dry_run: bool = False, log=print):
        try:
            import mutagen  # noqa: F401
        except ImportError:
            from tagger.errors import UserError

            raise UserError("--write-tags needs mutagen, which is not installed: pip install "
                            "mutagen") from None
        self.tag_names, self.model_name = list(tag_names), model_name
        self.top_k, self.threshold = top_k, threshold
        self.scores, self.genre, self.dry_run, self.log = scores, genre, dry_run, log
        self.counts = {"written": 0, "unchanged": 0, "would write": 0, "skipped": 0}

    def write(self, path: str, clip_scores) -> str:
        fields = tag_fields(clip_scores, self.tag_names, self.model_name, self.top_k,
                            self.threshold, self.scores, self.genre)
        outcome, detail = write_fields(path, fields, self.dry_run)
        self.counts[outcome] += 1
        if outcome == "skipped":
            self.log(f"tags not written into {fileio.path_text(path)}: {detail}")
        elif outcome == "would write":
            self.log(f"would write into {fileio.path_text(path)}: {detail}")
        return outcome

    def would_change(self, path: str, clip_scores) -> bool:
        """Whether `write` would change the file (a supported format whose
        fields differ from those `clip_scores` give)."""
        fields = tag_fields(clip_scores, self.tag_names, self.model_name, self.top_k,
                            self.threshold, self.scores, self.genre)
        kind, audio = _open(str(path))
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
