"""The Million Song Dataset: label sources, audio layouts and the artist-level split.

Modules: tags (the CALS and classic tag lists, known broken ids), sqlite
(streamed reads of track_metadata.db and lastfm_tags.db), pickles (safe
reading of Python 2 pickles), labels (the three label sources), split
(artist-level stratified split), layout (where each track's audio lies),
plan (a DatasetPlan for the record writer).
"""
