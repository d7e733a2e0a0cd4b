"""The model zoo: the nine taggers whose trained weights Won et al. 2020
published (minzwon/sota-music-tagging-models, "Evaluation of CNN-based
automatic music tagging models", SMC 2020) -> the matching family of ours
(`--from zoo`).

Source: `models/<dataset>/<folder>/best_model.pth` for dataset mtat, msd
or jamendo: PyTorch state dicts of the modules of `training/model.py`
(blocks from `training/modules.py`). Keys may carry DataParallel's
`module.` prefix. Each model is one `ZooModel`, defined with its tensor
map in a module `tagger.convert.zoo_<name>` listed in `_MODULES`.

Spectrogram front ends are torchaudio's MelSpectrogram (16 kHz, n_fft
512, hop 256, HTK mel scale without norm over 0-8000 Hz, power 2) and
AmplitudeToDB() (10 log10, floor 1e-10, no top_db): the families'
`LOGMEL`. Their buffers `spec.spectrogram.window` and `spec.mel_scale.fb`
are checked against our front end, not taken as weights (old torchaudio
saved the filter bank empty until first use; either is accepted). The
sample-level models read raw waveforms: no front end (their factories
take no sample rate). The Harmonic CNN's harmonic STFT stores one buffer,
its window, checked by `zoo_hcnn` with `check_hann_window`.

Tags, in output order (the files say nothing of them; `--dataset` picks):
- mtat: `split/mtat/tags.npy` (a NumPy file; the columns of `binary.npy`):
  the MagnaTagATune top-50 by descending frequency, our `MTT_TOP50` (the
  same 50 names in the same order as the list loaded from this file and
  printed in Spijkervet/CLMR issue #2, whose MagnaTagATune loader
  downloads it).
- msd: `split/msd/50tagList.txt` (the columns of `msd_id_to_tag_vector.cP`):
  our `CLASSIC_TAGS`, with its capitalisation.
- jamendo: `training/data_loader/jamendo_loader.py`'s `TAGS`, which
  sklearn's LabelBinarizer orders alphabetically (its `classes_`) to make
  the label vectors of the `split/mtg-jamendo/autotagging_top50tags-*.tsv`
  tracks: `JAMENDO_TAGS` below, already sorted.
"""

from __future__ import annotations

import dataclasses
import importlib
from collections.abc import Callable

import numpy as np

from tagger.convert import mapping
from tagger.convert.converter import Converter, Option
from tagger.convert.mapping import ConversionError, WeightMap

DATASETS = ("mtat", "msd", "jamendo")
SAMPLE_RATE = 16000
MEL_BUFFERS = ("spec.spectrogram.window", "spec.mel_scale.fb")

# training/data_loader/jamendo_loader.py TAGS, sorted as LabelBinarizer's classes_.
JAMENDO_TAGS = tuple(sorted((
    "genre---downtempo", "genre---ambient", "genre---rock", "instrument---synthesizer",
    "genre---atmospheric", "genre---indie", "instrument---electricpiano", "genre---newage",
    "instrument---strings", "instrument---drums", "instrument---drummachine",
    "genre---techno", "instrument---guitar", "genre---alternative",
    "genre---easylistening", "genre---instrumentalpop", "genre---chillout",
    "genre---metal", "mood/theme---happy", "genre---lounge", "genre---reggae",
    "genre---popfolk", "genre---orchestral", "instrument---acousticguitar",
    "genre---poprock", "instrument---piano", "genre---trance", "genre---dance",
    "instrument---electricguitar", "genre---soundtrack", "genre---house",
    "genre---hiphop", "genre---classical", "mood/theme---energetic", "genre---electronic",
    "genre---world", "genre---experimental", "instrument---violin", "genre---folk",
    "mood/theme---emotional", "instrument---voice", "instrument---keyboard", "genre---pop",
    "instrument---bass", "instrument---computer", "mood/theme---film", "genre---triphop",
    "genre---jazz", "genre---funk", "mood/theme---relaxing")))


