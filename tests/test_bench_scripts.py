"""Every script in bench/ runs at a tiny size and ends with its `ratio NAME
VALUE` lines (a smoke test: it checks that each runs, not how fast), and
the helpers the scripts share."""

import dataclasses
import importlib.util
import json
import math
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import types
from pathlib import Path

import numpy as np
import pytest

from tagger import cpu_features
from tests.checks import HANG_S, is_png, until, write_audio

ROOT = Path(__file__).parents[1]
BENCH = ROOT / "bench"
HELPERS = {"accelerator_jax.py", "common.py", "flops.py",  # imported by the scripts, not run
           "torchaudio_standin.py"}

# script: (its flags for a run of seconds, the names of the ratio lines it prints)
ACCELERATOR_FAMILIES = ("samplecnn", "transformer")
TINY = {
    # its tiny run measures SE+multi in each config, the transformer in float32 and its quick run
    "bench_accelerator.py": (["--tiny"], {
        "gpu_matmul_bf16_over_f32",
        *(f"gpu_train_{figure}_{config}_{family}" for figure in ("steps_per_s", "mfu")
          for config, family in (("f32", "samplecnn"), ("bf16", "samplecnn"),
                                 ("xla", "samplecnn"), ("f32", "transformer"))),
        "gpu_train_bf16_speedup_samplecnn", "gpu_train_xla_speedup_samplecnn",
        *(f"gpu_quick_{figure}_transformer" for figure in ("seconds", "epoch_seconds",
                                                           "steps_per_s", "test_roc_auc"))}),
    # its tiny run trains each kind once: the transformer (the teacher), SE+multi's noisy
    # student; it scans the transformer at one batch
    "bench_gpu_jax.py": (["--tiny"], {
        "gpu_reader_segments_per_s_no_tf",
        *(f"gpu_jax_quick{noisy}_{figure}_{family}"
          for noisy, family in (("", "transformer"), ("_noisy", "samplecnn"))
          for figure in ("seconds", "epoch_seconds", "steps_per_s", "test_roc_auc")),
        "gpu_input_wait_share_transformer", "gpu_input_wait_share_noisy_samplecnn",
        *(f"gpu_jax_scan_{figure}_transformer_b2" for figure in ("steps_per_s", "mfu")),
        *(f"gpu_jax_scan_best_{figure}_transformer" for figure in ("mfu", "of_roofline"))}),
    "bench_augment.py": (["--batch", "2", "--samples", "2048", "--rounds", "1"],
                         {"augment_cpu_keras_over_tf_2048", "augment_wall_keras_over_tf_2048"}),
    "bench_build.py": (["--clips", "16", "--seconds", "6", "--repeats", "1"],
                       {"builder_floor", "builder_2w", "floor_2p", "builder_2w_of_floor_2p"}),
    "bench_decode.py": (["--seconds", "4", "--repeats", "1"],
                        {*(f"decode_{fmt}_{reader}_{rate}" for fmt in ("mp3", "ogg", "flac")
                           for reader in ("libsndfile", "ffmpeg")
                           for rate in ("native", 16000, 22050)),
                         "decode_m4a_ffmpeg_native", "decode_m4a_ffmpeg_16000",
                         "decode_m4a_ffmpeg_22050", "decode_faster_reader_used"}),
    "bench_int8.py": (["--tiny", "--engines", "tflite-int8", "keras-bf16"],
                      {f"int8_{figure}_{engine}"
                       for figure in ("top5_overlap", "max_score_difference", "speed_of_keras")
                       for engine in ("tflite_int8", "keras_bf16")}),
    "bench_library.py": (["--files", "6", "--minutes", "0.1", "0.15", "--songs", "2",
                          "--width", "0.0625", "--sample-seconds", "0.2", "--windows", "1",
                          "--stage-files", "3"],
                         {"library_files_per_hour", "library_rss_end_over_tenth",
                          "library_resume_same_rows",
                          *(f"library_stage_share_{stage}" for stage in (
                              "walk", "open", "decode", "model", "database"))}),
    "bench_windows.py": (["--tiny", "--windows", "1", "2", "--engines", "keras"],
                         {*(f"windows_{figure}_of_all_{n}" for figure in ("top5", "score_corr")
                            for n in (1, 2)),
                          *(f"windows_top5{ties}_{rule}_{n}" for ties in ("", "_ties")
                            for rule, windows in (("edges_out", (1, 2, "inside")),
                                                  ("whole", (1, 2)))
                            for n in windows),
                          "windows_choice_edges_out", "windows_choice_whole",
                          *(f"windows_files_per_hour_keras_{n}" for n in ("1", "2", "all"))}),
    "bench_models.py": (["--tiny", "--families", "samplecnn", "--steps", "1", "--no-jit",
                         "--backend", "jax"],
                        {"mfu_infer_samplecnn", "mfu_train_samplecnn", "matmul_bf16_over_f32",
                         "train_bf16_speedup_samplecnn", "mfu_train_samplecnn_jax",
                         "train_jax_speedup_samplecnn", "train_jax_peak_memory_samplecnn"}),
    "bench_musicnn_mfu.py": (["--tiny"], {"musicnn_best_infer_mfu"}),
    # against a stand-in of the original zoo's model.py (tests/peer_standin)
    "bench_peer.py": (["--peer-dir", "tests/peer_standin", "--families", "short_cnn", "--tiny",
                       "--steps", "1", "--rounds", "1", "--no-xla"],
                      {"peer_train_short_cnn_tf", "peer_train_short_cnn_jax"}),
    "bench_msd.py": (["--tracks", "40", "--build-tracks", "40", "--build-seconds", "3",
                      "--audio", "--audio-tracks", "40", "--audio-seconds", "3",
                      "--leak", "--leak-tracks", "40"],
                     {"msd_plan_bytes_per_track_4n_over_n", "msd_build_rss_4n_over_n",
                      "msd_build_floor", "msd_leak_roc_auc"}),
    "bench_own_tags_heads.py": (["--tiny", "--per-tag", "5", "--draws", "1", "--max-epochs", "2"],
                                {"own_tags_heldout_roc_auc", "own_tags_default_of_best",
                                 "own_tags_default_over_logistic_min",
                                 "own_tags_bodies_over_default",
                                 "own_tags_heads_averaged_over_default",
                                 "own_tags_pseudo_over_default"}),
    "bench_own_tags_bodies.py": (["--tiny", "--per-tag", "5", "--seeds", "1", "--resamples",
                                  "20", "--max-epochs", "2", "--noisy-student", "1"],
                                 {"own_tags_best_single_roc_auc_5",
                                  "own_tags_averaged_over_single_5",
                                  "own_tags_best_over_probe_5",
                                  "own_tags_best_over_probe_min_5",
                                  "own_tags_student_over_teacher_5"}),
    "bench_suggest.py": (["--tiny", "--budgets", "3", "5", "--seeds", "1", "--start", "3",
                          "--round", "2", "--max-epochs", "2", "--json", "{tmp}/suggest.json"],
                         {f"suggest_over_random_roc_auc_{measure}{budget}"
                          for measure in ("", "unlabelled_") for budget in (3, 5)}),
    "profile_training.py": (["--tiny", "--families", "pons_musicnn", "--steps", "1",
                             "--precision", "bfloat16"],
                            {f"profile_pons_musicnn_bf16_{kind}_share" for kind in (
                                "front_end", "convolution", "batch_norm", "pooling", "dense",
                                "activation", "other_layers", "loss", "optimiser", "other",
                                "host", "input")}),
    "profile_training_jax.py": (["--tiny", "--families", "samplecnn", "--steps", "1"],
                                {*(f"profile_jax_samplecnn_{kind}_share" for kind in (
                                    "library", "convolution", "dot", "layout", "reduce",
                                    "elementwise")),  # no scatter: the tiled pools'
                                 "profile_jax_samplecnn_op_share"}),
    "bench_reader.py": (["--clips", "12", "--seconds", "6", "--passes", "1", "--repeats", "1",
                         "--batch-size", "1", "--workers", "0", "1"],
                        {"reader_bare", "reader_segments_per_s", "reader_bare_int16",
                         "reader_segments_per_s_int16", "reader_segments_per_s_no_tf_0w",
                         "reader_segments_per_s_no_tf_1w", "reader_segments_per_s_no_tf",
                         "reader_no_tf_over_tf_int16"}),
    "bench_roofline.py": (["--tiny"], {"roofline_bound_samplecnn"}),
    "bench_samplecnn_mfu.py": (["--tiny", "--batches", "2", "--steps", "1"],
                               {"samplecnn_best_infer_mfu"}),
    "bench_serve.py": (["--clips", "10", "--clip-seconds", "3", "--width", "0.0625",
                        "--clients", "2", "--seconds", "1", "--rounds", "1",
                        "--overload-clients", "4", "--overload-seconds", "1",
                        "--max-queue", "2", "--max-batch", "4", "--baseline-seconds", "0.5",
                        "--max-requests", "20"],
                       {"serve_tag_throughput"}),
    "bench_similar.py": (["--files", "2000", "--dim", "16", "--clusters", "20",
                          "--queries", "20"],
                         {"similar_recall_at_10", "similar_speedup"}),
    "bench_stores.py": (["--tiny"], {"store_fill_of_tag_keras_targets",
                                     "store_fill_of_tag_keras_embeddings"}),
    "bench_synthetic.py": (["--clips", "10", "--seconds", "3"],
                           {"synthetic_generate_floor"}),
    "bench_tag.py": (["--models", "pons_musicnn", "samplecnn", "--clips", "12", "--seconds",
                      "3", "--width", "0.0625", "--rounds", "1", "--chunk-files", "6",
                      "--batch-size", "4", "--engines", "keras", "keras-bf16"],
                     {*(f"{name}{suffix}" for name in ("tag_realtime", "tag_e2e_model",
                                                       "tag_decode_of_model", "tag_mfu",
                                                       "tag_e2e_of_ceiling", "tag_model_of_keras")
                        for suffix in ("", "_pons_musicnn_keras", "_samplecnn_keras",
                                       "_pons_musicnn_keras_bf16", "_samplecnn_keras_bf16")),
                      "tag_top5_of_keras_pons_musicnn_keras_bf16",
                      "tag_top5_of_keras_samplecnn_keras_bf16",
                      "tag_fastest_of_keras_pons_musicnn", "tag_fastest_of_keras_samplecnn"}),
    # the semi-supervised demo's tiny run costs about a minute of CPU (three
    # models traced, 1000 bootstrap resamples): tests/test_semi_supervised_demo.py
    # runs it; `main` chooses every measure by default (test below)
    "measure_docs_figures.py": (["--tiny", "demo", "synthetic_msd"],
                                {"demo_seconds", "demo_test_roc_auc", "demo_test_pr_auc",
                                 "synthetic_msd_seconds"}),
}
RATIO = re.compile(r"ratio (\S+) (\S+)")
DISTURBED = re.compile(r"disturbed (\S+) (\S+) \((.+)\)")  # a figure flagged, with why
# The scripts that start processes of their own (workers, a server, a process
# a measurement, the demo) or set XLA's flags before JAX starts run as a user
# runs them, each in a process of its own; the others run their `main` in the
# test's process, which has TensorFlow imported already.
OWN_PROCESS = {"bench_accelerator.py", "bench_build.py", "bench_gpu_jax.py", "bench_library.py",
               "bench_models.py", "bench_msd.py", "bench_peer.py", "bench_reader.py",
               "bench_roofline.py",
               "bench_serve.py", "measure_docs_figures.py", "profile_training.py",
               "profile_training_jax.py"}
