"""Standard checks every custom layer and model goes through.

`check_layer` asserts, for a layer built from `make_layer()`:
1. get_config -> from_config gives an equal config;
2. a model holding the layer, saved as .keras and as .hdf5, loads with a
   plain `keras.models.load_model` (no custom_objects) and predicts the
   same values;
3. one training step of that model on a fixed batch runs and changes the
   weights.

This is also the tests' one helpers module: tests import plain helpers from
here (or from tests/presets.py for the tiny settings, tests/models/common.py
for the model families), never from another test file or a conftest.py.
"""

from __future__ import annotations

import pathlib  # no TensorFlow here: scripts the tests start import this too
import struct

import numpy as np

ROOT = pathlib.Path(__file__).parents[1]  # the repository
# Seconds after which a process a test started is taken to hang: a guard
# against hangs, never a measure, far above what any of them takes on a
# busy machine (the longest, bench_accelerator.py's tiny run, took under
# half of it at a load average of 12 to 16). No result of the suite
# depends on how long anything took.
HANG_S = 3600
# Seconds `until` waits for a condition (a server's state, a file) that
# holds within seconds on a busy machine: a guard against hangs too.
WAIT_S = 120


def reference_dir() -> pathlib.Path:
    """The shared reference data (split lists, real release weights):
    TAGGER_REFERENCE_DIR, else shared/reference beside the checkout. Tests
    that read it skip, saying where they looked, when it is absent."""
    import os

    return pathlib.Path(os.environ.get("TAGGER_REFERENCE_DIR",
                                       ROOT.parent / "shared" / "reference"))


def command_modules() -> list:
    """The commands: every module of tagger/commands with a top-level
    `main(argv=None)`, by dotted name, sorted (read from the source,
    nothing imported)."""
    import ast

    return sorted(
        f"tagger.commands.{path.stem}" for path in (ROOT / "tagger" / "commands").glob("*.py")
        if any(isinstance(node, ast.FunctionDef) and node.name == "main"
               and [a.arg for a in node.args.args] == ["argv"]
               for node in ast.parse(path.read_text()).body))


def argv_that_parses(command: str, folder) -> list:
    """Arguments with which the command `command` (a module name of
    tagger/commands) parses its command line and goes on to its work; a
    file they name need not exist (`folder`: a folder for it)."""
    folder = str(folder)
    return {"attention": ["m.keras", "a.wav"], "build_folder": [folder],
            "build_msd": ["--data-dir", folder], "build_mtt": ["--data-dir", folder],
            "convert_weights": ["w.hdf5", "--from", "resemul", "--out", "w.keras"],
            "demo": ["--work-dir", folder], "eval": ["m.keras"], "export": ["m.keras"],
            "extract_excitations": ["m.keras"], "library": ["info", "--db", "x.sqlite"],
            "pretrained": ["list"], "serve": ["m.keras"],
            "similar": ["--tags", "piano", "--db", "x.sqlite"], "synthetic": [folder],
            "synthetic_msd": [folder], "tag": ["m.keras", "a.wav"],
            "train": ["--data-dir", folder]}[command]


def check_layer(make_layer, input_shape, tmp_path, atol=1e-5, seed=0):
    """Runs the standard checks on a layer; returns the test model."""
    import keras

    layer = make_layer()
    clone = type(layer).from_config(layer.get_config())
    assert clone.get_config() == layer.get_config()

    inputs = keras.Input(input_shape)
    features = layer(inputs)
    pooled = keras.layers.Flatten()(features)
    outputs = keras.layers.Dense(3, activation="sigmoid", name="check_head")(pooled)
    model = keras.Model(inputs, outputs)
    x = np.random.default_rng(seed).standard_normal((4, *input_shape)).astype("float32")
    y = (np.arange(12).reshape(4, 3) % 2).astype("float32")
    check_saved_model(model, x, tmp_path, atol=atol)
    check_training_step(model, x, y)
    return model


def check_saved_model(model, x, tmp_path, atol=1e-5):
    """Saves `model` as .keras and .hdf5, reloads both, compares outputs."""
    import keras

    expected = _as_arrays(model.predict(x, verbose=0))
    for suffix in ("keras", "hdf5"):
        path = tmp_path / f"{model.name}_check.{suffix}"
        model.save(path)
        reloaded = keras.models.load_model(path)
        got = _as_arrays(reloaded.predict(x, verbose=0))
        assert len(got) == len(expected)
        for a, b in zip(expected, got):
            np.testing.assert_allclose(b, a, atol=atol, err_msg=suffix)


