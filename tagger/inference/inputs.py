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
    named inputs that do not exist; `subfolders_skipped`: folders not
    searched because `recursive` was off."""

    files: tuple
    missing: tuple
    subfolders_skipped: int


def is_audio_name(name: str) -> bool:
    return os.path.splitext(name)[1].lower() in AUDIO_EXTENSIONS


def find_audio(inputs, recursive: bool = False) -> AudioInputs:
    files, missing, seen = [], [], set()
    skipped = 0

    def add(path):
        key = os.path.realpath(path)
        if key not in seen:
            seen.add(key)
            files.append(path)

    for given in inputs:
        given = str(given)
        if os.path.isdir(given):
            found, subfolders = _list_folder(given, recursive, set())
            skipped += subfolders
            for path in found:
                add(path)
        elif os.path.isfile(given):
            add(given)
        elif os.path.exists(given):
            missing.append((given, "not a regular file or folder"))
        else:
            missing.append((given, "not found"))
    return AudioInputs(tuple(files), tuple(missing), skipped)


def _list_folder(folder: str, recursive: bool, visited: set):
    """(audio files under `folder` in sorted order, subfolders not searched);
    `visited` holds the real paths of folders seen (symlink loops)."""
    found, skipped = [], 0
    real = os.path.realpath(folder)
    if real in visited:
        return found, skipped
    visited.add(real)
    try:
        entries = sorted(os.scandir(folder), key=lambda entry: entry.name)
    except OSError:
        return found, skipped
    for entry in entries:
        if entry.name.startswith("."):
            continue
        path = os.path.join(folder, entry.name)
        if entry.is_dir():
            if recursive:
                sub, sub_skipped = _list_folder(path, recursive, visited)
                found.extend(sub)
                skipped += sub_skipped
            else:
                skipped += 1
        elif entry.is_file() and is_audio_name(entry.name):
            found.append(path)
    return found, skipped
