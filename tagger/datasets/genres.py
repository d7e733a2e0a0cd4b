"""Which tags of each tag set are genres: the one list `tag.py --genre`
reads (the genre field written into a file takes only a tag named here).

Each tag set maps its genre tags to the genre written (its own name, or the
name of the genre a merged synonym group stands for); every other tag
("slow", "guitar", "female vocalists", "00s", "beautiful") is not a genre.

- MagnaTagATune: the top-50's genres, their synonyms (the merge of
  `mtt.SYNONYMS` keeps the group's first name: "heavy" is metal, "hard" is
  hard rock) and the genres among the rarer columns a larger top-k holds.
- MSD (Last.fm): the genres of the classic top-50 (`msd.tags.CLASSIC_TAGS`)
  and of the CALS top-50 (`msd.tags.CALS_TAGS`).
- MTG-Jamendo: every tag of its `genre---` category, written without the
  prefix ("genre---hiphop" -> "hiphop"); its `instrument---` and
  `mood/theme---` tags are not genres.

A model's tag set is told from its tag names (`tag_set_of`).
"""

from __future__ import annotations

from tagger.datasets.msd.tags import CALS_TAGS, CLASSIC_TAGS
from tagger.datasets.mtt import MTT_TOP50, SYNONYMS

JAMENDO_GENRE_PREFIX = "genre---"

MTT_GENRES = {
    # the top-50's
    "classical": "classical", "classic": "classical", "techno": "techno",
    "electronic": "electronic", "rock": "rock", "ambient": "ambient", "indian": "indian",
    "opera": "opera", "pop": "pop", "new age": "new age", "dance": "dance",
    "country": "country", "metal": "metal",
    # synonyms, and the names their groups merge into
    "clasical": "classical", "electro": "electronic", "electronica": "electronic",
    "heavy": "metal", "heavy metal": "metal", "hard": "hard rock", "hard rock": "hard rock",
    "india": "indian", "jazz": "jazz", "jazzy": "jazz",
    # rarer columns
    "folk": "folk", "baroque": "baroque", "celtic": "celtic", "irish": "irish",
    "medieval": "medieval", "renaissance": "renaissance", "trance": "trance",
    "house": "house", "disco": "disco", "funk": "funk", "funky": "funk", "blues": "blues",
    "reggae": "reggae", "punk": "punk", "hip hop": "hip hop", "rap": "rap",
    "industrial": "industrial", "world": "world", "latin": "latin", "eastern": "eastern",
    "oriental": "oriental", "middle eastern": "middle eastern", "arabic": "arabic",
}

MSD_GENRES = {tag: tag for tag in (
    # the classic Last.fm top-50's
    "rock", "pop", "alternative", "indie", "electronic", "dance", "alternative rock",
    "jazz", "metal", "chillout", "classic rock", "soul", "indie rock", "electronica",
    "folk", "punk", "blues", "hard rock", "ambient", "experimental", "Hip-Hop",
    "country", "easy listening", "funk", "electro", "heavy metal", "Progressive rock",
    "rnb", "indie pop", "House",
    # the CALS top-50's others
    "hip-hop", "hardcore", "punk rock", "death metal", "reggae", "progressive rock",
    "metalcore", "world", "trance", "christian", "house", "latin", "psychedelic",
    "progressive metal",
)}

# tag set -> (the tag names it is told by, {genre tag: genre written})
TAG_SETS = {
    "MagnaTagATune": (frozenset(MTT_TOP50) | set(SYNONYMS) | {
        name for names in SYNONYMS.values() for name in names} | set(MTT_GENRES),
        MTT_GENRES),
    "MSD Last.fm": (frozenset(CLASSIC_TAGS) | set(CALS_TAGS), MSD_GENRES),
}


def tag_set_of(tag_names) -> str | None:
    """The tag set `tag_names` (a model's tags) come from: "MTG-Jamendo" for
    tags of its categories, else the set whose names hold most of them (more
    than half), else None."""
    tag_names = list(tag_names)
    if any(tag.startswith(JAMENDO_GENRE_PREFIX) for tag in tag_names):
        return "MTG-Jamendo"
    best, held = None, 0
    for name, (names, _) in TAG_SETS.items():
        count = sum(tag in names for tag in tag_names)
        if count > held:
            best, held = name, count
    return best if tag_names and 2 * held > len(tag_names) else None


def genres_of(tag_names) -> dict:
    """{tag: genre written} for the genre tags among `tag_names` (empty when
    their tag set is unknown or holds no genre)."""
    tag_set = tag_set_of(tag_names)
    if tag_set == "MTG-Jamendo":
        return {tag: tag[len(JAMENDO_GENRE_PREFIX):] for tag in tag_names
                if tag.startswith(JAMENDO_GENRE_PREFIX)}
    if tag_set is None:
        return {}
    genres = TAG_SETS[tag_set][1]
    return {tag: genres[tag] for tag in tag_names if tag in genres}
