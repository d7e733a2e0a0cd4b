"""`tag(TagConfig)`: the library call behind tag.py."""

from __future__ import annotations

import dataclasses
import os
import sys

from tagger import fileio
from tagger.errors import UserError
from tagger.inference import outputs
from tagger.inference.config import TagConfig
from tagger.inference.inputs import find_audio
from tagger.runtime import native_stderr_silenced


@dataclasses.dataclass
class TagSummary:
    """`results`: tagged files in input order (without per-window arrays);
    `failures`: (path, reason) for every input that was skipped; `report`:
    the table/JSON/CSV text, written to `config.out` when given and at least
    one input was tagged (`out_written`): an empty result never replaces an
    earlier report."""

    results: list
    failures: list
    report: str
    tag_names: list
    out_written: bool = False

    @property
    def exit_code(self) -> int:
        """0 when every input was tagged, 1 when some were skipped."""
        return 1 if self.failures else 0


def tag(config: TagConfig, log=None, quiet_decoders: bool = False) -> TagSummary:
    """Tags every audio file that `config.inputs` names.

    `log(line)` receives warnings and one line per skipped input (default:
    stderr, above the progress bar). Bad inputs are skipped; a missing or
    unusable model, no audio found, or an output that cannot be written is
    a UserError. `quiet_decoders` hides what native libraries print on the
    process's stderr while files are decoded (mpg123's resync notes for a
    damaged MP3), so each skipped file gets exactly one line; the CLI sets it.
    """
    with native_stderr_silenced(quiet_decoders):
        return _tag(config, log)


def _tflite_predictor(model, info, engine: str, files):
    """The TFLite engine; "tflite-int8" is calibrated on windows of `files`."""
    from tagger.inference.quantize import int8_calibration
    from tagger.inference.tflite_predictor import TFLitePredictor
    from tagger.models.saved import raw_audio_input

    calibration = None
    if engine == "tflite-int8":
        sample_rate, window, _ = raw_audio_input(model, info)  # as the model is served
        try:
            calibration = int8_calibration(model, info, files, sample_rate, window)
        except ValueError as error:
            raise UserError(str(error)) from None
        if len(calibration) == 0:
            raise UserError("--engine tflite-int8 measures its ranges on the audio it tags, "
                            "and none of the inputs could be decoded; check the files or "
                            "use --engine tflite")
    return TFLitePredictor(model, info, engine, calibration=calibration)


def _tag(config: TagConfig, log=None) -> TagSummary:
    from tqdm import tqdm

    found = find_audio(config.inputs, config.recursive)
    if not found.files:
        raise UserError(_nothing_found(config.inputs, found))
    _check_destinations(config)

    from tagger.inference.predictor import Predictor
    from tagger.inference.tagging import tag_files
    from tagger.models.saved import load_tagger

    model, info = load_tagger(config.model)
    if config.engine in ("keras", "xla"):
        predictor = Predictor(model, info, embeddings=config.embeddings is not None,
                              jit_compile=config.engine == "xla")
    else:
        predictor = _tflite_predictor(model, info, config.engine, found.files)
    hop = None
    if config.hop is not None:
        hop = int(round(config.hop * predictor.sample_rate))
        if hop < 1:
            raise UserError(f"--hop {config.hop} s is less than one sample at "
                            f"{predictor.sample_rate} Hz")

    bar = tqdm(total=len(found.files), unit="file", desc="tagging", file=sys.stderr,
               disable=not config.progress, dynamic_ncols=True)
    say = log or (lambda line: bar.write(line, file=sys.stderr))
    if predictor.warning:
        say(f"warning: {predictor.warning}")
    failures = list(found.missing)
    for path, reason in found.missing:
        say(f"skipped {path}: {reason}")

    names = {}
    if config.taggram_dir:
        from tagger.inference.taggram import taggram_names, write_index, write_taggram
        try:
            fileio.makedirs(config.taggram_dir)
        except OSError as error:
            raise UserError(f"cannot create --taggram {config.taggram_dir!r}: "
                            f"{error.strerror or error}") from None
        names = taggram_names(found.files)
    writer = None
    if config.embeddings:
        from tagger.inference.embeddings import EmbeddingWriter
        try:
            writer = EmbeddingWriter(config.embeddings)
        except OSError as error:
            raise UserError(f"cannot write --embeddings {config.embeddings!r}: "
                            f"{error.strerror or error}") from None

    results = []
    try:
        for result in tag_files(predictor, found.files, hop_samples=hop,
                                batch_size=config.batch_size, workers=config.workers):
            bar.update(1)
            if not result.ok:
                failures.append((result.path, result.error))
                say(f"skipped {result.path}: {result.error}")
                continue
            if config.taggram_dir:
                write_taggram(config.taggram_dir, names[result.path], result,
                              predictor.tag_names, config.top_k)
            if writer is not None:
                writer.add(result.path, result.embeddings)
            results.append(result.compact())
    except BaseException:
        if writer is not None:
            writer.abort()
        raise
    finally:
        bar.close()
    if writer is not None:
        writer.close()
    if config.taggram_dir and results:
        write_index(config.taggram_dir, {r.path: names[r.path] for r in
                                         sorted(results, key=lambda r: r.index)})

    results.sort(key=lambda r: r.index)
    report = outputs.render(results, predictor.tag_names, config.format, config.top_k,
                            config.threshold)
    written = bool(config.out and results)
    if written:
        fileio.write_output(config.out, report, "--out")
    return TagSummary(results, failures, report, predictor.tag_names, written)


def _nothing_found(inputs, found) -> str:
    named = ", ".join(repr(str(p)) for p in inputs[:3]) + (" ..." if len(inputs) > 3 else "")
    message = f"no audio files found in {named}"
    if found.missing:
        message += f" ({len(found.missing)} not found)"
    if found.subfolders_skipped:
        message += (f"; {found.subfolders_skipped} subfolder(s) were not searched, "
                    "add --recursive")
    return message


def _check_destinations(config: TagConfig) -> None:
    """Fails before any work when an output cannot be written."""
    for flag, path in (("--out", config.out), ("--embeddings", config.embeddings)):
        if path is None:
            continue
        if os.path.isdir(path):
            raise UserError(f"{flag} {path!r} is a folder; give a file name")
        parent = os.path.dirname(os.path.abspath(path))
        if not os.path.isdir(parent):
            raise UserError(f"{flag} {path!r}: folder {parent!r} does not exist")
    if config.taggram_dir and os.path.exists(config.taggram_dir) \
            and not os.path.isdir(config.taggram_dir):
        raise UserError(f"--taggram {config.taggram_dir!r} exists and is not a folder")

