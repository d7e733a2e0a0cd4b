"""From the files and folders a user names to the audio files to tag.

A file named directly is always tried (whatever its extension: the decoder
decides); a folder contributes the files whose extension is an audio format
libsndfile reads (`AUDIO_EXTENSIONS`), sorted by name, descending into
subfolders only with `recursive`. Hidden files and folders (".name") are
skipped. Paths keep the form the user gave (`music/a.mp3`, not an absolute
path); a file reached twice is listed once.
"""

from __future__ import annotations

import dataclasses
import os
import stat

# Extensions of the formats soundfile 0.13+ (libsndfile 1.2) decodes.
AUDIO_EXTENSIONS = frozenset({
    ".wav", ".wave", ".flac", ".mp3", ".ogg", ".oga", ".opus", ".aif", ".aiff",
    ".aifc", ".au", ".snd", ".caf", ".w64", ".rf64", ".sd2", ".voc", ".paf",
    ".svx", ".nist", ".sph", ".ircam", ".sf", ".mat", ".pvf", ".xi", ".htk",
    ".sds", ".avr", ".mpc", ".wve",
})


@dataclasses.dataclass(frozen=True)
class AudioInputs:
    """`files`: audio files to tag, in order; `missing`: (path, reason) for
    inputs that cannot be read as files (not found, not a regular file);
    `subfolders_skipped`: folders not
    searched because `recursive` was off."""

    files: tuple
    missing: tuple
    subfolders_skipped: int


def is_audio_name(name: str) -> bool:
    return os.path.splitext(name)[1].lower() in AUDIO_EXTENSIONS


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
    files, missing, seen = [], [], set()
    skipped = 0

    def add(path):
        key = os.path.realpath(path)
        if key not in seen:
            seen.add(key)
            files.append(path)

    visited = set()
    for given in inputs:
        given = str(given)
        if os.path.isdir(given):
            found, problems, subfolders = _list_folder(given, recursive, visited)
            skipped += subfolders
            missing.extend(problems)
            for path in found:
                add(path)
            continue
        problem = path_problem(given)
        if problem is None:
            add(given)
        else:
            missing.append((given, problem))
    return AudioInputs(tuple(files), tuple(missing), skipped)


def _list_folder(folder: str, recursive: bool, visited: set):
    """(audio files under `folder` in sorted order, (path, reason) of
    audio-named entries that are not regular files and of link loops,
    subfolders not searched); `visited` holds the real paths of folders
    seen (symlink loops, a folder named twice)."""
    found, problems, skipped = [], [], 0
    real = os.path.realpath(folder)
    if real in visited:
        return found, problems, skipped
    visited.add(real)
    try:
        entries = sorted(os.scandir(folder), key=lambda entry: entry.name)
    except OSError:
        return found, problems, skipped
    for entry in entries:
        if entry.name.startswith("."):
            continue
        path = os.path.join(folder, entry.name)
        try:
            is_dir = entry.is_dir()
        except OSError:  # a symbolic link loop, an unreadable link target
            problems.append((path, path_problem(path) or "cannot read"))
            continue
        if is_dir:
            if recursive:
                sub, sub_problems, sub_skipped = _list_folder(path, recursive, visited)
                found.extend(sub)
                problems.extend(sub_problems)
                skipped += sub_skipped
            else:
                skipped += 1
        elif is_audio_name(entry.name):
            problem = path_problem(path)
            if problem is None:
                found.append(path)
            else:
                problems.append((path, problem))
    return found, problems, skipped
