"""Helpers shared by the benchmark scripts (run them from the repository root)."""

from __future__ import annotations

import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from tagger.cpu_features import CPUINFO, cpu_model_and_flags  # noqa: E402
from tagger.host_memory import keep_freed_heap  # noqa: E402
from tagger.multiprocessing_internals import is_loading_main  # noqa: E402
from tagger.runtime import use_pooling_cpu_allocator  # noqa: E402

use_pooling_cpu_allocator()  # as every command does, before TensorFlow's first tensor
keep_freed_heap()  # as every command and worker process does

# The SIMD features a CPU's float32, int8 and bfloat16 kernels depend on, in
# /proc/cpuinfo's names.
SIMD_FEATURES = ("avx2", "fma", "avx512f", "avx512_vnni", "avx_vnni", "avx512_bf16",
                 "amx_tile", "amx_int8", "amx_bf16")


def machine_line(cpuinfo: str = CPUINFO) -> str:
    """'CPU: <model>, <n> cores; SIMD: avx2 avx512f ...' (the features of
    SIMD_FEATURES this CPU has), so figures from machines of different kinds
    can be read side by side."""
    model, flags = cpu_model_and_flags(cpuinfo)
    simd = " ".join(name for name in SIMD_FEATURES if name in flags) or "none found"
    return f"CPU: {model}, {os.cpu_count()} cores; SIMD: {simd}"


# Every bench's output starts with the machine, once: not again where a
# worker process or the workers' fork server loads the bench's module.
if not is_loading_main():
    print(machine_line(), flush=True)


def gpu_memory_as_needed() -> list:
    """The GPUs TensorFlow sees, each set to take its memory as this process
    needs it rather than all at once (before their first use), so that a
    bench's measurements in processes of their own find it free."""
    import tensorflow as tf

    gpus = tf.config.list_physical_devices("GPU")
    for device in gpus:
        tf.config.experimental.set_memory_growth(device, True)
    return gpus


def timed(fn, *args, **kwargs):
    """(result, seconds) of one call."""
    start = time.perf_counter()
    result = fn(*args, **kwargs)
    return result, time.perf_counter() - start


def model_only(predictor, windows, batch_size: int) -> float:
    """Seconds for `predictor` to score `windows`, `batch_size` at a time:
    the model alone, the figure tag.py's end-to-end speed is set against."""
    start = time.perf_counter()
    for i in range(0, len(windows), batch_size):
        predictor(windows[i:i + batch_size])
    return time.perf_counter() - start


def synthetic_data(folder: str, clips: int, seconds: float) -> str:
    """A synthetic MagnaTagATune-layout dataset in `folder`, made once."""
    from tagger.datasets.synthetic import generate

    marker = os.path.join(folder, "annotations_final.csv")
    if not os.path.exists(marker):
        generate(folder, clips=clips, seconds=seconds, seed=0, progress=False)
    return folder


def synthetic_song(seconds: float, number: int, rate: int = 44100):
    """(samples, 2) float32: a song of the synthetic generator's music
    (`render_clip` of the attributes of its clip `number`, at its 16 kHz),
    resampled to `rate`, its two channels 17 samples apart."""
    import numpy as np
    import soxr

    from tagger.datasets.synthetic import SAMPLE_RATE, plan, render_clip

    rows = [row for row in plan(number + 16, 29.1, seed=0) if row.attributes]
    mono = render_clip(rows[number].attributes, seconds, SAMPLE_RATE,
                       np.random.default_rng([0, number]))
    mono = soxr.resample(np.asarray(mono, np.float32), SAMPLE_RATE, rate)
    return np.stack([mono, np.roll(mono, 17)], axis=1)


def untrained_samplecnn(block: str = "se", width: float = 1.0):
    """(model, TaggerMetadata) of an untrained multi-level sample-level CNN
    with `block` blocks at channel `width`, scoring the 50 MagnaTagATune
    tags from one segment at the default sample rate, as train.py saves it."""
    from tagger.config import AudioConfig
    from tagger.datasets.mtt import MTT_TOP50
    from tagger.models import build_model
    from tagger.models.tagger_metadata import TaggerMetadata

    audio = AudioConfig()
    model = build_model("samplecnn", num_tags=len(MTT_TOP50), block=block, multi=True,
                        width=width)
    info = TaggerMetadata(model="samplecnn", model_args=dict(block=block, multi=True,
                                                             width=width),
                          tag_names=MTT_TOP50, sample_rate=audio.sample_rate,
                          segment_length=audio.segment_length, window_segments=1,
                          input_kind="raw", logmel=None)
    return model, info


def saved_untrained_samplecnn(path: str, block: str = "se", width: float = 1.0) -> str:
    """`path`, where `untrained_samplecnn(block, width)` is saved once."""
    if not os.path.exists(path):
        from tagger.models.saved import save_tagger

        save_tagger(*untrained_samplecnn(block, width), path)
    return path


