"""The registry against what the releases hold: every Won et al. 2020 name
is a file of the release's last commit (its list is the registry's own
data, `ZOO_RELEASE_FILES`), reached by one plain-git URL."""

from __future__ import annotations

import pytest

from tagger import pretrained
from tagger.errors import UserError
from tagger.pretrained.registry import ZOO_RELEASE_FILES

RELEASE = "https://github.com/minzwon/sota-music-tagging-models/raw/master/"


def zoo_entries():
    return [entry for entry in pretrained.MODELS.values() if entry.converter == "zoo"]


def test_every_zoo_name_is_a_file_the_release_holds():
    entries = zoo_entries()
    assert len(ZOO_RELEASE_FILES) == len(set(ZOO_RELEASE_FILES)) == 25
    assert all(path.startswith("models/") and path.endswith("/best_model.pth")
               for path in ZOO_RELEASE_FILES)
    named = []
    for entry in entries:
        path = "models/" + entry.file_name
        assert path in ZOO_RELEASE_FILES, entry.name
        assert entry.urls == (RELEASE + path,), entry.name  # plain git: one URL, no LFS host
        dataset, folder = entry.file_name.split("/")[:2]
        assert entry.name.startswith(dataset + "-")
        assert dict(entry.options)["dataset"] == dataset
        named.append(path)
    assert len(named) == len(set(named)) == 23
    assert sorted(set(ZOO_RELEASE_FILES) - set(named)) == [
        "models/best_model.pth", "models/msd/musicnn600/best_model.pth"]


@pytest.mark.parametrize("name", ["mtat-short-res", "mtat-short-cnn", "msd-short-cnn",
                                  "jamendo-short-cnn"])
def test_names_of_files_the_release_lacks_are_gone(name):
    with pytest.raises(UserError, match=f"no pretrained model '{name}'"):
        pretrained.get(name)


def test_the_short_chunk_resnets_are_msd_and_jamendo():
    assert [e.name for e in zoo_entries() if dict(e.options)["model"] == "short_res"] == [
        "msd-short-res", "jamendo-short-res"]
    assert pretrained.get("msd-short-res").file_name == "msd/short_res/best_model.pth"
    assert pretrained.get("mtat-sample-level-se").file_name == "mtat/se/best_model.pth"
    assert pretrained.get("jamendo-cnnsa").file_name == "jamendo/attention/best_model.pth"
