"""Where each MSD track's audio lies, in the two common layouts.

  7digital: {d[0]}/{d[1]}/{d}.clip.mp3, d = track_7digitalid as a decimal
            string (the 30 s 7digital previews; track_metadata.db maps MSD
            ids to 7digital ids).
  msd:      {tid[2]}/{tid[3]}/{tid[4]}/{tid}.{ext}, tid = the MSD track id
            (the layout of the CALS code, e.g. 22,050 Hz WAV files).
"""

from __future__ import annotations

import os

import numpy as np

from tagger.errors import UserError

LAYOUTS = ("7digital", "msd")
AUDIO_EXTENSIONS = ("wav", "mp3", "flac", "ogg", "m4a", "npy")
BLOCK = 65536


def detect(audio_root: str) -> tuple:
    """(layout, extension) of the audio under `audio_root`, from its first
    level of folders (digits: 7digital; letters: MSD ids) and the first file."""
    if not os.path.isdir(audio_root):
        raise UserError(f"audio folder {audio_root!r} does not exist; pass --audio-dir")
    top = sorted(n for n in os.listdir(audio_root)
                 if len(n) == 1 and os.path.isdir(os.path.join(audio_root, n)))
    if top and all(n.isdigit() for n in top):
        return "7digital", "mp3"
    if top and all(n.isalpha() and n.isupper() for n in top):
        for root, dirs, files in os.walk(audio_root):
            dirs.sort()
            for name in sorted(files):
                stem, _, ext = name.rpartition(".")
                if stem.startswith("TR") and ext.lower() in AUDIO_EXTENSIONS:
                    return "msd", ext
        raise UserError(f"{audio_root!r} has MSD-id folders but no TR....<ext> audio file; "
                        "expected A/B/C/TRABC....wav")
    raise UserError(f"cannot tell the audio layout of {audio_root!r}: expected one-digit "
                    "folders (7digital: 8/9/8947470.clip.mp3) or one-letter folders "
                    "(MSD ids: A/B/C/TRABC....wav); pass --layout")


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
    path); stats each file once, so a million tracks take a while."""
    out = np.zeros(len(paths), bool)
    local = "://" not in audio_root
    for i, path in enumerate(paths):
        if not path:
            out[i] = True
        elif local:
            out[i] = not os.path.isfile(os.path.join(audio_root, path.decode()))
        if progress is not None and (i + 1) % 4096 == 0:
            progress(4096)
    if progress is not None:
        progress(len(paths) % 4096)
    return out
