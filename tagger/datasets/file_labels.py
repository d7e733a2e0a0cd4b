"""Labels from what a music library already holds (build_folder.py
--labels-from): each file's top folder under the root, or a text tag
the files carry (genre, mood, ...), read with mutagen.

    labels_source(text) -> (kind, key)        'folders' or 'tags:NAME', checked
    folder_tags(paths) -> {path: {tag}}       the top folder of each file in one
    file_tags(root, paths, key, progress) -> {path: {tag}}
                                              each value of the files' tag `key`

A tag is one value as mutagen returns it, stripped; values are never split
further ('Drum & Bass', 'AC/DC' and 'Rock; Pop' are one tag each). A file
the source gives no tag (a file directly in the root, a file without the
tag or that mutagen cannot read) is not in the mapping.
"""

from __future__ import annotations

from tagger import fileio
from tagger.config import join_path

FORMS = "'folders' or 'tags:NAME' (a text tag of the files, e.g. tags:genre or tags:mood)"
ITUNES_FREEFORM = "----:com.apple.iTunes:"  # an MP4 atom of a tag without its own atom


def labels_source(text: str) -> tuple:
    """('folders', None) or ('tags', key) for a --labels-from value; a
    ValueError listing the valid forms for any other."""
    kind, _, key = text.partition(":")
    if text == "folders":
        return "folders", None
    if kind == "tags" and key.strip():
        return "tags", key.strip()
    raise ValueError(f"--labels-from must be {FORMS}, got {text!r}")


def folder_tags(paths: list) -> dict:
    """{path: {its top folder}} for each '/'-separated path in a folder."""
    return {path: {path.partition("/")[0]} for path in paths if "/" in path}


def file_tags(root: str, paths: list, key: str, progress: bool = True) -> dict:
    """{path: {each value of the tag `key`}} for each file under `root`
    that carries it."""
    from tqdm import tqdm

    found = {}
    for path in tqdm(paths, unit="file", desc="read tags", disable=not progress):
        values = {v.strip() for v in tag_values(join_path(root, path), key)} - {""}
        if values:
            found[path] = values
    return found


def tag_values(path: str, key: str) -> list:
    """The text values of the tag `key` in the file at `path`, by the names
    of mutagen's easy tags ('genre', 'mood', ...) in ID3 (MP3, WAV, AIFF)
    and MP4 (M4A), a Vorbis comment of that name (FLAC, Ogg, Opus), else a
    user text frame (ID3 TXXX), an iTunes freeform atom (MP4) or an item
    (APEv2, ASF) of that name; [] for a file without it or that mutagen
    cannot read."""
    import mutagen

    try:
        with fileio.open_file(path, "rb") as file:
            audio = mutagen.File(file)
            tags = None if audio is None else audio.tags
            return [] if tags is None else _values(tags, key)
    except (mutagen.MutagenError, OSError, ValueError, EOFError):
        return []


def _values(tags, key: str) -> list:
    """The text values of `key` in mutagen's `tags` of any format."""
    from mutagen.easyid3 import EasyID3
    from mutagen.easymp4 import EasyMP4Tags
    from mutagen.id3 import ID3
    from mutagen.mp4 import MP4Tags

    name = key.lower()
    for kind, easy in ((ID3, EasyID3), (MP4Tags, EasyMP4Tags)):
        if isinstance(tags, kind) and name in easy.Get:
            try:  # the easy tags' getter (ID3 genres: TCON's, "(17)" as Rock)
                return [str(v) for v in easy.Get[name](tags, name)]
            except KeyError:  # no such frame or atom
                return []
    if isinstance(tags, ID3):
        return [str(v) for frame in tags.getall("TXXX") if frame.desc.lower() == name
                for v in frame.text]
    if isinstance(tags, MP4Tags):
        name = (ITUNES_FREEFORM + name).lower()
        return [bytes(v).decode("utf-8", "replace") for atom, values in tags.items()
                if atom.lower() == name for v in values]
    for item, values in tags.items():  # Vorbis comments, APEv2, ASF: by name
        if item.lower() == name:
            values = values if isinstance(values, list) else [values]
            return [text for v in values for text in str(v).split("\0")]  # APEv2's
    return []
