"""The genre list of each tag set (tag.py --genre): which tags are genres,
what is written for them, and how a model's tags name their tag set."""

from __future__ import annotations

from tagger.convert.zoo import JAMENDO_TAGS
from tagger.datasets import genres
from tagger.datasets.msd.tags import CALS_TAGS, CLASSIC_TAGS
from tagger.datasets.mtt import MTT_TOP50, SYNONYMS
from tagger.datasets.synthetic import TAG_NAMES as SYNTHETIC_TAGS


def test_magnatagatune_top50_genres():
    assert genres.tag_set_of(MTT_TOP50) == "MagnaTagATune"
    assert genres.genres_of(MTT_TOP50) == {
        "classical": "classical", "classic": "classical", "techno": "techno",
        "electronic": "electronic", "rock": "rock", "ambient": "ambient",
        "indian": "indian", "opera": "opera", "pop": "pop", "new age": "new age",
        "dance": "dance", "country": "country", "metal": "metal"}
    # tempo, loudness, instruments, voices, moods are not genres
    for tag in ("slow", "fast", "loud", "quiet", "soft", "guitar", "piano", "strings",
                "female", "vocal", "no vocals", "weird", "beat", "solo"):
        assert tag not in genres.genres_of(MTT_TOP50)


def test_magnatagatune_merged_synonyms_keep_their_genre():
    merged = sorted({head for head in SYNONYMS} | set(MTT_TOP50) - {
        name for names in SYNONYMS.values() for name in names})
    assert genres.tag_set_of(merged) == "MagnaTagATune"
    found = genres.genres_of(merged)
    assert (found["heavy"], found["electro"], found["india"]) == ("metal", "electronic",
                                                                  "indian")
    assert "metal" not in found and "classic" not in found  # merged away
    assert genres.tag_set_of(SYNTHETIC_TAGS) == "MagnaTagATune"  # the synthetic sets'


def test_msd_lastfm_genres():
    for tags in (CLASSIC_TAGS, CALS_TAGS):
        assert genres.tag_set_of(tags) == "MSD Last.fm"
        found = genres.genres_of(tags)
        assert all(found[tag] == tag for tag in found)  # written as named
    assert len(genres.genres_of(CLASSIC_TAGS)) == 30
    assert len(genres.genres_of(CALS_TAGS)) == 39
    for tag in ("female vocalists", "00s", "80s", "beautiful", "Mellow", "chill", "sexy",
                "catchy", "party", "happy", "sad", "guitar", "piano", "instrumental",
                "acoustic", "british", "spanish"):
        assert tag not in genres.genres_of(CLASSIC_TAGS + CALS_TAGS)
    assert "Hip-Hop" in genres.genres_of(CLASSIC_TAGS)
    assert "hip-hop" in genres.genres_of(CALS_TAGS)


def test_mtg_jamendo_genres_are_its_genre_category():
    assert genres.tag_set_of(JAMENDO_TAGS) == "MTG-Jamendo"
    found = genres.genres_of(JAMENDO_TAGS)
    assert sorted(found) == sorted(t for t in JAMENDO_TAGS if t.startswith("genre---"))
    assert len(found) == 31 and found["genre---hiphop"] == "hiphop"


def test_tags_of_no_known_set_have_no_genres():
    assert genres.tag_set_of(["kick", "snare", "hat", "rock"]) is None
    assert genres.genres_of(["kick", "snare", "hat", "rock"]) == {}
    assert genres.tag_set_of([]) is None
