"""The published taggers our converters read, by stable name.

Each entry says where the original file is, what it is (dataset, split,
tags, input), how it converts (`tagger.convert` source and options),
which figures its release or paper states (cited, not copied) and, where
known, the file's size and sha256 (`checksum`: a file that differs is
refused). The licence is as the release states it: the two MagnaTagATune
repositories (tae-jun/resemul, minzwon/self-attention-music-tagging)
carry no licence file and their READMEs name none; minzwon/semi-
supervised-music-tagging-transformer's README states MIT (Copyright (c)
2021 ByteDance).
"""

from __future__ import annotations

import dataclasses

from tagger.convert.sota import zoo as sota_zoo
from tagger.errors import UserError
from tagger.pretrained.checksum import Checksum

SEGMENT = 59049  # samples in one window segment, every family


@dataclasses.dataclass(frozen=True)
class Pretrained:
    name: str  # stable: the registry key users type
    title: str  # one line: what it is
    urls: tuple  # the original download URL(s), first tried first
    file_name: str  # the original file's name (also under TAGGER_WEIGHTS_URL)
    licence: str  # as the release states it
    release: str  # the repository that published it
    dataset: str
    split: str
    sample_rate: int
    window_samples: int
    converter: str  # tagger.convert source: resemul, self_attention, transformer, sota
    options: tuple = ()  # (flag, value) pairs for the converter: block, size, model, dataset
    figures: str = ""  # the published figures, with their source
    approx_mb: float = 0.0  # MB of float32 weights (parameters x 4): the least the file holds
    # the original file's size and sha256 where known: a file that differs is
    # refused; None: the first file that converts is recorded and trusted
    checksum: Checksum | None = None

    def tags(self) -> tuple:
        """The tag names in output order, as the converter writes them."""
        if self.converter == "resemul":
            from tagger.convert.resemul import default_tags
        elif self.converter == "self_attention":
            from tagger.convert.self_attention import default_tags
        elif self.converter == "sota":
            from tagger.convert.sota import default_tags

            return tuple(default_tags(dict(self.options)["dataset"]))
        else:
            from tagger.datasets.msd.tags import CALS_TAGS

            return tuple(CALS_TAGS)
        return tuple(default_tags())

    @property
    def window_seconds(self) -> float:
        return self.window_samples / self.sample_rate


_RESEMUL = dict(
    licence="none stated (tae-jun/resemul has no licence file)",
    release="github.com/tae-jun/resemul", dataset="MagnaTagATune top-50",
    split="folders 0-b train, c val, d-f test (15250 / 1529 / 4332)",
    sample_rate=22050, window_samples=SEGMENT, converter="resemul")
_TRANSFORMER = dict(
    licence="MIT (release README; Copyright (c) 2021 ByteDance)",
    release="github.com/minzwon/semi-supervised-music-tagging-transformer",
    dataset="Million Song Dataset, Last.fm top-50",
    split="CALS (artist-level): 163504 train / 34730 valid / 34913 test",
    sample_rate=22050, window_samples=4 * SEGMENT, converter="transformer",
    figures="MSD CALS test ROC-AUC / PR-AUC: the release README's table image "
            "'Performance using the CALS split' and Won, Choi, Serra, ISMIR 2021 "
            "(not copied: published as an image)")
_TRANSFORMER_URL = ("https://github.com/minzwon/semi-supervised-music-tagging-transformer"
                    "/raw/master/data/")