# script: the optional module it needs (an extra's requirements file): in
# CI's first step, which installs only the README's, it skips and is run
# again in the second, which installs every extra
NEEDS = {"bench_gpu_jax.py": ("jax",), "bench_models.py": ("jax",),
         "bench_peer.py": ("jax", "torch"), "bench_roofline.py": ("jax",),
         "profile_training_jax.py": ("jax",),
         "bench_serve.py": ("fastapi", "fastapi_offline", "python_multipart", "uvicorn"),
         "bench_similar.py": ("faiss",)}


def load(name: str):
    """bench/<name>.py as a module."""
    spec = importlib.util.spec_from_file_location(f"bench_{name}", BENCH / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def ratios(stdout: str, pattern=RATIO) -> dict:
    """{name: value} of the `ratio NAME VALUE` lines (or those `pattern`
    matches, the name and value its first groups); a name printed twice or
    a value that is not a number fails."""
    found = {}
    for line in stdout.splitlines():
        match = pattern.fullmatch(line.strip())
        if match:
            name, value = match.groups()[:2]
            assert name not in found, f"ratio {name} printed twice"
            found[name] = float(value)
    return found


def test_every_bench_script_has_a_tiny_run():
    scripts = {path.name for path in BENCH.glob("*.py")} - HELPERS
    assert scripts == set(TINY)


def test_the_jax_profile_sorts_xla_operations_by_their_names_into_kinds():
    """profile_training_jax.py's kinds from the compiled program's names:
    a library's fusions, XLA's own convolutions and products (unfused ones
    keep the JAX operation's name), fusions of data movement alone as
    layout, an element-wise fusion that broadcasts as element-wise."""
    settings = {name: os.environ.get(name) for name in ("XLA_FLAGS", "KERAS_BACKEND")}
    kind_of = load("profile_training_jax").kind_of
    assert {name: os.environ.get(name) for name in settings} == settings  # set by main alone
    names = {"ynn_fusion.14": "library", "conv_general_dilated.29": "convolution",
             "convolution.9": "convolution", "dot_general.26": "dot",
             "wrapped_reduce-window": "reduce", "select-and-scatter.1": "scatter",
             "transpose_copy_fusion.17": "layout", "stack.4": "layout",
             "wrapped_broadcast": "layout", "bitcast_concatenate_fusion": "layout",
             "broadcast_add_fusion.25": "elementwise", "wrapped_iota": "elementwise",
             "fft.0": "elementwise"}
    assert {name: kind_of(name) for name in names} == names


def test_the_gpu_bench_trains_every_family_both_ways_and_the_teacher_first(monkeypatch):
    """bench_gpu_jax.py's full run trains each family supervised and as a
    noisy student of the transformer's run, which comes before them, and
    scans each family's batches; its tiny run trains each kind once, in the
    same order."""
    monkeypatch.syspath_prepend(str(BENCH))
    module = load("bench_gpu_jax")
    for runs in (module.RUNS, module.TINY_RUNS):
        students = [index for index, (_, noisy) in enumerate(runs) if noisy]
        assert students and runs.index(("transformer", False)) < min(students)
    assert sorted(module.RUNS) == sorted((family, noisy) for family in ACCELERATOR_FAMILIES
                                         for noisy in (False, True))
    assert {noisy for _, noisy in module.TINY_RUNS} == {False, True}
    assert sorted(module.SCAN_BATCHES[False]) == sorted(ACCELERATOR_FAMILIES)  # each scanned


@pytest.fixture
def short_tmp():
    """A temporary folder of a short path: the benches' worker processes
    listen on a Unix socket inside it (multiprocessing's fork server), whose
    path may not exceed 107 bytes, which pytest's own folders can."""
    folder = tempfile.mkdtemp(prefix="bench-")
    yield Path(folder)
    shutil.rmtree(folder, ignore_errors=True)


@pytest.mark.slow
@pytest.mark.parametrize("script", sorted(TINY))
def test_bench_script_runs_tiny_and_prints_its_ratios(script, short_tmp, monkeypatch, capsys):
    for module in NEEDS.get(script, ()):
        pytest.importorskip(module)
    flags, names = TINY[script]
    flags = [flag.format(tmp=short_tmp) for flag in flags]
    if script in OWN_PROCESS:
        stdout = run_as_a_script(script, flags, short_tmp)
    else:
        stdout = run_in_this_process(script, flags, short_tmp, monkeypatch, capsys)
    assert stdout.splitlines()[0].startswith("CPU: ")  # the machine, first
    if script == "bench_models.py":  # its CPU's bfloat16 units next
        units = ", ".join(cpu_features.bf16_units()) or "none"
        assert stdout.splitlines()[1] == f"bfloat16 units of this CPU: {units}"
    found = ratios(stdout)
    flagged = ratios(stdout, DISTURBED)  # printed, and flagged as measured on busy cores
    assert not set(found) & set(flagged), flagged
    assert set(found) | set(flagged) == names, stdout[-3000:]
    assert all(math.isfinite(v) and v > 0 for v in {**found, **flagged}.values()), found
    if script == "bench_gpu_jax.py":  # eval.py's ROC-AUC of each saved model is its run's
        assert "NOT THE SAME" not in stdout, stdout[-3000:]
    if script == "bench_accelerator.py":  # no budget, no time limit: every part ran
        assert re.fullmatch(r"done in \d+ s, no budget", stdout.splitlines()[-1]), stdout[-3000:]
    if script == "bench_suggest.py":
        check_the_suggest_figure(short_tmp / "suggest.json", short_tmp / "suggest.png")


def check_the_suggest_figure(results, figure):
    """bench_suggest.py --json's figures, each seed's, for each budget and
    both measures, drawn by docs/make_suggest_figure.py."""
    stored = json.loads(results.read_text())
    assert stored["budgets"] == [3, 5]
    for choice in ("random", "suggested"):
        values = np.array(stored[choice])
        assert values.shape == (1, 2, 2) and ((values >= 0) & (values <= 1)).all()
    spec = importlib.util.spec_from_file_location("make_suggest_figure",
                                                  ROOT / "docs" / "make_suggest_figure.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    module.main([str(results), "--out", str(figure), "--note", "tiny"])
    assert is_png(figure)


# the scripts for machines without TensorFlow run where `import tensorflow` fails
WITHOUT_TENSORFLOW = {"bench_gpu_jax.py"}


def run_as_a_script(script: str, flags: list, tmp_path, without_tensorflow=None) -> str:
    """The standard output of `python bench/<script> FLAGS`, which must
    succeed; where `import tensorflow` fails with `without_tensorflow`
    (default: the script is one of WITHOUT_TENSORFLOW)."""
    from tests.checks import without_tensorflow_env

    if without_tensorflow is None:
        without_tensorflow = script in WITHOUT_TENSORFLOW
    env = without_tensorflow_env() if without_tensorflow else dict(os.environ)
    env.update(TMPDIR=str(tmp_path), TF_CPP_MIN_LOG_LEVEL="3")
    done = subprocess.run([sys.executable, str(BENCH / script), *flags], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=HANG_S)
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


def run_in_this_process(script: str, flags: list, tmp_path, monkeypatch, capsys) -> str:
    """What `main` of bench/<script> prints with FLAGS as its command line,
    its temporary files in `tmp_path`; the bench modules it imports
    (`common`, another bench) are imported anew, so that the machine's line
    is printed as in a script's own process."""
    monkeypatch.syspath_prepend(str(BENCH))
    for name, module in list(sys.modules.items()):
        if Path(getattr(module, "__file__", None) or "/").parent == BENCH:
            monkeypatch.delitem(sys.modules, name)
    monkeypatch.setattr(sys, "argv", [str(BENCH / script), *flags])
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    capsys.readouterr()
    assert load(script.removesuffix(".py")).main() in (None, 0)
    return capsys.readouterr().out


def test_measure_docs_figures_measures_everything_by_default(monkeypatch, capsys):
    """Its documented use, no arguments, runs every measure; --tiny gives
    each its tiny flags; an unknown name is one line and exit code 2."""
    module = load("measure_docs_figures")
    calls = []
    for name in module.MEASURES:
        monkeypatch.setitem(module.MEASURES, name,
                            lambda work, flags, name=name: calls.append((name, flags)))
    assert module.main([]) == 0
    assert calls == [("demo", ()), ("synthetic_msd", ()), ("semi_supervised", ("--seeds", "2"))]
    calls.clear()
    assert module.main(["--tiny", "--seeds", "1", "semi_supervised", "demo"]) == 0
    assert calls == [("semi_supervised", ("--seeds", "1", *module.TINY["semi_supervised"])),
                     ("demo", module.TINY["demo"])]
    capsys.readouterr()
    with pytest.raises(SystemExit) as exit:
        module.main(["demo", "figures"])
    assert exit.value.code == 2
    assert capsys.readouterr().err.splitlines()[-1].endswith(
        ": error: nothing to measure is called 'figures'; choose from demo, synthetic_msd, "
        "semi_supervised")


def test_the_model_bench_measures_the_peak_beside_each_family_and_flags_disturbed_mfu(
        monkeypatch, capsys):
    """bench_models.py --backend jax on injected figures, no process started:
    the float32 peak is measured before the first family, between the two
    and after the last; each family's MFU figures are against the higher of
    its two peaks, the JAX row's with the FLOPs of TensorFlow's row of the
    same model; an MFU above 1, and every MFU of a family whose peaks are
    further apart than 10%, is a `disturbed` line and not a ratio."""
    pytest.importorskip("jax")
    monkeypatch.syspath_prepend(str(BENCH))
    module = load("bench_models")
    events = []
    peaks = iter([100e9, 98e9, 80e9])  # spreads: 2% beside samplecnn, 18.4% beside transformer
    # (backend, jit): (training segments/s, inference x real time); 1 GFLOP and 0.5 s a segment
    figures = {("tensorflow", False): (10.0, 20.0), ("tensorflow", True): (40.0, 20.0),
               ("jax", False): (20.0, None)}

    def measure(family, index, steps, jit, tiny, precision, backend):
        events.append((family, index, backend, jit))
        train, realtime = figures[backend, jit]
        if backend == "jax":  # 1.5 times TensorFlow's peak
            return (1e6, train), module.ProcessUsage(3 * 2**29, 2.0, 3_000_000)
        return (1e6, train, realtime, 1e9, 0.5), module.ProcessUsage(2**30, 0.5, 50_000)

    def matmul(sizes, repeats=10, dtype="float32"):
        events.append(f"peak {dtype}")
        return next(peaks)

    monkeypatch.setattr(module, "measure_in_a_process", measure)
    monkeypatch.setattr(module, "matmul_flops_per_second", matmul)
    monkeypatch.setattr(module, "gpu_memory_as_needed", lambda: [])
    monkeypatch.setattr(sys, "argv", ["bench_models.py", "--families", "samplecnn,transformer",
                                      "--no-bf16", "--backend", "jax"])
    capsys.readouterr()
    module.main()
    out = capsys.readouterr().out
    samplecnn = [("samplecnn", 0, "tensorflow", False), ("samplecnn", 0, "tensorflow", True),
                 ("samplecnn", 0, "jax", False),  # SE+multi; the second case without JAX
                 ("samplecnn", 1, "tensorflow", False), ("samplecnn", 1, "tensorflow", True)]
    transformer = [("transformer", 0, "tensorflow", False),
                   ("transformer", 0, "tensorflow", True), ("transformer", 0, "jax", False),
                   ("transformer", 1, "tensorflow", False), ("transformer", 1, "tensorflow", True)]
    assert events == ["peak float32", *samplecnn, "peak float32", *transformer, "peak float32"]
    # training MFU: segments/s x 3 forward passes x 1 GFLOP / 100 GFLOP/s
    assert ratios(out) == {"mfu_infer_samplecnn": 0.4, "mfu_train_samplecnn": 0.3,
                           "mfu_infer_samplecnn_xla": 0.4, "mfu_train_samplecnn_jax": 0.6,
                           "train_jax_speedup_samplecnn": 2.0,
                           "train_jax_speedup_transformer": 2.0,
                           "train_jax_peak_memory_samplecnn": 1.5,
                           "train_jax_peak_memory_transformer": 1.5}
    assert ("(to SE+multi: train 2.00); its process: peak 1.5 GB, 2.0 s in the "
            "kernel, 3.00 million minor page faults") in out
    far_apart = "the peaks before and after the family are 18.4% apart, over 10%"
    assert {line for line in out.splitlines() if line.startswith("disturbed ")} == {
        "disturbed mfu_train_samplecnn_xla 1.200 (above 1)",
        f"disturbed mfu_infer_transformer 0.408 ({far_apart})",
        f"disturbed mfu_train_transformer 0.306 ({far_apart})",
        f"disturbed mfu_infer_transformer_xla 0.408 ({far_apart})",
        f"disturbed mfu_train_transformer_xla 1.224 (above 1; {far_apart})",
        f"disturbed mfu_train_transformer_jax 0.612 ({far_apart})"}
    assert ("float32 peak beside samplecnn: 100.0 GFLOP/s before, 98.0 after, spread 2.0%; the "
            "MFU figures are against the higher") in out.splitlines()
    assert ("float32 peak beside transformer: 98.0 GFLOP/s before, 80.0 after, spread 18.4% "
            "(over 10%: its float32 MFU figures are disturbed); the MFU figures are against "
            "the higher") in out.splitlines()
    assert out.splitlines()[-1] == "matrix products at the end: 80.0 GFLOP/s (100.0 at the start)"


def test_the_model_bench_measures_the_first_case_in_turns_and_gives_the_median_ratio(
        monkeypatch, capsys):
    """bench_models.py --repeat 3 on injected figures: the first case's runs
    (TensorFlow, bfloat16, JAX) three times in turns, the second case's
    once; each speed and memory ratio is the median of the turns', each
    turn's row against the same turn's float32 row, after each turn's value;
    the MFU is of the turn of median speed."""
    pytest.importorskip("jax")
    monkeypatch.syspath_prepend(str(BENCH))
    module = load("bench_models")
    events = []
    # each turn's (float32, bfloat16, JAX) training segments/s; JAX's peak memory in GiB
    speeds = [(10.0, 15.0, 6.0), (8.0, 16.0, 6.0), (12.0, 15.0, 3.0), (5.0, None, None)]
    jax_peaks = iter([1.5, 0.5, 2.0])

    def measure(family, index, steps, jit, tiny, precision, backend):
        events.append((index, backend, precision))
        turn = speeds[sum(e[1:] == ("tensorflow", "float32") for e in events) - 1]
        if backend == "jax":
            return (1e6, turn[2]), module.ProcessUsage(int(next(jax_peaks) * 2**30), 1.0, 1)
        train = turn[1] if precision == "bfloat16" else turn[0]
        return (1e6, train, 20.0, 1e9, 0.5), module.ProcessUsage(2**30, 0.5, 1)

    monkeypatch.setattr(module, "measure_in_a_process", measure)
    monkeypatch.setattr(module, "matmul_flops_per_second", lambda sizes, repeats=10,
                        dtype="float32": 100e9)
    monkeypatch.setattr(module, "gpu_memory_as_needed", lambda: [])
    monkeypatch.setattr(sys, "argv", ["bench_models.py", "--families", "samplecnn", "--no-jit",
                                      "--backend", "jax", "--repeat", "3"])
    capsys.readouterr()
    module.main()
    out = capsys.readouterr().out
    first = [(0, "tensorflow", "float32"), (0, "tensorflow", "bfloat16"), (0, "jax", "float32")]
    assert events == first * 3 + [(1, "tensorflow", "float32")]
    found = ratios(out)
    # bfloat16: 1.5, 2.0, 1.25; JAX: 0.6, 0.75, 0.25; JAX's memory: 1.5, 0.5, 2.0
    assert {k: found[k] for k in ("train_bf16_speedup_samplecnn", "train_jax_speedup_samplecnn",
                                  "train_jax_peak_memory_samplecnn")} == {
        "train_bf16_speedup_samplecnn": 1.5, "train_jax_speedup_samplecnn": 0.6,
        "train_jax_peak_memory_samplecnn": 1.5}
    assert "train_jax_speedup_samplecnn in 3 turns: 0.600, 0.750, 0.250" in out.splitlines()
    assert "train_bf16_speedup_samplecnn in 3 turns: 1.500, 2.000, 1.250" in out.splitlines()
    # the float32 row of median speed (10 segments/s): 10 x 3 x 1 GFLOP / 100 GFLOP/s
    assert found["mfu_train_samplecnn"] == 0.3 and found["mfu_train_samplecnn_jax"] == 0.18


def test_the_model_bench_refuses_a_repeat_under_1(monkeypatch, capsys):
    monkeypatch.syspath_prepend(str(BENCH))
    module = load("bench_models")
    monkeypatch.setattr(sys, "argv", ["bench_models.py", "--repeat", "0"])
    with pytest.raises(SystemExit) as stop:
        module.main()
    assert stop.value.code == 2
    assert capsys.readouterr().err.splitlines()[-1].endswith(
        "error: --repeat must be 1 or more, got 0")


def test_the_model_bench_flags_an_mfu_above_1_or_between_peaks_over_10_percent_apart(
        monkeypatch):
    """The rule on its own: above 1, or peaks more than PEAK_SPREAD_LIMIT of
    the higher apart (10% is still steady)."""
    monkeypatch.syspath_prepend(str(BENCH))
    module = load("bench_models")
    assert module.PEAK_SPREAD_LIMIT == 0.10
    assert module.peak_spread(100.0, 90.0) == module.peak_spread(90.0, 100.0) == 0.1
    assert module.disturbance(1.0, 0.1) is None
    assert module.figure_line("mfu_train_x", 1.0, 0.1) == "ratio mfu_train_x 1.000"
    assert module.figure_line("mfu_train_x", 1.001, 0.0) == "disturbed mfu_train_x 1.001 (above 1)"
    assert module.figure_line("mfu_train_x", 0.5, 0.101) == (
        "disturbed mfu_train_x 0.500 (the peaks before and after the family are 10.1% apart, "
        "over 10%)")


def test_the_untrained_model_of_the_benches_carries_its_metadata(tmp_path):
    """bench/common.py's untrained sample-level CNN comes with a
    TaggerMetadata that a predictor reads and a saved file keeps."""
    from tagger.inference.engine.registry import make_predictor
    from tagger.models.saved import read_saved_info
    from tagger.models.tagger_metadata import TaggerMetadata

    common = load("common")
    model, info = common.untrained_samplecnn("se", 1 / 16)
    assert isinstance(info, TaggerMetadata)
    assert (info.model, info.model_args) == ("samplecnn", {"block": "se", "multi": True,
                                                           "width": 1 / 16})
    assert len(info.tag_names) == model.outputs[0].shape[-1] == 50
    predictor = make_predictor("keras", model, info)
    assert (predictor.sample_rate, predictor.window_samples) == (22050, 59049)
    path = common.saved_untrained_samplecnn(str(tmp_path / "model.keras"), "se", 1 / 16)
    assert read_saved_info(path) == info


def test_the_training_profile_counts_each_training_form_layer_as_its_kind(monkeypatch):
    """The layers the training form puts in place of a model's (stacked
    taps, fused norms, convolutions, the folded input norm) are grouped
    with the layers they compute."""
    import keras

    from tagger.models import folded_input_norm, training_graph

    monkeypatch.syspath_prepend(str(BENCH))
    module = load("profile_training")
    conv = keras.layers.Conv2D(4, (7, 3))
    norm = keras.layers.BatchNormalization()
    conv1d = keras.layers.Conv1D(4, 3, padding="same")
    convolve = training_graph.convolution_of(conv, False)
    assert [module.layer_kind(layer) for layer in (
        training_graph.TrainingTapsConv2D(conv), training_graph.FusedBatchNorm(norm),
        training_graph.TrainingConv(conv1d, gemm=True),
        folded_input_norm.NormalizedImage(norm),
        folded_input_norm.FoldedNormConv(conv, norm, convolve))] == [
        "convolution", "batch_norm", "convolution", "batch_norm", "convolution"]


def test_the_accelerator_bench_names_the_gpu_or_says_that_it_runs_on_the_cpu(monkeypatch):
    monkeypatch.syspath_prepend(str(BENCH))
    module = load("bench_accelerator")
    smi = "NVIDIA H100 80GB HBM3, 81559 MiB, 550.54.15"
    details = {"device_name": "NVIDIA H100 80GB HBM3", "compute_capability": (9, 0)}
    assert module.gpu_line(details, 1, smi) == (
        "GPU: NVIDIA H100 80GB HBM3, compute capability 9.0 (1 visible; the first runs the "
        f"work); nvidia-smi: {smi}")
    assert module.gpu_line(details, 2, None) == (
        "GPU: NVIDIA H100 80GB HBM3, compute capability 9.0 (2 visible; the first runs the "
        "work)")
    assert module.gpu_line(None, 0, None) == "GPU: none visible to TensorFlow; running on the CPU"
    assert module.gpu_line(None, 0, smi) == (
        f"GPU: none visible to TensorFlow (nvidia-smi lists {smi}: install TensorFlow's CUDA "
        "libraries, pip install 'tensorflow[and-cuda]'); running on the CPU")


@pytest.mark.parametrize("tiny", [True, False])
def test_the_accelerator_bench_says_what_its_spent_budget_left_out(monkeypatch, capsys,
                                                                   tmp_path, tiny):
    """With its budget spent after the matrix-product peaks, it starts no
    part, names each, and ends without error: a full run's parts are both
    families in each config and a quick run of each, a tiny run's each
    kind once (the full run's peaks injected: its products take seconds)."""
    monkeypatch.syspath_prepend(str(BENCH))
    module = load("bench_accelerator")
    monkeypatch.setattr(module, "nvidia_smi", lambda: None)
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    if not tiny:
        monkeypatch.setattr(module, "matmul_flops_per_second",
                            lambda sizes, repeats=10, dtype="float32": 1e12)
    capsys.readouterr()
    assert module.main([*(["--tiny"] if tiny else []), "--budget-s", "0.001"]) == 0
    out = capsys.readouterr().out
    assert set(ratios(out)) == {"gpu_matmul_bf16_over_f32"}
    if tiny:
        left_out = ["samplecnn f32", "samplecnn bf16", "samplecnn xla", "transformer f32",
                    "synthetic dataset of 32 clips of 11 s", "its records (build_mtt.py)",
                    "train.py --quick transformer"]
    else:
        left_out = [f"{family} {config}" for family in ACCELERATOR_FAMILIES
                    for config in ("f32", "bf16", "xla")]
        left_out += ["synthetic dataset of 200 clips of 29.1 s", "its records (build_mtt.py)",
                     "train.py --quick samplecnn", "train.py --quick transformer"]
    assert out.splitlines()[-1].endswith(
        f" s of the 0 s budget; left out for want of time: {', '.join(left_out)}")
    assert list(tmp_path.glob("bench-accelerator-*")) == []  # its work folder removed


def test_the_accelerator_bench_works_in_a_new_or_empty_out_folder(monkeypatch, capsys,
                                                                  tmp_path):
    monkeypatch.syspath_prepend(str(BENCH))
    module = load("bench_accelerator")
    assert module.parse_args(["--out", str(tmp_path / "new")]).out == str(tmp_path / "new")
    assert module.parse_args(["--out", str(tmp_path)]).out == str(tmp_path)  # empty
    (tmp_path / "dataset").mkdir()
    (tmp_path / "file").touch()
    for taken in (tmp_path, tmp_path / "file"):
        with pytest.raises(SystemExit) as exit:
            module.parse_args(["--out", str(taken)])
        assert exit.value.code == 2
        assert capsys.readouterr().err.splitlines()[-1].endswith(
            f": error: --out {taken} is a file or a folder holding files already; give a new "
            "or empty folder, or leave --out out for a temporary one")


def test_the_accelerator_bench_refuses_what_its_backend_cannot_do(monkeypatch, capsys, tmp_path):
    monkeypatch.syspath_prepend(str(BENCH))
    module = load("bench_accelerator")
    installed = importlib.util.find_spec
    for argv, missing, message in (
            (["--backend", "jax", "--out", str(tmp_path)], None,
             "--out keeps the quick runs' files, and --backend jax makes none: leave one of "
             "them out"),
            ([], "tensorflow", "tensorflow is not installed here: install requirements.txt, or "
             "measure the models under Keras's JAX backend with --backend jax"),
            (["--backend", "jax"], "jax", "jax is not installed here (pip install jax; "
             "'jax[cuda12]' or 'jax[cuda13]' for an NVIDIA GPU)")):
        monkeypatch.setattr(importlib.util, "find_spec",
                            lambda name, *a, missing=missing: None if name == missing
                            else installed(name, *a))
        with pytest.raises(SystemExit) as exit:
            module.parse_args(argv)
        assert exit.value.code == 2
        assert capsys.readouterr().err.splitlines()[-1].endswith(f": error: {message}")


def test_the_jax_mfu_is_the_steps_flops_over_the_peak(monkeypatch, capsys):
    """accelerator_jax.measure_family: MFU = steps/s x 3 forward passes x
    forward FLOPs / the precision's peak, and bfloat16's speedup."""
    monkeypatch.syspath_prepend(str(BENCH))
    module = load("accelerator_jax")
    figures = {"float32": (4.0, 5e9), "mixed_bfloat16": (6.0, 5e9)}  # (steps/s, FLOPs)
    monkeypatch.setattr(module, "train_rate", lambda family, case, steps, policy:
                        figures[policy])
    case = type("Case", (), {"label": "a case", "batch_size": 2})()
    rates = module.measure_family("samplecnn", case, 1, {"float32": 1e11,
                                                         "mixed_bfloat16": 2e11})
    assert rates == {"f32": 4.0, "bf16": 6.0}
    found = ratios(capsys.readouterr().out)
    assert found["gpu_jax_train_mfu_f32_samplecnn"] == pytest.approx(4 * 3 * 5e9 / 1e11)
    assert found["gpu_jax_train_mfu_bf16_samplecnn"] == pytest.approx(6 * 3 * 5e9 / 2e11)
    assert found["gpu_jax_train_bf16_speedup_samplecnn"] == pytest.approx(1.5)


@pytest.mark.slow
def test_the_accelerator_bench_measures_the_models_under_keras_jax_backend(short_tmp):
    pytest.importorskip("jax")
    stdout = run_as_a_script("bench_accelerator.py", ["--backend", "jax", "--tiny"], short_tmp,
                             without_tensorflow=True)
    lines = stdout.splitlines()
    assert lines[0].startswith("CPU: ")
    assert (lines[1] == "JAX computes on the CPU: no GPU visible to JAX"
            or lines[1].startswith("GPU: "))
    found = ratios(stdout)
    # each kind of part once: SE+multi in both precisions, the transformer in float32
    assert set(found) == {"gpu_jax_matmul_bf16_over_f32", "gpu_jax_train_bf16_speedup_samplecnn",
                          *(f"gpu_jax_train_{figure}_{config}_{family}"
                            for figure in ("steps_per_s", "mfu")
                            for config, family in (("f32", "samplecnn"), ("bf16", "samplecnn"),
                                                   ("f32", "transformer")))}
    # (no bound on a tiny run's MFU: its peak is the best of two 256-square
    # products, which a loaded machine can slow more than the step; the
    # formula is test_the_jax_mfu_is_the_steps_flops_over_the_peak's)
    assert all(value > 0 for value in found.values())
    assert re.fullmatch(r"done in \d+ s, no budget; train\.py --quick needs TensorFlow and "
                        r"was not run", lines[-1]), lines[-1]


@pytest.mark.slow
def test_the_accelerator_bench_under_jax_says_what_its_spent_budget_left_out(short_tmp):
    pytest.importorskip("jax")
    stdout = run_as_a_script("bench_accelerator.py",
                             ["--backend", "jax", "--tiny", "--budget-s", "0.001"], short_tmp)
    assert set(ratios(stdout)) == {"gpu_jax_matmul_bf16_over_f32"}
    assert stdout.splitlines()[-1].endswith(
        " s of the 0 s budget; train.py --quick needs TensorFlow and was not run; left out for "
        "want of time: samplecnn (JAX), transformer (JAX)")


def test_an_einsum_is_counted_as_its_multiply_adds(monkeypatch):
    """TensorFlow's own count leaves Einsum ops out; graph_flops adds 2 per
    multiply-add of each, beside the matrix products it counts."""
    import keras

    monkeypatch.syspath_prepend(str(BENCH))
    from flops import einsum_flops, graph_flops

    assert einsum_flops("btd,dhk->bhtk", [(2, 5, 4), (4, 3, 6)]) == 2 * 2 * 5 * 4 * 3 * 6
    assert einsum_flops("...d,dk->...k", [(2, 5, 4), (4, 7)]) == 2 * 2 * 5 * 4 * 7
    # the ellipses broadcast from the right: (2, 3) with (3,)
    assert einsum_flops("...ij,...jk->...ik", [(2, 3, 4, 5), (3, 5, 6)]) == 2 * 2 * 3 * 4 * 5 * 6
    assert einsum_flops("bhqk,bhsk->bhqs", [(1, 2, 5, 3), (1, 2, 5, 3)]) == 2 * 2 * 5 * 3 * 5
    assert einsum_flops("btd->bdt", [(2, 5, 4)]) == 0
    with pytest.raises(ValueError, match="operand"):
        einsum_flops("btd,dk->btk", [(2, 5), (4, 7)])

    class Projection(keras.layers.Layer):
        def build(self, shape):
            self.kernel = self.add_weight(shape=(shape[-1], 8, 16))

        def call(self, x):
            return keras.ops.einsum("btd,dhk->bhtk", x, self.kernel)

    inputs = keras.Input((10, 64))
    outputs = keras.layers.Dense(32, use_bias=False)(Projection()(inputs))
    model = keras.Model(inputs, outputs)
    assert graph_flops(model, (10, 64)) == 2 * 10 * 64 * 8 * 16 + 2 * 8 * 10 * 16 * 32


def test_self_attention_is_counted_whole(monkeypatch):
    """A self-attention layer's count is its four projections and its two
    products over the tokens (each 10% or more of it), and the element-wise
    rest (under 2%)."""
    import keras

    from tagger.layers import MultiHeadSelfAttention

    monkeypatch.syspath_prepend(str(BENCH))
    from flops import graph_flops

    tokens, width, heads = 32, 64, 2
    inputs = keras.Input((tokens, width))
    outputs, _ = MultiHeadSelfAttention(heads, use_qkv_bias=False)(inputs)
    products = 2 * tokens * width * width * 4 + 2 * 2 * tokens * tokens * width
    assert graph_flops(keras.Model(inputs, outputs), (tokens, width)) == pytest.approx(
        products, rel=0.02)


@pytest.mark.slow
def test_the_jax_flop_count_agrees_with_tensorflows(monkeypatch):
    """XLA's count of the tiny sample-level CNN's forward pass under Keras's
    JAX backend against TensorFlow's graph count (they differ only in the
    element-wise work each counts)."""
    pytest.importorskip("jax")
    monkeypatch.syspath_prepend(str(BENCH))
    from flops import graph_flops

    from tagger.models import build_model

    code = ("import sys; sys.path[:0] = ['bench', '.']; import numpy as np, accelerator_jax\n"
            "from tagger.models import build_model\n"
            "model = build_model('samplecnn', num_tags=50, width=0.0625, input_length=59049)\n"
            "print(accelerator_jax.forward_flops(model, np.zeros((2, 59049), 'float32')) / 2)")
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True,
                          env={**os.environ, "KERAS_BACKEND": "jax"}, timeout=HANG_S)
    assert done.returncode == 0, done.stderr[-3000:]
    model = build_model("samplecnn", num_tags=50, width=0.0625, input_length=59049)
    assert float(done.stdout.split()[-1]) == pytest.approx(graph_flops(model, (59049,)), rel=0.03)


@pytest.mark.slow
def test_an_accelerator_bench_part_is_killed_at_its_limit_with_what_it_started(
        monkeypatch, capsys, tmp_path):
    """A part past its time limit is killed with the processes it started
    and noted as left out; a part that fails prints the end of its log.
    The limit counts from when the part has started its process, however
    long that takes on a busy machine."""
    monkeypatch.syspath_prepend(str(BENCH))
    module = load("bench_accelerator")
    monkeypatch.setattr(module, "MIN_PART_S", 0)
    marker = tmp_path / "child.pid"

    class StartedFirst(subprocess.Popen):
        def wait(self, timeout=None):
            if timeout is not None:
                until(marker.exists, "the part's own process", HANG_S)
            return super().wait(timeout)

    monkeypatch.setattr(module, "subprocess", types.SimpleNamespace(
        Popen=StartedFirst, STDOUT=subprocess.STDOUT, TimeoutExpired=subprocess.TimeoutExpired))
    sleep = f"import time; time.sleep({HANG_S})"
    sleeper = ("import os, subprocess, sys, time\n"
               f"child = subprocess.Popen([sys.executable, '-c', {sleep!r}])\n"
               f"open({str(marker)!r}, 'w').write(str(child.pid))\n"
               f"{sleep}\n")
    budget = module.Budget(HANG_S)
    start = time.monotonic()
    capsys.readouterr()
    assert module.run_part("sleeper", ["-c", sleeper], str(tmp_path), 3, budget) == "stopped"
    assert time.monotonic() - start < HANG_S  # killed: not waited for
    assert capsys.readouterr().out == "sleeper: stopped at its time limit (3 s)\n"
    assert budget.left_out == ["sleeper"]
    child = int(marker.read_text())
    until(lambda: not running(child), "the part's own process to end", HANG_S)
    failing = "import sys; print('first'); print('second'); sys.exit('what went wrong')"
    assert module.run_part("failing", ["-c", failing], str(tmp_path), HANG_S, budget) == "failed"
    assert capsys.readouterr().out.splitlines() == [
        "failing: failed (exit status 1); the end of its log:", "  first", "  second",
        "  what went wrong"]


def test_an_accelerator_measurement_starts_a_process_only_where_it_has_a_time_limit(
        monkeypatch, capsys):
    """Without a time limit (a tiny run without --budget-s) each config's
    measurement runs in the bench's process; with one, in a process of its
    own given that limit, and one stopped there is noted as left out. Both
    give the same figures."""
    monkeypatch.syspath_prepend(str(BENCH))
    module = load("bench_accelerator")
    calls = []
    # parameters, training segments/s, real-time factor, FLOPs a segment, seconds a segment
    figures = (1000, 64.0, 500.0, 1e6, 0.1)

    def in_this_process(family, case, steps, jit, precision):
        calls.append(("here", jit, precision, case.label))
        return figures

    def in_a_process(family, index, steps, jit, tiny, precision, timeout=None):
        calls.append(("process", jit, precision, timeout))
        if jit:
            raise subprocess.TimeoutExpired("bench_models.py", timeout)
        return figures, 2**30

    monkeypatch.setattr(module, "measure", in_this_process)
    monkeypatch.setattr(module, "measure_in_a_process", in_a_process)
    peaks = {"float32": 1e12, "bfloat16": 2e12}
    capsys.readouterr()
    assert module.measure_family("samplecnn", 1, True, peaks, module.Budget(None)) == []
    assert calls == [("here", jit, precision, "samplecnn (tiny)") for jit, precision in
                     ((False, "float32"), (False, "bfloat16"), (True, "float32"))]
    here = ratios(capsys.readouterr().out)
    assert here["gpu_train_bf16_speedup_samplecnn"] == here["gpu_train_xla_speedup_samplecnn"] == 1
    calls.clear()
    budget = module.Budget(3600)
    assert module.measure_family("samplecnn", 1, True, peaks, budget) == []
    assert [call[:3] for call in calls] == [("process", False, "float32"),
                                            ("process", False, "bfloat16"),
                                            ("process", True, "float32")]
    assert all(0 < call[3] <= module.MEASURE_LIMIT_S for call in calls)
    assert budget.left_out == ["samplecnn xla"]
    there = ratios(capsys.readouterr().out)
    assert there == {name: value for name, value in here.items() if "xla" not in name}


def test_a_tiny_accelerator_run_has_no_budget_and_no_time_limits(monkeypatch):
    """--tiny runs to its step counts however busy the machine: no budget
    and no time limit on any part, unless --budget-s is given."""
    monkeypatch.syspath_prepend(str(BENCH))
    module = load("bench_accelerator")
    tiny = module.budget_of(module.parse_args(["--tiny"]))
    assert tiny.starts("a part") and tiny.limit(120) is None and tiny.left_out == []
    assert re.fullmatch(r"done in \d+ s, no budget", tiny.line())
    for argv, seconds in ((["--tiny", "--budget-s", "600"], 600), ([], 420)):
        budget = module.budget_of(module.parse_args(argv))
        assert budget.starts("a part") and 0 < budget.limit(120) <= 120
        assert re.fullmatch(rf"done in \d+ s of the {seconds} s budget", budget.line())


def running(pid: int) -> bool:
    """Whether process `pid` exists and has not ended (a zombie has)."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rpartition(")")[2].split()[0] not in ("Z", "X")
    except FileNotFoundError:
        return False


def given_tones(folder, count: int) -> Path:
    """A folder of `count` short WAV tones, as a user's --files."""
    folder.mkdir()
    for i in range(count):
        write_audio(folder / f"tone{i}.wav", 16000 * 4, sample_rate=16000, seed=i)
    return folder


@pytest.mark.slow
def test_the_int8_bench_checks_the_files_it_is_given(short_tmp, monkeypatch, capsys):
    """--files: the first --calibration-files calibrate, the next
    --check-files are checked, the rest left out."""
    files = given_tones(short_tmp / "music", 4)
    stdout = run_in_this_process("bench_int8.py", [
        "--tiny", "--files", str(files), "--calibration-files", "1", "--check-files", "2",
        "--engines", "keras-bf16"], short_tmp, monkeypatch, capsys)
    assert ": 2 check files, " in stdout
    assert stdout.split("calibrated on 1 other files: ")[1].splitlines()[0] == "tone0.wav"
    assert set(ratios(stdout)) == {f"int8_{figure}_keras_bf16" for figure in (
        "top5_overlap", "max_score_difference", "speed_of_keras")}


@pytest.mark.slow
def test_the_tag_bench_tags_the_files_it_is_given(short_tmp, monkeypatch, capsys):
    files = given_tones(short_tmp / "music", 3)
    stdout = run_in_this_process("bench_tag.py", [
        "--files", str(files), "--models", "pons_musicnn", "--width", "0.0625", "--rounds",
        "1", "--chunk-files", "3", "--batch-size", "4", "--engines", "keras"],
        short_tmp, monkeypatch, capsys)
    assert stdout.splitlines()[1].startswith("3 files (given); batch 4; ")
    assert ratios(stdout)["tag_realtime_pons_musicnn_keras"] > 0


@pytest.mark.parametrize("script, argv, message", [
    ("bench_int8", ["--tiny", "--model", "MSD_musicnn"],
     "--tiny runs an untrained tiny model: leave out --model"),
    ("bench_int8", ["--files", "music", "--music-dir", "m", "--debs-dir", "d"],
     "--music-dir and --debs-dir lay out the soundtracks: leave them out with --files"),
    ("bench_int8", ["--tiny", "--debs-dir", "d"],
     "--debs-dir lays out the soundtracks: leave it out with --tiny"),
    ("bench_int8", ["--tiny", "--check-files", "3"],
     "--tiny's generated audio is 2 calibration and 2 check files: count files with --files "
     "only"),
    ("bench_int8", ["--files", "music", "--calibration-files", "0"],
     "--calibration-files and --check-files take positive counts"),
    ("bench_tag", ["--files", "music", "--clips", "3", "--work-dir", "w"],
     "--work-dir and --clips describe the synthetic clips: leave them out with --files"),
    ("bench_own_tags_heads", ["--tiny", "--also-from", "MSD_musicnn"],
     "--tiny makes its own bodies: leave out --also-from"),
    ("bench_own_tags_heads", ["--tiny", "--from", "a.keras", "--also-from", "b.keras"],
     "--tiny makes its own bodies: leave out --from and --also-from"),
    ("bench_own_tags_heads", ["records", "--width", "0.25"],
     "--width sizes --tiny's untrained body: give it with --tiny only"),
    ("bench_own_tags_bodies", ["--tiny", "--bodies", "MTT_musicnn"],
     "--tiny makes its own bodies: leave out --bodies"),
    ("bench_own_tags_bodies", ["records", "--rounds", "2"],
     "--rounds counts the noisy student's rounds: give it with --noisy-student"),
    ("bench_own_tags_bodies", ["records", "--per-tag", "0"],
     "--per-tag, --seeds and --max-combined count from 1"),
    ("bench_suggest", ["--tiny", "--from", "a.keras"],
     "--tiny makes its own bodies: leave out --from"),
    ("bench_windows", ["--files", "music", "--packages", "nexuiz-music"],
     "--packages names the soundtracks to measure on: leave it out with --files"),
    ("bench_windows", ["--tiny", "--scores", "s.npz"],
     "--scores keeps the scores of recordings: leave it out with --tiny"),
])
def test_a_bench_flag_that_does_not_apply_is_refused(script, argv, message, monkeypatch,
                                                    capsys):
    monkeypatch.syspath_prepend(str(BENCH))
    module = load(script)
    with pytest.raises(SystemExit) as exit:
        module.parse_args(argv)
    assert exit.value.code == 2
    assert capsys.readouterr().err.splitlines()[-1].endswith(f": error: {message}")


def test_the_bodies_bench_takes_each_also_from_and_its_defaults(monkeypatch):
    monkeypatch.syspath_prepend(str(BENCH))
    module = load("bench_own_tags_heads")
    args = module.parse_args(["records", "--also-from", "MSD_musicnn", "--also-from",
                              "b.keras"])
    assert args.also_from == ["MSD_musicnn", "b.keras"]
    assert (args.records, args.from_model) == ("records", "MTT_musicnn")
    tiny = module.parse_args(["--tiny", "--width", "0.25"])
    assert (tiny.width, tiny.also_from, tiny.from_model) == (0.25, [], "MTT_musicnn")
    assert module.parse_args(["--tiny"]).width == 1 / 16


def test_the_tag_bench_times_every_engine_in_turn_with_keras(monkeypatch):
    """On each chunk the engines score one after another, the order
    reversed every other round; each engine's speed is the median over
    rounds of keras's seconds over its own."""
    monkeypatch.syspath_prepend(str(BENCH))
    module = load("bench_tag")
    order = []
    seconds = {"keras": [2.0, 2.0, 4.0], "int8": [1.0, 1.0, 1.0], "bf16": [4.0, 2.0, 8.0]}

    def model_only(predictor, windows, batch_size):
        order.append(predictor)
        return seconds[predictor][(len(order) - 1) // 6] * len(windows) / 2  # 6 calls a round

    monkeypatch.setattr(module, "model_only", model_only)
    chunks = [np.zeros((2, 3)), np.zeros((2, 3))]
    speeds = module.speeds_in_turns({"keras": "keras", "int8": "int8", "bf16": "bf16"},
                                    chunks, batch_size=4, rounds=3)
    forward, backward = ["keras", "int8", "bf16"], ["bf16", "int8", "keras"]
    assert order == (forward * 2 + backward * 2 + forward * 2)
    assert speeds == {"keras": 1.0, "int8": 2.0, "bf16": 0.5}  # medians of (2, 2, 4), (.5, 1, .5)


def test_the_gpu_jax_bench_trains_at_a_batch_the_devices_divide(monkeypatch):
    """train.py refuses a batch its devices do not divide: the paper's 23
    becomes the nearest multiple of the devices, at least one a device."""
    monkeypatch.syspath_prepend(str(BENCH))
    module = load("bench_gpu_jax")
    cases = {(23, 1): 23, (23, 2): 24, (23, 8): 24, (16, 3): 15, (23, 4): 24, (2, 8): 8}
    assert {case: module.run_batch(*case) for case in cases} == cases


def test_the_gpu_jax_bench_fetches_what_a_run_imports_without_tensorflow(monkeypatch):
    """docs/jax.md's packages that JAX machines lack are among its wheels:
    tensorboard (a run's scalars) and what its event writer imports."""
    monkeypatch.syspath_prepend(str(BENCH))
    names = {name for name, _ in load("bench_gpu_jax").WHEELS}
    assert {"keras", "soundfile", "soxr", "google-crc32c", "mutagen", "tensorboard",
            "protobuf", "absl-py"} <= names


@pytest.mark.slow  # imports torch: seconds of CPU
def test_the_torchaudio_stand_in_computes_the_zoos_log_mel(monkeypatch):
    """bench/torchaudio_standin.py's MelSpectrogram and AmplitudeToDB, as the
    original zoo builds them (n_fft 512, 0-8000 Hz, 128 bins, 16 kHz), give
    the frames of the Short-chunk CNN's LogMel layer (torchaudio's features,
    checked against the published models by the converter's tests)."""
    torch = pytest.importorskip("torch")
    monkeypatch.syspath_prepend(str(BENCH))
    standin = load("torchaudio_standin")
    from tagger.layers.log_mel import LogMel
    from tagger.models.short_chunk import LOGMEL

    waveform = 0.1 * np.random.default_rng(0).standard_normal((2, 4000)).astype("float32")
    theirs = standin.AmplitudeToDB()(standin.MelSpectrogram(
        sample_rate=16000, n_fft=512, f_min=0.0, f_max=8000.0, n_mels=128)(
        torch.from_numpy(waveform))).numpy()
    ours = np.asarray(LogMel(16000, **dataclasses.asdict(LOGMEL))(waveform))
    assert theirs.shape == (2, 128, 4000 // 256 + 1)
    np.testing.assert_allclose(theirs.transpose(0, 2, 1), ours, atol=2e-3)


def test_the_peer_bench_refuses_unequal_counts_and_a_folder_without_the_code(
        monkeypatch, tmp_path, capsys):
    pytest.importorskip("torch")  # without it the bench stops at that first
    monkeypatch.syspath_prepend(str(BENCH))
    module = load("bench_peer")
    with pytest.raises(SystemExit, match="no model.py in"):
        module.main(["--peer-dir", str(tmp_path)])
    figures = iter([{"trainable": 10, "steps_per_s": 2.0}, {"trainable": 11, "steps_per_s": 3.0}])
    monkeypatch.setattr(module, "measure", lambda kind, family, args, steps=None: next(figures))
    (tmp_path / "model.py").write_text("")
    with pytest.raises(SystemExit, match=r"short_cnn's trainable counts differ: "
                                         r"\{'peer': 10, 'tensorflow': 11\}"):
        module.main(["--peer-dir", str(tmp_path), "--families", "short_cnn", "--backends",
                     "tensorflow", "--no-xla", "--rounds", "1"])
    with pytest.raises(SystemExit):
        module.main(["--peer-dir", str(tmp_path), "--families", "vgg"])
    assert "not a family or backend of this bench: vgg" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        module.main(["--peer-dir", str(tmp_path), "--backends", "jax", "--no-xla"])
    assert "--no-xla applies to the tensorflow backend" in capsys.readouterr().err


def test_the_peer_ratio_is_our_best_median_over_theirs(monkeypatch):
    monkeypatch.syspath_prepend(str(BENCH))
    module = load("bench_peer")
    rates = {"peer": [1.0, 2.0, 4.0], "tensorflow": [1.0, 3.0, 3.0],
             "tensorflow_xla": [4.0, 5.0, 0.5], "jax": [1.0, 1.0, 9.0]}
    assert module.ratio_lines("fcn", rates, ["tensorflow", "jax"]) == [
        "ratio peer_train_fcn_tf 2.000", "ratio peer_train_fcn_jax 0.500"]


def test_the_roofline_bound_is_the_slower_of_compute_and_memory(monkeypatch):
    monkeypatch.syspath_prepend(str(BENCH))
    monkeypatch.setenv("KERAS_BACKEND", "tensorflow")
    module = load("bench_roofline")
    assert os.environ["KERAS_BACKEND"] == "tensorflow"  # imported, it leaves the backend alone
    ridge = module.H200_FLOPS / module.H200_BYTES_PER_S
    compute = module.Bound(flops=2 * module.H200_FLOPS, bytes=module.H200_BYTES_PER_S)
    assert (compute.seconds, compute.mfu, compute.limit) == (2.0, 1.0, "compute")
    memory = module.Bound(flops=ridge * 1e9 / 4, bytes=1e9)
    assert memory.limit == "memory" and memory.intensity == pytest.approx(ridge / 4)
    assert memory.mfu == pytest.approx(0.25)
    assert memory.seconds == pytest.approx(1e9 / module.H200_BYTES_PER_S)


@pytest.mark.slow  # imports torch: seconds of CPU
def test_the_peer_step_compiled_trains_the_originals_model(monkeypatch):
    """The original's step under --peer-compile, on the stand-in of its
    model.py: its trainable count is our tiny Short-chunk CNN's, and the
    model timed is the one torch.compile returns (here a recorder of what
    it was given; the bench's tiny run times the eager step)."""
    torch = pytest.importorskip("torch")
    monkeypatch.syspath_prepend(str(BENCH))
    monkeypatch.setattr(sys, "path", list(sys.path))  # the peer's folder joins it
    for name in ("model", "torchaudio", "torchaudio.transforms", "torchaudio_standin"):
        monkeypatch.setitem(sys.modules, name, None)  # the peer's imports, dropped after
        del sys.modules[name]
    module = load("bench_peer")
    given = []
    monkeypatch.setattr(torch, "compile", lambda model: given.append(model) or model)
    monkeypatch.setattr(torch, "set_num_threads", lambda n: None)
    figures = module.peer_steps_per_second("short_cnn", str(ROOT / "tests" / "peer_standin"),
                                           1, True, True)
    assert figures["trainable"] == 4672 and figures["steps_per_s"] > 0
    assert [type(model).__name__ for model in given] == ["ShortChunkCNN"]
    with pytest.raises(SystemExit, match="model.py has no class FCN \\(family fcn\\)"):
        module.peer_model("fcn", str(ROOT / "tests" / "peer_standin"), True)


def test_the_roofline_bench_refuses_a_family_it_does_not_have(monkeypatch, capsys):
    pytest.importorskip("jax")  # without it, it stops at that first
    monkeypatch.syspath_prepend(str(BENCH))
    with pytest.raises(SystemExit) as exit:
        load("bench_roofline").main(["--families", "samplecnn,vgg"])
    assert exit.value.code == 2 and "not a family: vgg" in capsys.readouterr().err