def check_training_step(model, x, y):
    """One optimiser step on a fixed batch must change the weights and give
    a finite loss."""
    import keras

    model.compile(optimizer=keras.optimizers.SGD(0.1), loss="binary_crossentropy")
    before = [w.copy() for w in model.get_weights()]
    loss = model.train_on_batch(x, y)
    assert np.isfinite(loss)
    after = model.get_weights()
    assert any(not np.array_equal(a, b) for a, b in zip(before, after))


def _as_arrays(outputs):
    if isinstance(outputs, dict):
        return [np.asarray(outputs[k]) for k in sorted(outputs)]
    if isinstance(outputs, (list, tuple)):
        return [np.asarray(o) for o in outputs]
    return [np.asarray(outputs)]


def call_main(main, capsys, *argv):
    """Runs a command-line `main(argv)` in-process; returns (exit code,
    stdout, stderr), argparse's own exits included."""
    try:
        code = main([str(a) for a in argv])
    except SystemExit as exit:
        code = exit.code
    out, err = capsys.readouterr()
    return code, out, err


def one_line_error(code, err, *fragments):
    """A user's mistake: exit code 2, one line on stderr holding every
    fragment, no traceback."""
    assert code == 2, err
    assert len(err.strip().splitlines()) == 1, err
    assert "Traceback" not in err
    for fragment in fragments:
        assert fragment in err, err


def recorded_syncs(monkeypatch) -> list:
    """Every os.fsync and os.replace from now on, in order: ("fsync",
    inode) and ("replace", the source's inode), to see that a file is
    flushed before it is renamed into place and its folder after."""
    import os

    calls, fsync, replace = [], os.fsync, os.replace

    def recorded_fsync(fd):
        calls.append(("fsync", os.fstat(fd).st_ino))
        fsync(fd)

    def recorded_replace(src, dst):
        calls.append(("replace", os.stat(src).st_ino))
        replace(src, dst)

    monkeypatch.setattr(os, "fsync", recorded_fsync)
    monkeypatch.setattr(os, "replace", recorded_replace)
    return calls


def read_only_path(name: str) -> str:
    """A path under a folder that refuses new files even to root (chmod
    does not stop root): /sys, where nothing but the kernel creates
    entries. Skips the test where /sys accepts a new file."""
    import os

    import pytest

    probe = os.path.join("/sys", ".tagger-probe")
    try:
        with open(probe, "wb"):
            pass
    except OSError:
        return os.path.join("/sys", name)
    os.remove(probe)
    pytest.skip("/sys accepts new files here")


def without_tensorflow_env(env: dict | None = None) -> dict:
    """The environment (os.environ, or `env`) for a process in which
    `import tensorflow` (and of any tensorflow* package) fails as on a
    machine without TensorFlow: tests/no_tensorflow first on PYTHONPATH,
    whose sitecustomize.py refuses them and records each name asked for
    (`import sitecustomize; sitecustomize.BLOCKED` in that process)."""
    import os

    env = dict(os.environ if env is None else env)
    paths = [str(ROOT / "tests" / "no_tensorflow"), str(ROOT)]
    env["PYTHONPATH"] = os.pathsep.join(paths + [p for p in env.get("PYTHONPATH", "").split(
        os.pathsep) if p])
    return env


def run_json_script(path, source: str, *args, timeout: float = HANG_S, env=None) -> dict:
    """Writes `source` to `path`, runs it with this Python in a fresh
    process (with `args`, in the environment `env`, default this one's)
    and returns the JSON object it printed last."""
    import json
    import subprocess
    import sys

    path.write_text(source)
    result = subprocess.run([sys.executable, str(path), *map(str, args)],
                            capture_output=True, text=True, timeout=timeout, env=env)
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


def tiny_conv_tagger(samples: int = 64, tags: int = 5, seed: int = 1):
    """A seeded 4-filter 1-D CNN tagger, (batch, samples) -> (batch, tags)
    sigmoid scores: small enough to compare training steps exactly."""
    import keras

    keras.utils.set_random_seed(seed)
    inputs = keras.Input((samples,))
    x = keras.layers.Reshape((samples, 1))(inputs)
    x = keras.layers.Conv1D(4, 3, strides=3, activation="relu")(x)
    x = keras.layers.GlobalMaxPooling1D()(x)
    return keras.Model(inputs, keras.layers.Dense(tags, activation="sigmoid")(x))