# Won et al. 2020's release: every best_model.pth under models/ at its last
# commit (the merge of 2021-08-25), plain git files (the repository has no
# .gitattributes: GitHub's raw link serves the bytes). One commit renamed
# msd's and jamendo's `short` folders `short_res` and added the stray
# models/best_model.pth, whose dataset and model the release does not state.
# Every file has the same name, so `file_name` keeps the folders: the cache and
# a mirror hold <dataset>/<model>/best_model.pth.
_SOTA_REPO = "minzwon/sota-music-tagging-models"
SOTA_RELEASE_FILES = (
    "models/best_model.pth",
    *(f"models/mtat/{folder}/best_model.pth" for folder in (
        "attention", "crnn", "fcn", "hcnn", "musicnn", "sample", "se")),
    *(f"models/msd/{folder}/best_model.pth" for folder in (
        "attention", "crnn", "fcn", "hcnn", "musicnn", "musicnn600", "sample", "se",
        "short_res")),
    *(f"models/jamendo/{folder}/best_model.pth" for folder in (
        "attention", "crnn", "fcn", "hcnn", "musicnn", "sample", "se", "short_res")),
)
# Size and sha256 of the release files known here (as a TFDS checksums file
# pins a dataset's downloads): read from the files themselves, two
# independent copies of the repository agreeing on every blob.
SOTA_CHECKSUMS = {
    "models/mtat/fcn/best_model.pth": Checksum(
        1902811, "e89d751202d38c3ae69855782bc27010f87051958dbec64f5aa762364dbac271"),
    "models/mtat/crnn/best_model.pth": Checksum(
        1687630, "cd22fc70cafd06f8f2bfc7dd795abccb1f4b50d5b09094c39ad100baf87475a3"),
    "models/mtat/musicnn/best_model.pth": Checksum(
        3257172, "690ace3bb5d49d90dd38fe3ec05a1185350b3bc3742bd7ee941f56b649b2c893"),
    "models/msd/fcn/best_model.pth": Checksum(
        1902815, "6012aa7eecf864a8081faedca56af054521e8dfb9c5c98659a3dd5d3e1e66f21"),
    "models/msd/crnn/best_model.pth": Checksum(
        1687711, "ebb99855ed0c83f38845db9cfb383dd6fc70938bc58701dcb66e18af9ee7fbea"),
    "models/jamendo/fcn/best_model.pth": Checksum(
        1902815, "7bce08a66dbc70d096b0a330f44b4cacd9aa25519b83489fbb98f2164a194e2b"),
    "models/jamendo/crnn/best_model.pth": Checksum(
        1687626, "0a558989c0793f488cb677d188464c91f47c007f7c70473230e55537ca598215"),
    "models/jamendo/musicnn/best_model.pth": Checksum(
        3257168, "66280f4859376377c47f64313c7ac889a3201fdb06a01bf6e94ac6e619081bb5"),
}
_SOTA_DATASETS = {
    "mtat": ("MagnaTagATune top-50", "the release's split/mtat train/valid/test.npy (the "
             "sample-level CNN papers' split; clips of 29.1 s or more with a top-50 tag)"),
    "msd": ("Million Song Dataset, Last.fm top-50 (50tagList.txt)",
            "the release's split/msd: filtered_list_train.cP (first 201680 train, the "
            "other 11774 valid), filtered_list_test.cP (28435 test); clips of 29.1 s or more"),
    "jamendo": ("MTG-Jamendo top-50 (genre, instrument, mood/theme)",
                "the release's split/mtg-jamendo autotagging_top50tags-train/validation/"
                "test.tsv"),
}


def _sota(dataset: str, model) -> Pretrained:
    """The entry of `model` (a `tagger.convert.sota.ZooModel`) trained on `dataset`."""
    part, title, folder, window = model.part, model.title, model.folder, model.window
    what, split = _SOTA_DATASETS[dataset]
    path = f"models/{dataset}/{folder}/best_model.pth"
    paper = "Won, Ferraro, Bogdanov, Serra, SMC 2020, Table 2"
    return Pretrained(
        name=f"{dataset}-{part}", title=f"{title}, as Won et al. 2020 trained it",
        urls=(f"https://github.com/{_SOTA_REPO}/raw/master/{path}",),
        file_name=f"{dataset}/{folder}/best_model.pth",
        licence="MIT (LICENSE: Copyright (c) 2020 Music Technology Group, Universitat "
                "Pompeu Fabra)",
        release=f"github.com/{_SOTA_REPO}", dataset=what, split=split, sample_rate=16000,
        window_samples=window, converter="sota",
        options=(("model", model.family), ("dataset", dataset)),
        figures=f"{paper} (ROC-AUC / PR-AUC; not copied)", approx_mb=model.weights_mb(dataset),
        checksum=SOTA_CHECKSUMS.get(path))