@dataclasses.dataclass(frozen=True)
class ZooModel:
    """One of the release's models and how its state dict maps onto ours.

    `holds(state)`: the keys are this model's (checked in `_MODULES`
    order, so a model whose keys are a subset of another's comes later);
    `args(state)`: our factory's arguments read from tensor shapes;
    `map(weights, args)`: every tensor moved with `mapping` helpers;
    `front_end(state, source, spec)`: factory keywords of the front end
    checked against the file's buffers, and the buffer keys it checked
    (default: the torchaudio mel front end, `mel_front_end`).
    """

    family: str  # ours, `--model`
    folder: str  # models/<dataset>/<folder>/best_model.pth
    part: str  # pretrained names: <dataset>-<part>
    title: str
    window: int  # input samples at 16 kHz, as training/main.py crops them
    approx_mb: float  # float32 weights of the paper-size model
    holds: Callable[[dict], bool]
    args: Callable[[dict], dict]
    map: Callable[[WeightMap, dict], None]
    front_end: Callable | None = None
    msd_mb: float | None = None  # where the MSD model is larger (Musicnn)

    def weights_mb(self, dataset: str) -> float:
        """MB of float32 weights of the model trained on `dataset`."""
        return self.msd_mb if dataset == "msd" and self.msd_mb else self.approx_mb


# SampleCNNSE holds the keys short_res is detected by (layer1.conv_1, dense2):
# zoo_sample_level comes first.
_MODULES = ("zoo_sample_level", "zoo_cnnsa", "zoo_short_chunk", "zoo_musicnn", "zoo_crnn",
            "zoo_hcnn")


def zoo_models() -> tuple:
    """Every ZooModel, in detection order."""
    found = []
    for name in _MODULES:
        found.extend(importlib.import_module(f"tagger.convert.{name}").ZOO)
    return tuple(found)


def zoo_model(family: str) -> ZooModel:
    for entry in zoo_models():
        if entry.family == family:
            return entry
    raise ValueError(f"no --from zoo model {family!r}; valid: {', '.join(models())}")


def models() -> tuple:
    """Our family names the release's weights convert into (`--model`)."""
    return tuple(entry.family for entry in zoo_models())


def default_tags(dataset: str) -> tuple:
    """The output order of the release's models trained on `dataset`."""
    if dataset == "mtat":
        from tagger.datasets.mtt import MTT_TOP50  # split/mtat/tags.npy

        return tuple(MTT_TOP50)
    if dataset == "msd":
        from tagger.datasets.msd.tags import CLASSIC_TAGS  # split/msd/50tagList.txt

        return tuple(CLASSIC_TAGS)
    if dataset == "jamendo":
        return JAMENDO_TAGS
    raise ValueError(f"dataset must be one of {DATASETS}, got {dataset!r}")


def family_of(state: dict) -> str | None:
    """Which of our families the state dict holds, by its keys (None: none)."""
    for entry in zoo_models():
        if entry.holds(state):
            return entry.family
    return None


def convert(path: str, model: str, dataset: str):
    """Returns (model, info) for `best_model.pth` of `model` (one of
    `models()`) trained on `dataset` (one of DATASETS) at `path`."""
    source = path.rsplit("/", 1)[-1]
    state = mapping.read_torch_file(path)  # DataParallel's prefix removed
    found = family_of(state)
    if found is None:
        raise ConversionError(
            f"{source} holds none of the release's models ({', '.join(models())}) by its "
            "tensor names; --from zoo takes models/<dataset>/<model>/best_model.pth of "
            "minzwon/sota-music-tagging-models")
    if found != model:
        raise ConversionError(f"{source} holds the {found} model "
                              f"(models/*/{zoo_model(found).folder}/), not {model}; pass "
                              f"--model {found}")
    entry = zoo_model(model)
    args = entry.args(state)
    from tagger.models import family

    spec = family(model)
    front_end = entry.front_end or mel_front_end
    keywords, checked = front_end(state, source, spec)
    rate = {} if spec.raw_waveform else {"sample_rate": SAMPLE_RATE}  # raw: no front end
    ours = spec.build(**rate, **keywords, **args)
    weights = WeightMap(state, ours, source)
    for key in checked:
        weights.skip(key)
    entry.map(weights, args)
    weights.finish()
    logmel = keywords.get("logmel")
    info = dict(model=model, model_args=args, sample_rate=SAMPLE_RATE,
                window_segments=spec.window_segments, segment_length=spec.segment_length,
                logmel=None if logmel is None else dataclasses.asdict(logmel),
                dataset=dataset, default_tags=default_tags(dataset))
    return ours, info


