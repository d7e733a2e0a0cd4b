"""Won et al. 2020's published weights (minzwon/sota-music-tagging-models,
"Evaluation of CNN-based automatic music tagging models", SMC 2020) ->
our `short_cnn`, `short_res` and `fcn` models.

Source: `models/<dataset>/<model>/best_model.pth` for dataset mtat, msd or
jamendo and model short, short_res or fcn: PyTorch state dicts of the
`ShortChunkCNN`, `ShortChunkCNN_Res` and `FCN` modules of
`training/model.py` (blocks from `training/modules.py`). Keys may carry
DataParallel's `module.` prefix. Parameter names:

    spec.spectrogram.window, spec.mel_scale.fb   torchaudio MelSpectrogram
        buffers: checked against our front end, not weights (old torchaudio
        saved the filter bank empty until first use; either is accepted)
    spec_bn                                      -> input_bn
    ShortChunkCNN, FCN: layer{i}.conv / .bn      -> block{i}_conv / _bn
    ShortChunkCNN_Res: layer{i}.conv_1 / bn_1 / conv_2 / bn_2
                                                 -> block{i}_conv1 / bn1 / conv2 / bn2
                       layer{i}.conv_3 / bn_3    -> block{i}_shortcut_conv / _bn
    short chunk: dense1 / bn / dense2            -> head_dense / head_bn / tags
    FCN: dense                                   -> tags

Front end: torchaudio's MelSpectrogram (16 kHz, n_fft 512, hop 256, HTK
mel scale without norm over 0-8000 Hz, power 2; 128 bins for the short
chunk models, 96 for FCN) and AmplitudeToDB() (10 log10, floor 1e-10, no
top_db): the families' `LOGMEL`. Inputs as `training/main.py` crops them:
59049 samples (short chunk), 29 * 16000 = 464000 (FCN).

Tags, in output order (the files say nothing of them; `--dataset` picks):
- mtat: `split/mtat/tags.npy` (a NumPy file; the columns of `binary.npy`):
  the MagnaTagATune top-50 by descending frequency, our `MTT_TOP50`.
- msd: `split/msd/50tagList.txt` (the columns of `msd_id_to_tag_vector.cP`):
  our `CLASSIC_TAGS`, with its capitalisation.
- jamendo: `training/data_loader/jamendo_loader.py`'s `TAGS`, which
  sklearn's LabelBinarizer orders alphabetically (its `classes_`) to make
  the label vectors of the `split/mtg-jamendo/autotagging_top50tags-*.tsv`
  tracks: `JAMENDO_TAGS` below, already sorted.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from tagger.convert import mapping
from tagger.convert.mapping import ConversionError, WeightMap

MODELS = ("short_cnn", "short_res", "fcn")
DATASETS = ("mtat", "msd", "jamendo")
ORIGINAL_NAMES = {"short_cnn": "short", "short_res": "short_res", "fcn": "fcn"}  # folders
SAMPLE_RATE = 16000
SHORT_BLOCKS, FCN_BLOCKS = 7, 5

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
    """Which of MODELS the state dict holds, by its keys (None: none)."""
    if "layer1.conv_1.weight" in state and "dense2.weight" in state:
        return "short_res"
    if "layer7.conv.weight" in state and "dense2.weight" in state:
        return "short_cnn"
    if "layer5.conv.weight" in state and "dense.weight" in state \
            and "layer6.conv.weight" not in state:
        return "fcn"
    return None


def convert(path: str, model: str, dataset: str):
    """Returns (model, info) for `best_model.pth` of `model` (one of MODELS)
    trained on `dataset` (one of DATASETS) at `path`."""
    source = path.rsplit("/", 1)[-1]
    state = mapping.read_torch_file(path)
    if state and all(k.startswith("module.") for k in state):  # saved from DataParallel
        state = {k[len("module."):]: v for k, v in state.items()}
    found = family_of(state)
    if found is None:
        raise ConversionError(
            f"{source} is none of the release's short_cnn / short_res / fcn weights (no "
            "'layer1.conv.weight' with 'dense2.weight' or 'dense.weight'); --from sota "
            "takes models/<dataset>/<model>/best_model.pth of minzwon/sota-music-tagging-"
            "models")
    if found != model:
        raise ConversionError(f"{source} holds the {found} model "
                              f"(models/*/{ORIGINAL_NAMES[found]}/), not {model}; pass "
                              f"--model {found}")
    first = "layer1.conv_1.weight" if model == "short_res" else "layer1.conv.weight"
    head = "dense.weight" if model == "fcn" else "dense2.weight"
    if state[first].ndim != 4 or state[head].ndim != 2:
        raise ConversionError(f"{source}: '{first}' or '{head}' is not a convolution / "
                              "dense weight")
    args = dict(num_tags=int(state[head].shape[0]), n_channels=int(state[first].shape[0]))
    from tagger.models import family

    spec = family(model)
    logmel = _front_end(state, source, spec.logmel)
    ours = spec.build(sample_rate=SAMPLE_RATE, logmel=logmel, **args)
    weights = WeightMap(state, ours, source)
    weights.skip("spec.spectrogram.window")  # checked by _front_end
    weights.skip("spec.mel_scale.fb")
    _map(weights, model)
    weights.finish()
    info = dict(model=model, model_args=args, sample_rate=SAMPLE_RATE,
                window_segments=spec.window_segments, segment_length=spec.segment_length,
                logmel=dataclasses.asdict(logmel), dataset=dataset,
                default_tags=default_tags(dataset))
    return ours, info


def _front_end(state: dict, source: str, logmel):
    """The family's log-mel settings, checked against the torchaudio buffers
    the file stores (the Hann window; the mel filter bank unless empty)."""
    window = state.get("spec.spectrogram.window")
    bank = state.get("spec.mel_scale.fb")
    if window is not None:
        n_fft = logmel.n_fft
        hann = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(n_fft) / n_fft)  # periodic
        if window.shape != (n_fft,) or not np.allclose(window, hann, atol=1e-6):
            raise ConversionError(f"{source}: the stored STFT window {window.shape} is not "
                                  f"the periodic Hann window of {n_fft} samples")
    if bank is None or bank.size == 0:  # saved before first use: the paper's bank
        return logmel
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
    return logmel


def _map(weights: WeightMap, model: str) -> None:
    mapping.batch_norm(weights, "input_bn", "spec_bn")
    if model == "short_res":
        for i in range(1, SHORT_BLOCKS + 1):
            for theirs, ours in (("conv_1", "conv1"), ("conv_2", "conv2"),
                                 ("conv_3", "shortcut_conv")):
                mapping.conv(weights, f"block{i}_{ours}", f"layer{i}.{theirs}")
            for theirs, ours in (("bn_1", "bn1"), ("bn_2", "bn2"), ("bn_3", "shortcut_bn")):
                mapping.batch_norm(weights, f"block{i}_{ours}", f"layer{i}.{theirs}")
    else:
        for i in range(1, (FCN_BLOCKS if model == "fcn" else SHORT_BLOCKS) + 1):
            mapping.conv(weights, f"block{i}_conv", f"layer{i}.conv")
            mapping.batch_norm(weights, f"block{i}_bn", f"layer{i}.bn")
    if model == "fcn":
        mapping.dense(weights, "tags", "dense")
    else:
        mapping.dense(weights, "head_dense", "dense1")
        mapping.batch_norm(weights, "head_bn", "bn")
        mapping.dense(weights, "tags", "dense2")
