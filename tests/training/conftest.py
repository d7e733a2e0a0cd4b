"""Fixtures the training tests share."""

import pytest

from tests.checks import built_once
from tests.training.own_tags_data import BODY_RATE, BODY_WINDOW, build, write_body, write_music


@pytest.fixture(scope="session")
def own(tmp_path_factory):
    """(music folder, records at 22050 Hz, records at the body's rate and
    window, the body) of the tones, built once."""
    def make(folder):
        music = folder / "music"
        music.mkdir()
        write_music(music)
        return (str(music), build(music, folder / "records", music / "labels.csv"),
                build(music, folder / "body_records", music / "labels.csv",
                      sample_rate=BODY_RATE, segment_length=BODY_WINDOW),
                write_body(folder / "body.keras"))

    return built_once(tmp_path_factory, "own_tags", make)


