"""The beets plugin's fields, computed without beets (tagger/inference/library/beets_fields.py)."""

from __future__ import annotations

import pytest

from tagger.datasets.msd.tags import CALS_TAGS, CLASSIC_TAGS
from tagger.datasets.mtt import MTT_TOP50
from tagger.errors import UserError
from tagger.inference.library import beets_fields


def test_score_fields_are_named_after_the_tag_set():
    assert beets_fields.score_prefix(MTT_TOP50, "MTT_musicnn") == "mtt"
    assert beets_fields.score_prefix(CLASSIC_TAGS, "MSD_musicnn") == "msd"
    assert beets_fields.score_prefix(["genre---rock", "mood/theme---happy"], "x") == "jamendo"
    assert beets_fields.score_prefix(["kick", "snare"], "My Drums") == "my_drums"
    fields = beets_fields.score_fields("mtt", MTT_TOP50)
    assert fields[MTT_TOP50.index("new age")] == "mtt_new_age"
    assert len(set(fields)) == len(MTT_TOP50) == 50
    assert beets_fields.score_fields("msd", ["Hip-Hop", "hip-hop", "rnb"]) == [
        "msd_hip_hop", "msd_hip_hop_2", "msd_rnb"]


def test_no_two_tags_share_a_score_field():
    assert beets_fields.score_fields("x", ["rock", "Rock", "rock 2"]) == [
        "x_rock", "x_rock_2", "x_rock_2_2"]
    fields = beets_fields.score_fields("x", ["Hip-Hop", "hip hop", "R&B", "r b", "hip hop 2"])
    assert fields == ["x_hip_hop", "x_hip_hop_2", "x_r_b", "x_r_b_2", "x_hip_hop_2_2"]
    assert beets_fields.score_fields("x", ["rock 2", "rock", "Rock"]) == [
        "x_rock_2", "x_rock", "x_rock_3"]


@pytest.mark.parametrize("tags", [MTT_TOP50, CLASSIC_TAGS, CALS_TAGS],
                         ids=["mtt", "msd-classic", "msd-cals"])
def test_a_tag_set_whose_names_never_met_keeps_its_fields(tags):
    """What a library stores keeps its name: the n-th tag of one slug is
    `_n`, as it always was, where no suffixed name met another tag's."""
    seen, before = {}, []
    for tag in tags:
        name = f"x_{beets_fields.slug(tag)}"
        seen[name] = seen.get(name, 0) + 1
        before.append(name if seen[name] == 1 else f"{name}_{seen[name]}")
    assert len(set(before)) == len(before)
    assert beets_fields.score_fields("x", tags) == before


def test_known_score_fields_cover_both_pretrained_tag_sets_once():
    known = beets_fields.known_score_fields()
    slugs = {beets_fields.slug(t) for t in CLASSIC_TAGS + CALS_TAGS}  # Hip-Hop, hip-hop: one
    assert len(known) == len(set(known)) == 50 + len(slugs) < 50 + len(CLASSIC_TAGS + CALS_TAGS)
    assert {"mtt_piano", "msd_rock", "msd_hip_hop", "msd_death_metal"} <= set(known)


def test_mapping_takes_tag_lists_and_the_tag_sets_genres():
    mapping = beets_fields.check_mapping({"genres": "genres", "mood": ["slow", "quiet"]},
                                         MTT_TOP50)
    assert mapping["genres"]["classic"] == "classical" and "guitar" not in mapping["genres"]
    chosen = ["guitar", "classic", "slow", "classical", "rock"]
    assert beets_fields.mapped_values(chosen, mapping) == {
        "genres": ["classical", "rock"], "mood": ["slow"]}
    assert beets_fields.mapped_values(["piano"], mapping) == {}
    with pytest.raises(UserError, match="takes a list of tags or the word 'genres', got 3"):
        beets_fields.check_mapping({"mood": 3})
    with pytest.raises(UserError, match="'Mood!' is not a field name"):
        beets_fields.check_mapping({"Mood!": ["slow"]})
    with pytest.raises(UserError, match=r"mood lists none of the model's tags \(slwo, "
                                        r"techno_typo\); its tags: guitar, classical, "):
        beets_fields.check_mapping({"mood": ["slwo", "techno_typo"]}, MTT_TOP50)
    both = beets_fields.check_mapping({"mood": ["slow", "chill"]}, MTT_TOP50)  # MTT's, MSD's
    assert beets_fields.mapped_values(["guitar", "slow"], both) == {"mood": ["slow"]}
    assert beets_fields.check_mapping({"mood": ["slwo"]}) == {"mood": {"slwo": "slwo"}}
