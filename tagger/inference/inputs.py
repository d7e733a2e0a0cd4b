"""From the files and folders a user names to the audio files to tag.

A file named directly is always tried (whatever its extension: the decoder
decides); a folder contributes the files whose extension is an audio format
libsndfile or FFmpeg reads (`tagger.audio.is_audio_name`), sorted by name,
descending into subfolders only with `recursive`. Hidden files and folders
(".name") are skipped. Paths keep the form the user gave (`music/a.mp3`, not an absolute
path); a file reached twice is listed once.
"""

from __future__ import annotations

import dataclasses
import os
import stat

from tagger.audio import is_audio_name


@dataclasses.dataclass(frozen=True)
class AudioInputs:
    """`files`: audio files to tag, in order; `missing`: (path, reason) for
    inputs that cannot be read as files (not found, not a regular file);
    `subfolders_skipped`: folders not
    searched because `recursive` was off."""

    files: tuple
    missing: tuple
    subfolders_skipped: int


def path_problem(path: str) -> str | None:
    """Why `path` cannot be opened as an audio file, or None for a regular
    file (links followed), in the decoder's words (tagger.audio). Never
    opens the path, so a named pipe cannot block and a device cannot stream
    forever."""
    from tagger.audio import _file_kind, _open_error

    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        return "broken symlink" if os.path.islink(path) else "not found"
    except OSError as error:
        return _open_error(error)
    if stat.S_ISREG(mode):
        return None
    return f"not a regular file ({_file_kind(mode)})"


def find_audio(inputs, recursive: bool = False) -> AudioInputs:
    files, missing, counts = [], [], {}
    for path, problem in iter_audio(inputs, recursive, counts):
        if problem is None:
            files.append(path)
        else:
            missing.append((path, problem))
    return AudioInputs(tuple(files), tuple(missing), counts["subfolders_skipped"])


def iter_audio(inputs, recursive: bool = False, counts: dict | None = None):
    """Yields `(path, None)` for every audio file and `(path, reason)` for
    every input that cannot be read as a file, in `find_audio`'s order,
    walking lazily: one folder's entries are listed (and sorted) when the
    walk reaches that folder, so the first file comes at once however
    large the library. When the walk ends, `counts["subfolders_skipped"]`
    holds the folders not searched because `recursive` was off."""
    counts = {} if counts is None else counts
    counts["subfolders_skipped"] = 0
    seen, visited = set(), set()
    for given in inputs:
        given = str(given)
        if os.path.isdir(given):
            walk = _walk_folder(given, recursive, visited, counts)
        else:
            walk = iter([(given, path_problem(given))])
        for path, problem in walk:
            if problem is not None:
                yield path, problem
                continue
            key = os.path.realpath(path)
            if key not in seen:  # a file reached twice is listed once
                seen.add(key)
                yield path, None


def _walk_folder(folder: str, recursive: bool, visited: set, counts: dict):
    """Yields (path, None) for the audio files under `folder` in sorted
    order and (path, reason) for audio-named entries that are not regular
    files and for link loops; `visited` holds the real paths of folders
    seen (symlink loops, a folder named twice); `counts` counts the
    subfolders not searched."""
    real = os.path.realpath(folder)
    if real in visited:
        return
    visited.add(real)
    try:
        entries = sorted(os.scandir(folder), key=lambda entry: entry.name)
    except OSError:
        return
    for entry in entries:
        if entry.name.startswith("."):
            continue
        path = os.path.join(folder, entry.name)
        try:
            is_dir = entry.is_dir()
        except OSError:  # a symbolic link loop, an unreadable link target
            yield path, path_problem(path) or "cannot read"
            continue
        if is_dir:
            if recursive:
                yield from _walk_folder(path, recursive, visited, counts)
            else:
                counts["subfolders_skipped"] += 1
        elif is_audio_name(entry.name):
            yield path, path_problem(path)