def untrained_pons_musicnn(width: float):
    """(model, TaggerMetadata) of an untrained package Musicnn with its
    filters and units x `width`, at the package's input (16 kHz, 48128
    samples), as its converter saves MTT_musicnn."""
    import dataclasses

    from tagger.datasets.mtt import MTT_TOP50
    from tagger.models import build_model
    from tagger.models.pons_musicnn import LOGMEL, SAMPLE_RATE, SEGMENT_LENGTH
    from tagger.models.tagger_metadata import TaggerMetadata

    sizes = dict(timbral_filters=204, temporal_filters=51, midend_channels=64, dense_units=200)
    sizes = {name: max(1, round(value * width)) for name, value in sizes.items()}
    model = build_model("pons_musicnn", num_tags=len(MTT_TOP50), **sizes)
    info = TaggerMetadata(model="pons_musicnn", model_args=sizes, tag_names=MTT_TOP50,
                          sample_rate=SAMPLE_RATE, segment_length=SEGMENT_LENGTH,
                          window_segments=1, input_kind="raw",
                          logmel=dataclasses.asdict(LOGMEL))
    return model, info


# A family's bench case as the model benches build it (bench_models.py,
# accelerator_jax.py, profile_training.py): its tiny form, its model, a batch.
TINY_BATCH = 2
# the sample-level CNN's tiny case has the blocks of its first bench case
# (SE+multi): the tests' tiny ReSE blocks take twice the CPU to compile
TINY_BLOCKS = {"samplecnn": {"block": "se"}}


def tiny_case(family):
    """One case of `family` at the size the tests build it (`FamilySpec.tiny`),
    with the blocks of its first bench case where `TINY_BLOCKS` names them."""
    from tagger.models import FAMILIES
    from tagger.models.family_spec import BenchCase

    spec = FAMILIES[family]
    return BenchCase(f"{family} (tiny)", {**spec.tiny, **TINY_BLOCKS.get(family, {})},
                     TINY_BATCH, spec.bench[0].hand_flops)


def bench_model(family, case, policy="float32"):
    """`family`'s bench `case` (a BenchCase) built for 50 tags, a raw-waveform
    family for its whole window, its layers under the Keras dtype `policy`."""
    import keras

    from tagger.models import family as family_spec

    spec = family_spec(family)
    kwargs = dict(case.model_args, num_tags=50)
    if spec.raw_waveform:
        kwargs["input_length"] = spec.preprocessor.segments * spec.preprocessor.segment_length
    keras.mixed_precision.set_global_policy(policy)
    try:
        return spec.build(**kwargs)
    finally:
        keras.mixed_precision.set_global_policy("float32")


def tf_steps_per_second(model, batch, steps: int, jit: bool = False) -> float:
    """Training steps/s of `model` on the NumPy `batch` (x, y) through
    train.py's TensorFlow step (`make_train_function`: BCE, SGD with
    Nesterov momentum), XLA-compiled with `jit`: a first step that traces
    and compiles, then `steps` steps back to back, the last waited for."""
    import keras
    import tensorflow as tf

    from tagger.training.trainer import make_train_function

    optimizer = keras.optimizers.SGD(1e-3, momentum=0.9, nesterov=True)
    step = make_train_function(model, optimizer, tf.distribute.get_strategy(), len(batch[0]),
                               jit_compile=jit)
    iterator = iter(tf.data.Dataset.from_tensors(batch).repeat())
    float(step(iterator, 1))  # trace and compile; a device runs steps asynchronously
    start = time.perf_counter()
    for _ in range(steps):  # one step a call, as traced
        loss = step(iterator, 1)
    float(loss)
    return steps / (time.perf_counter() - start)


def random_batch(family, case):
    """(x, y) of one training batch of `case`: quiet noise windows
    (batch, window samples) and 0/1 tags (batch, 50), float32, seed 0."""
    import numpy as np

    from tagger.models import family as family_spec

    pre = family_spec(family).preprocessor
    rng = np.random.default_rng(0)
    x = 0.1 * rng.standard_normal((case.batch_size, pre.segments * pre.segment_length))
    return x.astype("float32"), (rng.random((case.batch_size, 50)) < 0.1).astype("float32")


def ratio_line(name: str, value: float, goal: str) -> str:
    return f"{name:55s} {value:8.3f}   (goal {goal})"


def add_soundtrack_flags(p) -> None:
    """--model, --music-dir and --debs-dir of the benches on Debian's
    soundtracks (tagger/demos/soundtracks.py)."""
    p.add_argument("--model", default=None,
                   help="a pretrained name or a saved model, as tag.py takes them "
                        "(default: MTT_musicnn)")
    p.add_argument("--music-dir", default=None,
                   help="where the soundtracks are laid out (default: a temp dir)")
    p.add_argument("--debs-dir", default=None,
                   help="the soundtracks' .deb files, fetched there where missing "
                        "(default: inside --music-dir)")


def refuse_soundtracks_with_other_audio(p, args) -> None:
    """A usage error for --music-dir or --debs-dir beside --files or --tiny."""
    soundtracks = [flag for flag, value in (("--music-dir", args.music_dir),
                                            ("--debs-dir", args.debs_dir)) if value]
    if soundtracks and (args.files or args.tiny):
        one = len(soundtracks) == 1
        p.error(f"{' and '.join(soundtracks)} {'lays' if one else 'lay'} out the soundtracks: "
                f"leave {'it' if one else 'them'} out with "
                f"{'--files' if args.files else '--tiny'}")
