"""Shared fixtures: a small synthetic MagnaTagATune-layout dataset, its
records (raw int16, with an unlabelled `student` split, log-mel) and a tiny
saved model for them.

Each is built once per test run, however many pytest-xdist workers run
(`tests.checks.built_once`): the synthetic dataset is 40 clips of 6 s (two
59049-sample segments each at 22050 Hz, `tests/presets.py`), with the
synthetic generator's broken files. Tests only read what these name.
"""

from __future__ import annotations

import contextlib
import multiprocessing.process
import os
import platform
import subprocess

import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
# TensorFlow's memory as the commands set it up in the processes tests start
# (tagger.runtime imports no TensorFlow until asked); this process's own
# tensors use the system's malloc (`_tensorflow_allocates_with_malloc_here`)
from tagger.host_memory import keep_freed_heap  # noqa: E402
from tagger.runtime import use_pooling_cpu_allocator  # noqa: E402

keep_freed_heap()
# the processor's name, which TensorFlow's first import asks for, is read with
# `uname -p` once per process: read here, so that the import starts no process
platform.processor()


@contextlib.contextmanager
def _process_starts():
    """Records (and lets through) every process started while it is open:
    a subprocess, or a multiprocessing worker (pools included)."""
    started = []
    popen_init = subprocess.Popen.__init__
    start = multiprocessing.process.BaseProcess.start

    def recorded_init(popen, args, *rest, **kwargs):
        started.append(f"subprocess {args!r:.80}")
        return popen_init(popen, args, *rest, **kwargs)

    def recorded_start(process):
        started.append(f"multiprocessing {process.name}")
        return start(process)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(subprocess.Popen, "__init__", recorded_init)
        patch.setattr(multiprocessing.process.BaseProcess, "start", recorded_start)
        yield started


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item):
    """The `slow` marker means what it says: a test that starts a process
    and is not marked slow fails, naming the process."""
    if item.get_closest_marker("slow") is not None:
        return (yield)
    with _process_starts() as started:
        result = yield
    if started:
        pytest.fail(f"this test starts a process ({started[0]}): mark it @pytest.mark.slow",
                    pytrace=False)
    return result


def pytest_configure(config):
    """Each test's CPU time, and the guard on it (tests/cpu_budget.py); each
    test process's peak memory (tests/worker_memory.py)."""
    from tests import cpu_budget, worker_memory

    limit_s, quick_limit_s = cpu_budget.machine_limits()
    config.pluginmanager.register(cpu_budget.CpuBudget(limit_s, quick_limit_s),
                                  "tagger_cpu_budget")
    allocators, arenas = {}, None
    if worker_memory.runs_tests(config):
        allocators = worker_memory.system_allocators()
        if worker_memory.fewer_malloc_arenas():
            arenas = worker_memory.MALLOC_ARENAS
    config.pluginmanager.register(worker_memory.WorkerMemory(allocators, arenas),
                                  "tagger_worker_memory")


@pytest.fixture(scope="session", autouse=True)
def _tensorflow_allocates_with_malloc_here(pytestconfig):
    """This process's tensors come from the system's malloc, and what a
    test took is returned when it ends; the processes tests start pool
    TensorFlow's memory as the commands do (tests/worker_memory.py)."""
    from tests.worker_memory import first_tensor_then_unset

    plugin = pytestconfig.pluginmanager.get_plugin("tagger_worker_memory")
    first_tensor_then_unset(plugin.allocators)
    use_pooling_cpu_allocator()


@pytest.fixture(autouse=True)
def _no_state_outlives_a_test():
    """Whatever a test changes for the whole process is put back when it
    ends (tests/isolation.py), so the suite passes in any order."""
    from tests.isolation import kept_global_state

    with kept_global_state():
        yield