TEACHER_RATE = 16000
TEACHER_WINDOW = 16000  # 1 s windows: 5 whole ones in a clip of two 59049-sample segments


def tiny_teacher(path, tags, seed, gain=1.0, bias=None):
    """A tiny conv tagger of 1 s windows at 16 kHz saved with its tags, a
    teacher for distillation; `gain` scales its output layer's weights
    (more contrast between clips), `bias` (one value a tag) sets its
    biases (tags' scores kept apart)."""
    from tagger.models.saved import save_tagger
    from tagger.models.tagger_metadata import TaggerMetadata

    model = tiny_conv_tagger(samples=TEACHER_WINDOW, tags=len(tags), seed=seed)
    dense = model.layers[-1]
    dense.kernel.assign(gain * dense.kernel)
    if bias is not None:
        dense.bias.assign(np.asarray(bias, np.float32))
    save_tagger(model, TaggerMetadata(model="tiny_conv", model_args={}, tag_names=tags,
                                      sample_rate=TEACHER_RATE, segment_length=TEACHER_WINDOW,
                                      window_segments=1, input_kind="raw", logmel=None),
                str(path))
    return str(path)


def built_once(tmp_path_factory, name: str, make):
    """The value of `make(folder)` for a session artifact built once per test
    run, however many pytest-xdist workers ask (as the pytest-xdist docs
    describe): the first worker builds it into a folder under the base
    temporary folder the workers share, holding a lock (`folder_lock`, waited
    for), and records the value; the others wait on the lock and read it back. Without xdist it is
    built in a folder of this session's own. The value must pickle (it is
    read back equal); what it names must only be read by the tests."""
    import os
    import pickle
    import shutil

    from tagger import fileio
    from tagger.folder_lock import folder_lock

    if not os.environ.get("PYTEST_XDIST_WORKER"):
        return make(tmp_path_factory.mktemp(name))
    shared = tmp_path_factory.getbasetemp().parent / "built_once"
    shared.mkdir(exist_ok=True)
    folder, value_file = shared / name, shared / f"{name}.pickle"
    with folder_lock(str(shared / f"{name}.lock"), str(shared), f"build of {name}",
                     wait=True):
        if value_file.is_file():
            return pickle.loads(value_file.read_bytes())
        if folder.exists():  # a worker's build that failed half way
            shutil.rmtree(folder)
        folder.mkdir()
        value = make(folder)
        fileio.write_atomic(str(value_file), pickle.dumps(value))
        return value


def build_config(data_dir, out_dir, **overrides):
    """The BuildConfig the tests build records with: one worker, shards of
    `presets.CLIPS_PER_SHARD` clips, no progress bar; `overrides` change it."""
    from tagger.config import BuildConfig
    from tests.presets import CLIPS_PER_SHARD

    settings = dict(data_dir=str(data_dir), out_dir=str(out_dir), workers=1,
                    clips_per_shard=CLIPS_PER_SHARD, progress=False)
    settings.update(overrides)
    return BuildConfig(**settings)


MTT_SETTINGS = ("split", "merge_synonyms", "top_k", "seed", "unlabelled_fraction")


def mtt_settings(overrides: dict):
    """The MttSettings of the MttSettings fields in `overrides` (removed from it)."""
    from tagger.datasets.mtt import MttSettings

    return MttSettings(**{k: overrides.pop(k) for k in MTT_SETTINGS if k in overrides})


def build_mtt(data_dir, out_dir, runner=None, **overrides):
    """MagnaTagATune records of `data_dir` in `out_dir`, written by `runner`
    (default: local processes): the MttSettings fields among `overrides`
    set the plan, the others the BuildConfig."""
    from tagger.datasets.build import build
    from tagger.datasets.mtt import SOURCE

    settings = mtt_settings(overrides)
    return build(SOURCE, settings, build_config(data_dir, out_dir, **overrides), runner)


def msd_config(data_dir, out_dir, **overrides):
    """The BuildConfig the MSD tests build with: one worker, shards of
    `presets.MSD_CLIPS_PER_SHARD` clips, no progress bar."""
    from tagger.config import BuildConfig
    from tests.presets import MSD_CLIPS_PER_SHARD

    settings = dict(data_dir=str(data_dir), out_dir=str(out_dir), workers=1,
                    clips_per_shard=MSD_CLIPS_PER_SHARD, progress=False)
    settings.update(overrides)
    return BuildConfig(**settings)


