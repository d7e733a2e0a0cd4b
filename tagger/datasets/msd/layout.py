"""Where each MSD track's audio lies, in the two common layouts.

  7digital: {d[0]}/{d[1]}/{d}.clip.mp3, d = track_7digitalid as a decimal
            string (the 30 s 7digital previews; track_metadata.db maps MSD
            ids to 7digital ids).
  msd:      {tid[2]}/{tid[3]}/{tid[4]}/{tid}.{ext}, tid = the MSD track id
            (the layout of the CALS code, e.g. 22,050 Hz WAV files).

The audio root may be local or any tf.io.gfile path (gs://, ...). Local
roots use the standard library (one stat per track); a remote root is
listed once instead (a recursive listing is a few thousand requests for a
million objects on gs://, a stat per track would be a million).
"""

from __future__ import annotations

import os

import numpy as np

from tagger import fileio
from tagger.config import join_path
from tagger.errors import UserError

LAYOUTS = ("7digital", "msd")
AUDIO_EXTENSIONS = ("wav", "mp3", "flac", "ogg", "m4a", "npy")
BLOCK = 65536


def detect(audio_root: str) -> tuple:
    """(layout, extension) of the audio under `audio_root`, from its first
    level of folders (digits: 7digital; letters: MSD ids) and the first file."""
    check_root(audio_root)
    top = [n for n in fileio.listdir(audio_root)
           if len(n) == 1 and fileio.isdir(join_path(audio_root, n))]
    if top and all(n.isdigit() for n in top):
        return "7digital", "mp3"
    if top and all(n.isalpha() and n.isupper() for n in top):
        ext = _first_msd_extension(audio_root, top, depth=1)
        if ext is not None:
            return "msd", ext
        raise UserError(f"{audio_root!r} has MSD-id folders but no TR....<ext> audio file; "
                        "expected A/B/C/TRABC....wav")
    raise UserError(f"cannot tell the audio layout of {audio_root!r}: expected one-digit "
                    "folders (7digital: 8/9/8947470.clip.mp3) or one-letter folders "
                    "(MSD ids: A/B/C/TRABC....wav); pass --layout")


def check_root(audio_root: str) -> None:
    if fileio.isdir(audio_root):
        return
    if not fileio.exists(audio_root):
        raise UserError(f"audio folder {audio_root!r} does not exist; pass --audio-dir")
    kind = fileio.not_a_file(audio_root) or "a file"
    raise UserError(f"audio folder {audio_root!r} is {kind}, not a folder; give the folder "
                    "of the audio with --audio-dir")


def _first_msd_extension(folder: str, names, depth: int):
    """The extension of the first TR....<ext> file, depth first in name
    order through the one-letter folders (A/B/C/), or None."""
    for name in names:
        stem, _, ext = name.rpartition(".")
        if depth > 1 and stem.startswith("TR") and ext.lower() in AUDIO_EXTENSIONS:
            return ext
    for name in names:
        sub = join_path(folder, name)
        if len(name) == 1 and depth <= 3 and fileio.isdir(sub):
            ext = _first_msd_extension(sub, fileio.listdir(sub), depth + 1)
            if ext is not None:
                return ext
    return None


def relative_paths(layout: str, ext: str, track_ids: np.ndarray,
                   digital: np.ndarray) -> np.ndarray:
    """Relative audio path of every track as bytes (b"" where a 7digital
    layout track has no 7digital id), built in blocks."""
    out = np.empty(len(track_ids), dtype="S40")
    for start in range(0, len(track_ids), BLOCK):
        ids = track_ids[start:start + BLOCK]
        if layout == "msd":
            paths = [f"{t[2]}/{t[3]}/{t[4]}/{t}.{ext}".encode()
                     for t in (i.decode() for i in ids)]
        else:
            paths = [f"{d[0]}/{d[1]}/{d}.clip.mp3".encode() if len(d) >= 2 else b""
                     for d in (str(v) if v > 0 else "" for v in
                               digital[start:start + BLOCK].tolist())]
        out[start:start + len(ids)] = paths
    return out


def missing(audio_root: str, paths: np.ndarray, progress=None) -> np.ndarray:
    """Boolean mask of tracks whose file does not exist (or that have no
    path). A local root: each file is stat-ed once, so a million tracks take
    a while. Any other root: its files are listed once (`progress` gets the
    files found as they come)."""
    if not fileio.is_local(audio_root):
        return _missing_remote(audio_root, paths, progress)
    out = np.zeros(len(paths), bool)
    for i, path in enumerate(paths):
        if not path:
            out[i] = True
        else:
            out[i] = not os.path.isfile(os.path.join(audio_root, path.decode()))
        if progress is not None and (i + 1) % 4096 == 0:
            progress(4096)
    if progress is not None:
        progress(len(paths) % 4096)
    return out


def _missing_remote(audio_root: str, paths: np.ndarray, progress=None) -> np.ndarray:
    import tensorflow as tf

    root = audio_root.rstrip("/")
    depth = max((p.count(b"/") for p in paths[:BLOCK] if p), default=0)
    found = []
    # One listing of the files at the layout's depth (d0/d1/file or A/B/C/file).
    for name in tf.io.gfile.glob(join_path(root, *["*"] * (depth + 1))):
        found.append(name[len(root) + 1:].encode())
        if progress is not None and len(found) % 4096 == 0:
            progress(4096)
    if progress is not None:
        progress(len(found) % 4096)
    present = np.array(sorted(found), dtype=paths.dtype if len(paths) else "S40")
    return (paths == b"") | ~np.isin(paths, present)
