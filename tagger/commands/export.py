"""Exports a trained tagger for serving: a SavedModel folder or a TFLite file.

    python export.py log/samplecnn-se-multi/model.keras --format saved_model
    python export.py log/samplecnn-se-multi/model.keras --format tflite
    python export.py log/samplecnn-se-multi/model.keras --format tflite \
        --quantization int8 --calibration-audio music/

The export takes raw mono float32 audio at the model's sample rate, in
windows of the model's input length, and returns tag scores; log-mel-input
models get their log-mel front end folded in. See tagger/inference/export/formats.py
for the signatures.
"""

from __future__ import annotations

from tagger import cli
from tagger.cli import ArgumentParser


def parse_args(argv=None):
    p = ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("model", metavar="MODEL", type=cli.model_name_or_path,
                   help="a .keras or .hdf5 model written by train.py, or a pretrained "
                        "name (tagger-pretrained list)")
    p.add_argument("--format", default="saved_model", choices=["saved_model", "tflite"],
                   help="saved_model (a folder) or tflite (a file); default: tflite for an "
                        "--out ending in .tflite, else saved_model")
    p.add_argument("--out", default=None, metavar="PATH",
                   help="output path (default: beside the model, <name>_saved_model "
                        "or <name>.tflite)")
    p.add_argument("--overwrite", action="store_true",
                   help="replace an earlier export at --out (a SavedModel folder holding "
                        "other files is refused, never emptied)")
    p.add_argument("--quantization", default=None, choices=["fp16", "dynamic", "int8"],
                   help="TFLite only: fp16 (float16 weights), dynamic (int8 weights, "
                        "activations quantised on the fly) or int8 (int8 weights and "
                        "activations, sample-level CNNs only; needs --calibration-audio); "
                        "default float32")
    p.add_argument("--calibration-audio", nargs="+", default=(), metavar="PATH",
                   help="with --quantization int8: audio files or folders (searched "
                        "recursively) like what the model will tag; up to 32 windows "
                        "spread over them measure each layer's range")
    p.add_argument("--no-verify", action="store_true",
                   help="skip reloading the export and comparing its scores with Keras")
    p.add_argument("--max-score-difference", type=float, default=None, metavar="D",
                   help="the largest score difference from the Keras model the check may "
                        "find before the export is refused and nothing is written; default "
                        "0.001 for float32, 0.02 fp16, 0.05 dynamic, 0.08 int8")
    args = p.parse_args(argv)
    cli.format_of_out(args, {".tflite": "tflite"})
    return args


def main(argv=None):
    return cli.main(run, parse_args(argv))


def run(args) -> int:
    from tagger.pretrained import resolve_model

    args.model = resolve_model(args.model, progress=not getattr(args, "no_progress", False))

    import sys

    from tagger.inference.export.config import ExportConfig
    from tagger.inference.export.formats import export

    config = ExportConfig(model=args.model, format=args.format, out=args.out,
                          overwrite=args.overwrite, verify=not args.no_verify,
                          quantization=args.quantization,
                          calibration_audio=tuple(args.calibration_audio),
                          max_score_difference=args.max_score_difference)
    result = export(config, log=lambda line: print(line, file=sys.stderr))
    seconds = result.window_samples / result.sample_rate
    kind = result.format + (f", {result.quantization}" if result.quantization else "")
    grid = ""
    if result.edge_padding:
        grid = (f", one every {result.hop_samples} samples of the file padded by "
                f"{result.edge_padding} (reflected) at each edge")
    print(f"wrote {result.path} ({kind}): mono float32 waveform at "
          f"{result.sample_rate} Hz, windows of {result.window_samples} samples "
          f"({seconds:.2f} s){grid} -> {len(result.tag_names)} tag scores")
    print(f"tag names: {result.tags_path}")
    if result.max_difference is not None:
        print(f"verified: largest score difference from the Keras model "
              f"{result.max_difference:.2g} (bound {result.bound:g})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