def build_msd(data_dir, out_dir, settings, runner=None, **overrides):
    """MSD records of `data_dir` planned with `settings` (MsdSettings),
    written to `out_dir` by `runner` (default: local processes)."""
    from tagger.datasets.build import build
    from tagger.datasets.msd.plan import SOURCE

    return build(SOURCE, settings, msd_config(data_dir, out_dir, **overrides), runner)


def saved_model(family, model_args, info, folder, formats=(".keras",), **config):
    """Builds `family` for the records described by `info` and saves it as
    train() does (info embedded) as model.keras (and the other `formats`);
    returns the path of the first."""
    import keras

    from tagger.config import TrainConfig
    from tagger.models.saved import save_tagger
    from tagger.training import model_setup

    keras.utils.set_random_seed(0)
    train_config = TrainConfig(data_dir="unused", model=family, model_args=dict(model_args),
                               **config)
    window = model_setup.window_segments(train_config, info)
    model = model_setup.build(train_config, info, window)
    model_info = model_setup.model_info(train_config, info, window)
    folder.mkdir(parents=True, exist_ok=True)
    for suffix in formats:
        save_tagger(model, model_info, str(folder / f"model{suffix}"))
    return folder / f"model{formats[0]}"


def write_audio(path, samples, sample_rate=22050, seed=0, subtype=None):
    """A WAV (or any soundfile format by suffix) of `samples` samples of
    rendered synthetic music; returns the path."""
    import soundfile

    from tagger.datasets.sounds import ClipAttributes, render_clip

    audio = render_clip(ClipAttributes(instruments=("piano", "drum_kit")),
                        samples / sample_rate + 0.01, sample_rate, rng=seed)[:samples]
    soundfile.write(str(path), audio, sample_rate, subtype=subtype)
    return pathlib.Path(path)


def write_m4a(path, audio, sample_rate, metadata=None, faststart=False):
    """An M4A file of `audio` ((samples,) or (samples, channels) float32 in
    [-1, 1]) encoded as AAC with FFmpeg's encoder (PyAV), with FFmpeg's
    atoms of `metadata` ({"title": ...}): a format libsndfile cannot read;
    `faststart`: its index (moov) before the audio, as a download has it;
    returns the path."""
    import av

    audio = np.asarray(audio, np.float32)
    planar = audio[None] if audio.ndim == 1 else audio.T  # (channels, samples)
    layout = "mono" if len(planar) == 1 else "stereo"
    options = {"movflags": "faststart"} if faststart else {}
    with av.open(str(path), "w", format="ipod", options=options) as container:
        container.metadata.update(metadata or {})
        stream = container.add_stream("aac", rate=sample_rate, layout=layout)
        for start in range(0, planar.shape[1], 1024):
            frame = av.AudioFrame.from_ndarray(
                np.ascontiguousarray(planar[:, start:start + 1024]), format="fltp",
                layout=layout)
            frame.sample_rate = sample_rate
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
    return pathlib.Path(path)


def is_png(path) -> bool:
    data = pathlib.Path(path).read_bytes()
    return len(data) > 1000 and data[:8] == b"\x89PNG\r\n\x1a\n"


