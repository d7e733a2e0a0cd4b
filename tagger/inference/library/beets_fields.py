"""What the beets plugin (beetsplug/musictagger.py) stores on a beets item,
computed without beets: the names of the score fields and the values of
the fields a user maps tags to. (Its stamp is `file_tags.stamp_of`, its
labels CSV `tagger.datasets.labels_csv`'s.)

A score field is `<prefix>_<tag>`: the prefix names the model's tag set
(`mtt` for MagnaTagATune, `msd` for the Million Song Dataset's Last.fm
tags, `jamendo` for MTG-Jamendo; a model of another tag set: its file's
name), the tag is lower-cased with each run of other characters than
letters and digits as one `_` ("new age" -> `mtt_new_age`).
"""

from __future__ import annotations

import re

from tagger.datasets.genres import genres_of, tag_set_of

TAG_SET_PREFIXES = {"MagnaTagATune": "mtt", "MSD Last.fm": "msd", "MTG-Jamendo": "jamendo"}
GENRES = "genres"  # a mapped field's tags given as this word: the tag set's genre tags


def slug(text: str) -> str:
    """`text` as a beets field name's part: lower case, letters, digits and `_`."""
    return re.sub(r"[^0-9a-z]+", "_", text.lower()).strip("_") or "tag"


def score_prefix(tag_names, model_name: str) -> str:
    """The prefix of a model's score fields: its tag set's, else the slug of
    `model_name` (`saved.model_file_name`)."""
    return TAG_SET_PREFIXES.get(tag_set_of(tag_names)) or slug(model_name)


def score_fields(prefix: str, tag_names) -> list[str]:
    """The field of each tag's score, in the tags' order, each a name of its
    own: a tag whose slug names a field already made gets the first of
    `_2`, `_3`, ... that is free ("Hip-Hop", "hip-hop" -> `_hip_hop`,
    `_hip_hop_2`; then "hip hop 2" -> `_hip_hop_2_2`). A tag set whose names
    never met keeps the names the n-th tag of one slug always had (`_n`)."""
    fields, made = [], set()
    for tag in tag_names:
        name = base = f"{prefix}_{slug(tag)}"
        suffix = 1
        while name in made:
            suffix += 1
            name = f"{base}_{suffix}"
        made.add(name)
        fields.append(name)
    return fields


def known_score_fields() -> list[str]:
    """The score fields of the tag sets the pretrained taggers score (their
    types are declared before any model is loaded, so range queries work)."""
    from tagger.datasets.msd.tags import CALS_TAGS, CLASSIC_TAGS
    from tagger.datasets.mtt import MTT_TOP50

    return list(dict.fromkeys(score_fields("mtt", MTT_TOP50) + score_fields("msd", CLASSIC_TAGS)
                              + score_fields("msd", CALS_TAGS)))


def check_mapping(mapping: dict, tag_names=None) -> dict:
    """{field: [tag, ...] or GENRES} of the `fields` setting, checked; a
    UserError says what is wrong. With `tag_names`, GENRES becomes
    {tag: genre} of the model's tag set."""
    from tagger.errors import UserError

    checked = {}
    for field, tags in (mapping or {}).items():
        if not isinstance(field, str) or slug(field) != field:
            raise UserError(f"musictagger fields: {field!r} is not a field name; use lower "
                            "case letters, digits and _ (e.g. genres, mood)")
        if tags == GENRES:
            checked[field] = genres_of(tag_names) if tag_names is not None else GENRES
        elif isinstance(tags, list) and all(isinstance(t, str) for t in tags):
            if tag_names is not None and tags and not set(tags) & set(tag_names):
                # none can be chosen, so the field is never filled (a list may name
                # several models' tags: each fills it with its own)
                raise UserError(f"musictagger fields: {field} lists none of the model's "
                                f"tags ({', '.join(tags)}); its tags: {', '.join(tag_names)}")
            checked[field] = {tag: tag for tag in tags}
        else:
            raise UserError(f"musictagger fields: {field} takes a list of tags or the word "
                            f"{GENRES!r}, got {tags!r}")
    return checked


def mapped_values(chosen, mapping: dict) -> dict:
    """{field: [value, ...]} for each field of `mapping` ({field: {tag:
    value}}, `check_mapping`) that one of the `chosen` tags (highest score
    first) maps to; a field none maps to is left out."""
    values = {}
    for field, tags in mapping.items():
        found = list(dict.fromkeys(tags[tag] for tag in chosen if tag in tags))
        if found:
            values[field] = found
    return values
