"""The musicnn package's own code on audio files, as the golden test's
reference; run in a process of its own (the package's `extractor` module
turns TensorFlow's eager execution off for the whole process):

    python tests/convert/musicnn_reference.py WHEEL OUT.npz MODEL[,MODEL...] FILE...
        [--shipped]

It unpacks the package from the wheel into a scratch folder and imports its
`extractor` (graph: `models.py` under `tf.compat.v1.layers`, which needs
tf-keras, `TF_USE_LEGACY_KERAS=1`; checkpoint restored by its Saver; sigmoid;
its batching), with two changes, both said in docs/pretrained.md:

- librosa's STFT pads with reflection, as librosa 0.7 (the package's
  version) did by default; librosa >= 0.10 pads with zeros.
- the overflow is mended: the package's `batch_data` computes 10000 * x in
  float16 (its features' type), which is infinite wherever the mel energy
  exceeds 6.55. `mended_batch_data` is its code with that product in
  float32; the float16 rounding of the energies stays.

For every file OUT holds `features/<i>` (the mended windows), and from the
package's own `batch_data` `overflow/<i>` (the fraction of its values that
are infinite) and `agree/<i>` (the largest difference from the mended
features where the package's are finite); for every model
`<MODEL>/<i>/taggram` and the features `extractor` returns
(`<MODEL>/<i>/penultimate`, `max_pool`, `mean_pool` for Musicnn, `pool5`
for VGG). With --shipped, also `<MODEL>/<i>/shipped`: the taggram of the
package as shipped (its overflow kept, its infinities in the graph). A
test helper, not part of the project.
"""

from __future__ import annotations

import functools
import os
import shutil
import sys
import tempfile
import zipfile

os.environ["TF_USE_LEGACY_KERAS"] = "1"  # tf.compat.v1.layers come from tf-keras
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

FEATURES = {"musicnn": ("penultimate", "max_pool", "mean_pool"), "vgg": ("pool5",)}


def main(argv) -> int:
    shipped = "--shipped" in argv
    argv = [a for a in argv if a != "--shipped"]
    wheel, out, models, files = argv[0], argv[1], argv[2].split(","), argv[3:]
    scratch = tempfile.mkdtemp(prefix="musicnn-reference-")
    try:
        with zipfile.ZipFile(wheel) as archive:
            archive.extractall(scratch, [name for name in archive.namelist()
                                         if name.startswith("musicnn/")])
        sys.path.insert(0, scratch)
        results = run(models, files, shipped)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    import numpy as np

    np.savez(out, **results)
    return 0


def run(models, files, with_shipped=False) -> dict:
    import librosa
    import numpy as np
    from musicnn import configuration, extractor  # the package's own code

    librosa.feature.melspectrogram = functools.partial(librosa.feature.melspectrogram,
                                                       pad_mode="reflect")
    shipped = extractor.batch_data

    def mended_batch_data(audio_file, n_frames, overlap):
        """The package's batch_data, 10000 * x taken in float32."""
        audio, sr = librosa.load(audio_file, sr=configuration.SR)
        audio_rep = librosa.feature.melspectrogram(
            y=audio, sr=sr, hop_length=configuration.FFT_HOP, n_fft=configuration.FFT_SIZE,
            n_mels=configuration.N_MELS).T
        audio_rep = audio_rep.astype(np.float16)
        audio_rep = np.log10(10000 * audio_rep.astype(np.float32) + 1)
        last_frame = audio_rep.shape[0] - n_frames + 1
        batch = np.stack([audio_rep[start:start + n_frames]
                          for start in range(0, last_frame, overlap)])
        return batch, audio_rep

    extractor.batch_data = mended_batch_data
    results = {}
    for i, path in enumerate(files):
        package, _ = shipped(path, 187, 187)
        mended, _ = mended_batch_data(path, 187, 187)
        finite = np.isfinite(package)
        results[f"features/{i}"] = mended
        results[f"overflow/{i}"] = np.float64(1.0 - finite.mean())
        results[f"agree/{i}"] = np.float64(np.abs(package[finite] - mended[finite]).max())
        for model in models:
            taggram, _, features = extractor.extractor(path, model=model, input_length=3,
                                                       extract_features=True)
            results[f"{model}/{i}/taggram"] = np.asarray(taggram, np.float32)
            for name in FEATURES["vgg" if "vgg" in model else "musicnn"]:
                value = np.asarray(features[name], np.float32)
                results[f"{model}/{i}/{name}"] = value.reshape(len(taggram), -1)
            if with_shipped:
                extractor.batch_data = shipped
                taggram, _ = extractor.extractor(path, model=model, input_length=3,
                                                 extract_features=False)
                results[f"{model}/{i}/shipped"] = np.asarray(taggram, np.float32)
                extractor.batch_data = mended_batch_data
    return results


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