def windows_of(samples: int, window: int) -> int:
    return max(1, -(-samples // window))


def files_digest(folder):
    """{name: sha256} of the shards and dataset_info.json in `folder`."""
    import hashlib
    import os

    digests = {}
    for name in sorted(os.listdir(folder)):
        if name.endswith(".tfrecord") or name == "dataset_info.json":
            digests[name] = hashlib.sha256(pathlib.Path(folder, name).read_bytes()).hexdigest()
    return digests


def framing_of_file(data: bytes) -> bytes:
    """A TFRecord file's framing, cut from its bytes: each record's length,
    the length's CRC and the data's CRC."""
    out, at = b"", 0
    while at < len(data):
        (length,) = struct.unpack_from("<Q", data, at)
        out += data[at:at + 12] + data[at + 12 + length:at + 16 + length]
        at += 16 + length
    assert at == len(data)
    return out


def other_audio_shard(path) -> None:
    """Writes the raw int16 shard at `path` anew as another build of the same
    clips from other audio would have (every sample halved): the same
    records and size, other data and so other data CRC32Cs."""
    import tensorflow as tf

    from tagger.records.tfrecord import frame_bytes

    records = []
    for record in tf.data.TFRecordDataset(str(path)):
        example = tf.train.Example.FromString(record.numpy())
        segments = example.features.feature["segments"].bytes_list
        samples = np.frombuffer(segments.value[0], "<i2")
        segments.value[0] = (samples // 2).astype("<i2").tobytes()
        records.append(frame_bytes(example.SerializeToString(deterministic=True)))
    size = pathlib.Path(path).stat().st_size
    pathlib.Path(path).write_bytes(b"".join(records))
    assert pathlib.Path(path).stat().st_size == size


def copy_to_gfile(local_dir, remote_dir):
    """Copies the folder `local_dir` to `remote_dir` through tf.io.gfile."""
    import os

    import tensorflow as tf

    for root, _, files in os.walk(local_dir):
        rel = os.path.relpath(root, local_dir)
        target = remote_dir if rel == "." else f"{remote_dir}/{rel}"
        tf.io.gfile.makedirs(target)
        for name in files:
            tf.io.gfile.copy(os.path.join(root, name), f"{target}/{name}", overwrite=True)


def free_ports(count):
    """`count` local TCP ports free a moment ago."""
    import socket

    sockets = [socket.socket() for _ in range(count)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


def watch_sockets(sockets, seconds: float, tick=None) -> dict:
    """socket -> (the bytes its server sent, the monotonic time the server
    ended it, or inf): waits on all the client sockets at once until each
    has ended or `seconds` pass, calling `tick()` (a client's next move)
    every 0.1 s. A reset counts as the end."""
    import selectors
    import time

    selector = selectors.DefaultSelector()
    for sock in sockets:
        sock.setblocking(False)
        selector.register(sock, selectors.EVENT_READ)
    got = {sock: b"" for sock in sockets}
    ended = {}
    deadline = time.monotonic() + seconds
    while len(ended) < len(sockets) and time.monotonic() < deadline:
        if tick is not None:
            tick()
        for key, _ in selector.select(0.1):
            try:
                chunk = key.fileobj.recv(65536)
            except ConnectionResetError:
                chunk = b""
            got[key.fileobj] += chunk
            if not chunk:
                ended[key.fileobj] = time.monotonic()
                selector.unregister(key.fileobj)
    selector.close()
    return {sock: (got[sock], ended.get(sock, float("inf"))) for sock in sockets}


def http_status_and_error(data: bytes) -> tuple[int, str]:
    """(status, the JSON body's "error") of a raw HTTP response."""
    import json

    head, _, body = data.partition(b"\r\n\r\n")
    return int(head.split(b" ", 2)[1]), json.loads(body)["error"]


def beam_modules_after(script: str, argv) -> list:
    """The apache_beam modules a fresh Python holds after `script`.main(argv)
    (a build CLI beside the package) has returned 0."""
    import json
    import subprocess
    import sys

    code = (f"import sys, {script}; "
            f"code = {script}.main(sys.argv[1:]); "
            "assert code == 0, code; "
            "print(sorted(m for m in sys.modules if m.split('.')[0] == 'apache_beam'))")
    out = subprocess.run([sys.executable, "-c", code, *map(str, argv)],
                         cwd=ROOT, capture_output=True, text=True, timeout=HANG_S)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout.strip().splitlines()[-1].replace("'", '"'))


def tone(seconds, rate, channels, freq, seed):
    """A tone whose loudness and noise change over time, so windows differ."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(round(seconds * rate))) / rate
    envelope = 0.5 + 0.4 * np.sin(2 * np.pi * 0.13 * t)
    x = 0.4 * envelope * np.sin(2 * np.pi * freq * t) + 0.05 * rng.standard_normal(len(t))
    x = x.astype(np.float32)
    return np.stack([x, 0.5 * x], axis=1) if channels == 2 else x


def gliding_tones(samples, batch=2, seed=0, rate=16000):
    """(batch, samples) float32: a tone gliding up 200 Hz/s from a random
    start per row, plus noise; a batch for converted taggers' golden tests."""
    rng = np.random.default_rng(seed)
    t = np.arange(samples) / rate
    start = rng.uniform(100, 2000, (batch, 1))
    phase = 2 * np.pi * (start * t + 0.5 * 200.0 * t ** 2)
    return (0.3 * np.sin(phase)
            + 0.05 * rng.standard_normal((batch, samples))).astype("float32")


def save_tagger(model, info, path):
    """Saves `model` with `info` (the fields of its TaggerMetadata) at
    `path`, or as a plain Keras file for None: the library's order."""
    from tagger.models.saved import save_tagger as save
    from tagger.models.tagger_metadata import TaggerMetadata

    if info is None:
        model.save(str(path))
    else:
        save(model, TaggerMetadata(**info), str(path))
    return str(path)


def reference_windows(path, window=59049, hop=None, rate=22050):
    """The windows tag.py should score, computed independently: the whole
    file decoded at once, sliced; a file shorter than a window zero-padded."""
    from tagger.audio import load_audio

    x = load_audio(str(path), rate)
    hop = hop or window
    if len(x) < window:
        return np.pad(x, (0, window - len(x)))[None], len(x)
    count = (len(x) - window) // hop + 1
    return np.stack([x[i * hop:i * hop + window] for i in range(count)]), len(x)


# resemul's Keras 2.0.5 files (tests/convert/test_resemul.py, tests/pretrained)
RESEMUL_WIDTH = 1 / 16  # stem 8 channels, blocks 8 .. 32


def keras2_names(block):
    """(our layer, Keras 2 layer) pairs in the order resemul's model.py creates
    layers: stem conv + BN; per block (se) conv, BN, SE dense x 2 or (rese) the
    shortcut conv + BN where channels change, conv, BN, conv, BN, SE dense x 2;
    head dense, BN, output dense. Keras 2 numbers each class from 1."""
    counters = {}

    def name(cls):
        counters[cls] = counters.get(cls, 0) + 1
        return f"{cls}_{counters[cls]}"

    pairs = [("stem_conv", name("conv1d")), ("stem_bn", name("batch_normalization"))]
    channels = 128
    for i, c in enumerate((128, 128, 256, 256, 256, 256, 256, 256, 512)):
        if block == "se":
            pairs += [(f"block{i}_conv", name("conv1d")),
                      (f"block{i}_bn", name("batch_normalization"))]
        else:
            if c != channels:
                pairs += [(f"block{i}_shortcut_conv", name("conv1d")),
                          (f"block{i}_shortcut_bn", name("batch_normalization"))]
            pairs += [(f"block{i}_conv1", name("conv1d")),
                      (f"block{i}_bn1", name("batch_normalization")),
                      (f"block{i}_conv2", name("conv1d")),
                      (f"block{i}_bn2", name("batch_normalization"))]
        pairs += [(f"block{i}_se_expand", name("dense")), (f"block{i}_se_excite", name("dense"))]
        channels = c
    return pairs + [("head_dense", name("dense")), ("head_bn", name("batch_normalization")),
                    ("tags", name("dense"))]


def write_keras2_file(model, block, path, rename=None, drop=None):
    """`model`'s weights in resemul's Keras 2.0.5 .hdf5 layout (layers renamed
    by `rename`, the weight `drop` left out)."""
    import h5py

    names = dict(keras2_names(block))
    with h5py.File(path, "w") as f:
        f.attrs["keras_version"] = b"2.0.5"
        group = f.create_group("model_weights")
        layer_names = [b"input_1", b"reshape_1"]
        group.create_group("input_1").attrs["weight_names"] = []
        group.create_group("reshape_1").attrs["weight_names"] = []
        for layer in model.layers:
            if layer.name not in names:
                continue
            theirs = (rename or {}).get(names[layer.name], names[layer.name])
            g = group.create_group(theirs)
            weight_names = []
            for variable in layer.weights:
                short = variable.path.rsplit("/", 1)[-1]
                if drop == f"{theirs}/{short}":
                    continue
                weight_names.append(f"{theirs}/{short}:0".encode())
                g.create_dataset(f"{theirs}/{short}:0", data=np.asarray(variable))
            g.attrs["weight_names"] = weight_names
            layer_names.append(theirs.encode())
        group.attrs["layer_names"] = layer_names


def random_resemul_model(block, seed):
    """A tiny (RESEMUL_WIDTH) sample-level CNN with random weights and batch-norm
    statistics that are not 0 / 1."""
    import keras

    from tagger.models.samplecnn import build_samplecnn

    keras.utils.set_random_seed(seed)
    model = build_samplecnn(block=block, width=RESEMUL_WIDTH)
    rng = np.random.default_rng(seed)
    for layer in model.layers:  # batch-norm statistics that are not 0 / 1
        if isinstance(layer, keras.layers.BatchNormalization):
            layer.moving_mean.assign(0.1 * rng.standard_normal(layer.moving_mean.shape))
            layer.moving_variance.assign(rng.uniform(0.5, 1.5, layer.moving_variance.shape))
            layer.gamma.assign(rng.uniform(0.5, 1.5, layer.gamma.shape))
    return model


# Recorded music from Debian's game soundtracks (tagger.demos.soundtracks),
# for the pretrained taggers' golden tests: (package, file in its music
# folder, excerpt start s).
DEBIAN_MUSIC = (
    ("nexuiz-music", "ninesix.ogg", 60.0),
    ("warzone2100-music", "menu.opus", 60.0),
    ("asc-music", "frontiers.mp3", 60.0),
)
EXCERPT_SECONDS = 30.0


def debian_music(folder, packages_dir=None):
    """(excerpt paths, None) of `DEBIAN_MUSIC`: 30 s excerpts (WAV float,
    the files' own rate and channels) cut into `folder` from the Debian
    packages in `packages_dir` (.deb files, e.g. as .ci/run fetched them),
    else fetched with `apt-get download` into `folder`; or (None, why) when
    they cannot be had."""
    import shutil

    import soundfile

    from tagger.demos.soundtracks import SOUNDTRACKS, music_folder
    from tagger.errors import UserError

    folder = pathlib.Path(folder)
    wanted = [s for s in SOUNDTRACKS if s.package in {p for p, _, _ in DEBIAN_MUSIC}]
    source = pathlib.Path(packages_dir) if packages_dir else folder / "debs"
    try:
        music_folder(folder / "music", source, wanted)
    except UserError as error:
        return None, str(error)
    excerpts = []
    for i, (package, name, start) in enumerate(DEBIAN_MUSIC):
        with soundfile.SoundFile(str(folder / "music" / package / name)) as audio:
            audio.seek(int(start * audio.samplerate))
            samples = audio.read(int(EXCERPT_SECONDS * audio.samplerate), dtype="float32",
                                 always_2d=True)
            rate = audio.samplerate
        out = folder / f"{i}-{package}.wav"
        soundfile.write(out, samples, rate, subtype="FLOAT")
        excerpts.append(str(out))
    shutil.rmtree(folder / "music", ignore_errors=True)
    if not packages_dir:  # fetched for this run: only the excerpts are kept
        shutil.rmtree(source, ignore_errors=True)
    return excerpts, None


def in_ci() -> bool:
    """Whether the tests run under CI: the CI variable set (.ci/run and CI
    services set it) to anything but 0, false or no."""
    import os

    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


def skip_unless_ci(reason: str):
    """Skips the test with `reason`; under CI (`in_ci`), where what the test
    needs can be had (the package index is reachable), fails it instead."""
    import os

    import pytest

    if in_ci():
        pytest.fail(f"{reason} (under CI, CI={os.environ['CI']}, this fails rather than "
                    "skips)", pytrace=False)
    pytest.skip(reason)


def musicnn_wheel(folder):
    """(path, None) of musicnn's wheel fetched as a user's first use does
    (pip download with this machine's pip configuration, checked against the
    pinned sha256), or (None, why) where pip could not fetch it
    (`wheel.NotFetched`). A wheel that comes and is not the pinned one
    raises its UserError: a failure, never a skip."""
    from tagger.pretrained import registry
    from tagger.pretrained.wheel import NotFetched, fetch

    dest = pathlib.Path(folder) / registry.MUSICNN_WHEEL.file_name
    try:
        return str(fetch(registry.MUSICNN_WHEEL, str(dest))), None
    except NotFetched as error:
        return None, str(error)


def dataset_graph_bytes(dataset) -> int:
    """The size of `dataset`'s serialized graph, in bytes: what a tf.data
    pipeline carries in its ops (a table baked in as a constant shows).
    tf.data has no public API for it: this function alone calls its
    `_as_serialized_graph` (checked with TensorFlow 2.21;
    tests/test_checks.py fails if it changes)."""
    return len(dataset._as_serialized_graph().numpy())


def until(check, what: str, seconds: float = WAIT_S, interval: float = 0.02):
    """Polls `check()` until it is truthy (returns its value) or `seconds`
    pass (an AssertionError naming `what`)."""
    import time

    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {seconds} s waiting for {what}")


def records_info(tag_names, sample_rate: int, segment_length: int, origin=None):
    """The DatasetInfo of raw records of `tag_names` in segments of
    `segment_length` samples at `sample_rate` (what a model is built and
    saved for; no split written)."""
    from tagger.records.info import DatasetInfo

    return DatasetInfo(
        name="test", origin=dict(origin or {}), builder_version="1", tag_names=tag_names,
        num_tags=len(tag_names), sample_rate=sample_rate, segment_length=segment_length,
        features={"kind": "raw", "dtype": "int16", "logmel": None},
        segment_shape=(segment_length,), splits={}, skipped=[], cut=[], max_seconds=None,
        notes={}, build={}, fingerprint="")


def two_workers(records, train_dir, *argv) -> list:
    """(stdout, stderr) of each of two local workers of `train.py --strategy
    multiworker` (one epoch, batch 8) on `records` with `argv`; both must
    succeed."""
    ports = free_ports(2)
    cluster = {"worker": [f"127.0.0.1:{p}" for p in ports]}
    import json
    import os
    import subprocess
    import sys

    train_py = pathlib.Path(__file__).parents[1] / "train.py"
    command = [sys.executable, str(train_py), "--data-dir", str(records),
               "--train-dir", str(train_dir), "--batch-size", "8",
               "--max-epochs-per-stage", "1", "--strategy", "multiworker", "--no-progress",
               *map(str, argv)]
    workers = []
    for index in range(2):
        env = dict(os.environ, TF_CONFIG=json.dumps(
            {"cluster": cluster, "task": {"type": "worker", "index": index}}))
        workers.append(subprocess.Popen(command, env=env, stdout=subprocess.PIPE,
                                        stderr=subprocess.PIPE, text=True))
    outputs = [w.communicate(timeout=HANG_S) for w in workers]
    for worker, (_out, err) in zip(workers, outputs):
        assert worker.returncode == 0, err[-3000:]
    return outputs


class CountedPredictor:
    """A predictor that records the windows of each of its calls in `sizes`."""

    def __init__(self, predictor, sizes: list):
        self.predictor, self.sizes = predictor, sizes

    def __getattr__(self, name):
        return getattr(self.predictor, name)

    def __call__(self, windows):
        self.sizes.append(len(windows))
        return self.predictor(windows)


def counted_model_file_calls(monkeypatch) -> list:
    """The windows of each call of the predictors that saved taggers made
    from now on (`model_outputs.ModelFile`: teachers, bodies) score, in order."""
    from tagger.training.model_outputs import ModelFile

    sizes, made = [], ModelFile.predictor
    monkeypatch.setattr(ModelFile, "predictor", lambda self, embeddings=False: CountedPredictor(
        made(self, embeddings), sizes))
    return sizes


def clip_by_clip_outputs(predictor, data_dir: str, split: str, info, batch_size: int = 32):
    """[(clip, windows, scores, embeddings or None)] per shard of `split`:
    each clip scored on its own, its windows resampled and cut as tag.py
    cuts a file and scored `batch_size` at a time (a store's values, to
    float32 rounding)."""
    from tagger.audio import audio_windows, resample
    from tagger.records import reader

    p, count = predictor, len(info.splits[split]["shards"])
    shards = []
    for index in range(count):
        clips = []
        for clip in reader.clip_dataset(data_dir, split, info, shard=(count, index),
                                        with_tags=False).as_numpy_iterator():
            audio = resample(clip["segments"].reshape(-1), info.sample_rate, p.sample_rate)
            windows = np.stack([w for _, w in audio_windows(
                audio, p.sample_rate, p.window_samples, p.hop_samples,
                edge_padding=p.edge_padding)])
            outputs = [p(windows[i:i + batch_size]) for i in range(0, len(windows), batch_size)]
            clips.append((clip, windows, np.concatenate([s for s, _ in outputs]),
                          None if outputs[0][1] is None
                          else np.concatenate([e for _, e in outputs])))
        shards.append(clips)
    return shards


def full_batches(windows_per_shard, batch_size: int = 32) -> list:
    """The sizes of the calls that score each shard's windows in full
    batches (the last of a shard holds the rest)."""
    return [size for windows in windows_per_shard
            for size in [batch_size] * (windows // batch_size)
            + ([windows % batch_size] if windows % batch_size else [])]