@pytest.fixture(scope="session", autouse=True)
def _cache_home(tmp_path_factory):
    """TAGGER_HOME in a folder of the session's, for this process and those
    it starts: nothing a test converts or downloads (tag.py's int8 models,
    pretrained taggers) lands in the user's cache or is read from it. And
    TAGGER_ENGINE=keras: tag.py, tagger-serve and the beets plugin score
    with float32 Keras unless a test names an engine, whatever the machine
    (their default, auto, takes the fastest engine here: tests of it name
    it, tests/inference/test_auto_engine.py). JAX's persistent cache of
    compiled programs is the session's too: the JAX processes the tests
    start compile a program the session compiled before once."""
    with pytest.MonkeyPatch.context() as patch:
        home = tmp_path_factory.mktemp("tagger_home")
        patch.setenv("TAGGER_HOME", str(home))
        patch.setenv("JAX_COMPILATION_CACHE_DIR", str(home / "jax"))
        patch.setenv("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "0")
        patch.setenv("TAGGER_ENGINE", "keras")
        yield


@pytest.fixture(scope="session")
def synthetic_mtt(tmp_path_factory):
    """(data_dir, SyntheticSummary) of a small synthetic dataset."""
    from tests.checks import built_once

    def make(folder):
        from tagger.datasets.synthetic import generate
        from tests.presets import SYNTHETIC_CLIPS, SYNTHETIC_SECONDS

        summary = generate(str(folder / "mtt"), clips=SYNTHETIC_CLIPS,
                           seconds=SYNTHETIC_SECONDS, seed=0, progress=False)
        return str(folder / "mtt"), summary

    return built_once(tmp_path_factory, "synthetic", make)


def _records(tmp_path_factory, synthetic_mtt, name, **overrides):
    """(records_dir, dataset_info) of the synthetic dataset built with
    `overrides`, once per test run."""
    from tests.checks import build_mtt, built_once

    def make(folder):
        info = build_mtt(synthetic_mtt[0], folder / "records", **overrides)
        return str(folder / "records"), info

    return built_once(tmp_path_factory, name, make)


@pytest.fixture(scope="session")
def raw_records(synthetic_mtt, tmp_path_factory):
    """(records_dir, dataset_info) of the synthetic dataset as raw int16 records."""
    return _records(tmp_path_factory, synthetic_mtt, "raw_records")


@pytest.fixture(scope="session")
def student_records(synthetic_mtt, tmp_path_factory):
    """(records_dir, dataset_info) of raw records whose train split gives half
    its clips to an unlabelled `student` split."""
    records = _records(tmp_path_factory, synthetic_mtt, "student_records",
                       unlabelled_fraction=0.5)
    assert records[1].splits["student"]["labelled"] is False
    return records


@pytest.fixture(scope="session")
def logmel_records(synthetic_mtt, tmp_path_factory):
    """(records_dir, dataset_info) of log-mel records of the synthetic
    dataset (`presets.RECORDS_LOGMEL`: 32 bins, hop 256, f_max 8000)."""
    from tagger.config import FeatureConfig
    from tests.presets import RECORDS_LOGMEL

    return _records(tmp_path_factory, synthetic_mtt, "logmel_records",
                    features=FeatureConfig("logmel", logmel=RECORDS_LOGMEL))


@pytest.fixture(scope="session")
def tiny_se_dir(raw_records, tmp_path_factory):
    """Folder with model.keras and model.hdf5 of a tiny untrained SE+multi
    sample-level CNN (`presets.TINY_SE`, seed 0) for the raw records, saved
    as train() saves its models."""
    from tests.checks import built_once, saved_model
    from tests.presets import TINY_SE

    return built_once(tmp_path_factory, "tiny_se", lambda folder: saved_model(
        "samplecnn", TINY_SE, raw_records[1], folder, formats=(".keras", ".hdf5")).parent)


@pytest.fixture(scope="session")
def musicnn_wheel(tmp_path_factory):
    """The musicnn package's wheel, fetched once per test run with pip as a
    user's first use fetches it (tests.checks.musicnn_wheel); skips with
    pip's reason where pip could not fetch it, and fails under CI
    (`checks.skip_unless_ci`) or where the wheel is not the pinned one."""
    from tests.checks import built_once, musicnn_wheel, skip_unless_ci

    path, why = built_once(tmp_path_factory, "musicnn_wheel", musicnn_wheel)
    if path is None:
        skip_unless_ci(f"the musicnn wheel could not be fetched: {why}")
    return path


@pytest.fixture(scope="session")
def real_music(tmp_path_factory):
    """30 s excerpts of recorded music from Debian's game soundtracks
    (tests.checks.DEBIAN_MUSIC), cut once per test run from the packages in
    $TAGGER_TEST_MUSIC (.ci/run fetches them there) or fetched with apt-get
    download; skips saying why where neither works."""
    from tests.checks import built_once, debian_music

    paths, why = built_once(tmp_path_factory, "real_music", lambda folder: debian_music(
        folder, os.environ.get("TAGGER_TEST_MUSIC")))
    if paths is None:
        pytest.skip(f"no recorded music for this test: {why}")
    return paths


# Files whose tests share no costly module fixture and take minutes together:
# each of their tests is a unit of pytest-xdist's schedule of its own, so the
# two workers share them (every other file's tests run in one worker, its
# module fixtures built once).
EACH_TEST_ALONE = frozenset({"tests/test_bench_scripts.py",
                             "tests/training/test_backends_agree.py",
                             "tests/training/test_jax_backend.py"})


def work_unit(nodeid: str) -> str:
    """The unit of xdist's schedule a test belongs to: its file, or itself in
    a file of EACH_TEST_ALONE."""
    path = nodeid.split("::", 1)[0]
    return nodeid if path in EACH_TEST_ALONE else path


def pytest_xdist_make_scheduler(config, log):
    """`--dist loadfile` (pytest.ini's) scheduled by `work_unit`; checked with
    pytest-xdist 3.8.0, whose LoadFileScheduling groups by `_split_scope`."""
    if config.getoption("dist") != "loadfile":
        return None
    from xdist.scheduler import LoadFileScheduling

    class FilesAndLongTests(LoadFileScheduling):
        def _split_scope(self, nodeid: str) -> str:
            return work_unit(nodeid)

    return FilesAndLongTests(config, log)