def channels_and_tags(first: str, ndim: int, head: str) -> Callable[[dict], dict]:
    """`ZooModel.args` of a factory taking num_tags (the rows of Linear
    `head`) and n_channels (the filters of `first`, a kernel of `ndim`
    dimensions)."""
    return lambda state: dict(num_tags=mapping.shape(state, head, 2)[0],
                              n_channels=mapping.shape(state, first, ndim)[0])


def map_head(weights: WeightMap) -> None:
    """The two-layer head dense1 / bn / dense2 -> head_dense / head_bn / tags."""
    mapping.dense(weights, "head_dense", "dense1")
    mapping.batch_norm(weights, "head_bn", "bn")
    mapping.dense(weights, "tags", "dense2")


def check_hann_window(window, n_fft: int, source: str) -> None:
    """A ConversionError unless the stored STFT `window` (None: not stored)
    is the periodic Hann window of `n_fft` samples (torch.hann_window's)."""
    if window is None:
        return
    hann = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(n_fft) / n_fft)  # periodic
    if window.shape != (n_fft,) or not np.allclose(window, hann, atol=1e-6):
        raise ConversionError(f"{source}: the stored STFT window {window.shape} is not "
                              f"the periodic Hann window of {n_fft} samples")


def mel_front_end(state: dict, source: str, spec):
    """({'logmel': the family's log-mel settings}, MEL_BUFFERS), checked
    against the torchaudio buffers the file stores (the Hann window; the
    mel filter bank unless empty, whose width sets the mel bins)."""
    logmel = spec.logmel
    check_hann_window(state.get("spec.spectrogram.window"), logmel.n_fft, source)
    bank = state.get("spec.mel_scale.fb")
    if bank is None or bank.size == 0:  # saved before first use: the paper's bank
        return {"logmel": logmel}, MEL_BUFFERS
    if bank.ndim != 2 or bank.shape[0] != 1 + logmel.n_fft // 2:
        raise ConversionError(f"{source}: the stored mel filter bank {bank.shape} is not "
                              f"one of {1 + logmel.n_fft // 2} STFT bins")
    from tagger.layers.mel_filters import mel_filter_bank  # Keras: not for the tag lists

    logmel = dataclasses.replace(logmel, n_mels=int(bank.shape[1]))
    ours = mel_filter_bank(SAMPLE_RATE, logmel.n_fft, logmel.n_mels, logmel.f_min,
                           logmel.f_max, scale="htk", norm=None)
    # torchaudio computes the bank in float32: up to ~2e-5 from ours on peaks of 1
    difference = float(np.abs(bank - ours).max())
    if difference > 1e-4:
        raise ConversionError(
            f"{source}: the stored mel filter bank differs from the HTK bank over "
            f"0-8000 Hz at 16 kHz (max difference {difference:.3g}); the file was "
            "trained with other spectrogram settings")
    return {"logmel": logmel}, MEL_BUFFERS


# last: the zoo_* modules import this one
CONVERTER = Converter(
    "zoo", convert, lambda options: default_tags(options["dataset"]),
    options=(Option("model", models(), required=True,
                    help="the model SOURCE holds (models/<dataset>/<model>/; the release's "
                         "'short' is short_cnn, 'sample' sample_level, 'se' sample_level_se, "
                         "'attention' cnnsa)"),
             Option("dataset", DATASETS, required=True,
                    help="the dataset SOURCE was trained on, which names its outputs "
                         "(models/<dataset>/)")))