def _sota_entries() -> tuple:
    """One entry per release file our converter reads: models/<dataset>/<folder>/
    for a ZooModel's folder. Not listed: the stray models/best_model.pth
    (no dataset or model stated) and msd's musicnn600 (a model type that
    training/main.py's --model_type does not name)."""
    by_folder = {model.folder: model for model in sota_zoo()}
    entries = []
    for path in SOTA_RELEASE_FILES:
        parts = path.split("/")
        if len(parts) == 4 and parts[2] in by_folder:
            entries.append(_sota(parts[1], by_folder[parts[2]]))
    return tuple(entries)


MODELS = {entry.name: entry for entry in (
    Pretrained(
        name="mtat-samplecnn-se", title="sample-level CNN, SE blocks, multi-level "
        "(Kim, Lee, Nam 2018)",
        urls=("https://www.dropbox.com/s/r8qlxbol2p4ods5/se-multi-auc_0.9111-tfrmodel.hdf5"
              "?dl=1",),
        file_name="se-multi-auc_0.9111-tfrmodel.hdf5", options=(("block", "se"),),
        figures="MTT test ROC-AUC 0.9111 (the file's name; Kim, Lee, Nam, ICASSP 2018: "
                "SE+multi)", approx_mb=99, **_RESEMUL),
    Pretrained(
        name="mtat-samplecnn-rese", title="sample-level CNN, ReSE blocks, multi-level "
        "(Kim, Lee, Nam 2018)",
        urls=("https://www.dropbox.com/s/fr3y1o3hyha0n2m/rese-multi-auc_0.9113-tfrmodel.hdf5"
              "?dl=1",),
        file_name="rese-multi-auc_0.9113-tfrmodel.hdf5", options=(("block", "rese"),),
        figures="MTT test ROC-AUC 0.9113 (the file's name; Kim, Lee, Nam, ICASSP 2018: "
                "ReSE+multi)", approx_mb=109, **_RESEMUL),
    Pretrained(
        name="mtat-self-attention", title="self-attention tagger (Won, Chun, Serra 2019), "
        "the released visualisation variant",
        urls=("https://github.com/minzwon/self-attention-music-tagging/raw/master/models/"
              "ponswon.pth",),
        file_name="ponswon.pth",
        licence="none stated (minzwon/self-attention-music-tagging has no licence file)",
        release="github.com/minzwon/self-attention-music-tagging",
        dataset="MagnaTagATune top-50",
        split="the release's preprocessing/mtat/split.py: folders 0-b train, c valid, "
              "d-f test",
        sample_rate=16000, window_samples=SEGMENT, converter="self_attention",
        figures="the release states none; Won et al. 2020's comparison of "
                "taggers, self-attention: MTT ROC-AUC 0.9077, PR-AUC 0.4445", approx_mb=28),
    Pretrained(
        name="msd-transformer", title="Music Tagging Transformer, teacher "
        "(Won, Choi, Serra 2021)",
        urls=(_TRANSFORMER_URL + "teacher.ckpt",), file_name="teacher.ckpt",
        options=(("size", "teacher"),), approx_mb=19, **_TRANSFORMER),
    Pretrained(
        name="msd-transformer-student", title="Music Tagging Transformer, compact "
        "distilled student (Won, Choi, Serra 2021)",
        urls=(_TRANSFORMER_URL + "compact_student.ckpt",), file_name="compact_student.ckpt",
        options=(("size", "student"),), approx_mb=23, **_TRANSFORMER),
    *_sota_entries(),
)}


def names() -> tuple:
    return tuple(MODELS)


def get(name: str) -> Pretrained:
    """The entry `name`; UserError listing the names for an unknown one."""
    try:
        return MODELS[name]
    except KeyError:
        raise UserError(f"no pretrained model {name!r}; the names are: "
                        f"{', '.join(MODELS)} (tagger-pretrained list)") from None
