"""Every command of the README's table run in this one process, where
`import tensorflow` fails (this folder's sitecustomize.py), under Keras's
JAX backend, on tiny inputs: each command's `main(argv)` in turn (the
beets plugin through beets' own `main`, tagger-serve answering one
request), its exit code and what it printed on stdout and stderr (file
descriptors 1 and 2: native libraries' lines too) recorded.

    python every_command.py WORK INPUTS_JSON

INPUTS_JSON names what the suite saved under TensorFlow: `self_attention`
(a tiny attention tagger) and `resemul` (resemul's .hdf5 layout). Writes
WORK/report.json: {"runs": {name: {"code", "out", "err", "argv", "cpu_s"}},
and what the process saw: "tensorflow" (whether `import tensorflow`
works), "blocked" (the TensorFlow modules asked for), "served"
(tagger-serve's answer), "keras_before_jax" (whether a command refused for
its backend imported Keras)}. Everything the commands write is in WORK.
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.util
import json
import os
import shutil
import signal
import sys
import tempfile
import threading
import time
import traceback
import urllib.request

# Keras's backend as the user would set it; the first commands are run with
# ones tagger does not run on
os.environ["KERAS_BACKEND"] = "jax"

COMMANDS = ("attention", "build_folder", "build_msd", "build_mtt", "convert_weights", "demo",
            "eval", "export", "extract_excitations", "library", "pretrained", "serve",
            "similar", "synthetic", "synthetic_msd", "tag", "train")
# the tiny run train.py and demo.py both make (the demo's own settings:
# one compilation of each program serves both, from JAX's cache)
TINY_RUN = ("--block", "rese", "--alpha", "16", "--width", "0.0625", "--batch-size", "8",
            "--optimizer", "adam", "--lr", "0.003", "--num-stages", "1",
            "--max-epochs-per-stage", "1", "--monitor", "val_roc_auc", "--strategy", "default")
SERVE_WAIT_S = 600  # a guard against a server that never answers, not a measure


@contextlib.contextmanager
def captured():
    """{"out", "err"}: what is written to file descriptors 1 and 2 inside."""
    got = {}
    files = [tempfile.TemporaryFile(), tempfile.TemporaryFile()]
    saved = [os.dup(1), os.dup(2)]
    sys.stdout.flush()
    sys.stderr.flush()
    for fd, file in zip((1, 2), files):
        os.dup2(file.fileno(), fd)
    try:
        yield got
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        for fd, old in zip((1, 2), saved):
            os.dup2(old, fd)
            os.close(old)
        for key, file in zip(("out", "err"), files):
            file.seek(0)
            got[key] = file.read().decode("utf-8", "replace")
            file.close()


def run(runs: dict, name: str, main, argv: list) -> int:
    """`main(argv)` run and recorded as `name` in `runs`; its exit code (an
    exception that escapes it: printed, code "exception")."""
    argv = [str(a) for a in argv]
    start = cpu_seconds()
    with captured() as got:
        try:
            code = main(argv)
        except SystemExit as exit:
            code = exit.code
        except BaseException:  # noqa: BLE001  recorded: the test fails on it
            traceback.print_exc()
            code = "exception"
    runs[name] = {"code": code, "argv": argv, "cpu_s": round(cpu_seconds() - start, 1), **got}
    return code


def cpu_seconds() -> float:
    """The CPU time of this process and of those it waited for."""
    import resource

    return sum(resource.getrusage(who).ru_utime + resource.getrusage(who).ru_stime
               for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN))


def installed(*modules) -> bool:
    return all(importlib.util.find_spec(module) is not None for module in modules)


def command(name: str):
    return importlib.import_module(f"tagger.commands.{name}").main


def refused_backends(runs: dict, work: str) -> None:
    """Every command under KERAS_BACKEND=torch, tag.py under JAX in
    capitals, and with KERAS_BACKEND unset (TensorFlow, which is not here)
    train.py and tag.py, which compute with Keras, and build_mtt.py, which
    does not, before anything imports Keras."""
    from tests.checks import argv_that_parses

    os.environ["KERAS_BACKEND"] = "torch"
    for name in COMMANDS:
        run(runs, f"torch:{name}", command(name), argv_that_parses(name, work))
    os.environ["KERAS_BACKEND"] = "JAX"
    run(runs, "JAX:tag", command("tag"), argv_that_parses("tag", work))
    del os.environ["KERAS_BACKEND"]
    for name in ("train", "tag", "build_mtt"):
        run(runs, f"unset:{name}", command(name), argv_that_parses(name, work))
    os.environ["KERAS_BACKEND"] = "jax"


def serve_one_request(model: str, song: str) -> tuple[int, dict]:
    """tagger-serve on a free local port, in this thread, answering one
    POST /v1/tag of `song` from another, then stopped by SIGINT as Ctrl-C
    stops it: (its exit code, the answer)."""
    from tests.checks import free_ports

    (port,) = free_ports(1)
    url = f"http://127.0.0.1:{port}/"
    answer = {}

    def client():
        deadline = time.monotonic() + SERVE_WAIT_S
        try:
            while time.monotonic() < deadline:
                try:
                    with urllib.request.urlopen(url + "healthz", timeout=5):
                        break
                except OSError:
                    time.sleep(0.2)
            with open(song, "rb") as f:
                request = urllib.request.Request(url + "v1/tag?k=3", data=f.read(),
                                                 headers={"Content-Type": "audio/mpeg"})
            with urllib.request.urlopen(request, timeout=SERVE_WAIT_S) as response:
                answer.update(status=response.status, body=json.loads(response.read()))
        except Exception as error:  # noqa: BLE001  recorded: the test fails on it
            answer["error"] = repr(error)
        finally:
            os.kill(os.getpid(), signal.SIGINT)

    thread = threading.Thread(target=client, daemon=True)
    thread.start()
    runs = {}
    run(runs, "serve", command("serve"), [model, "--port", port, "--workers", "1",
                                          "--no-progress"])
    thread.join(SERVE_WAIT_S)
    return runs["serve"], answer


def beets(runs: dict, library: str, music: str, model: str) -> None:
    """A beets library in `library` with the plugin enabled: `music`
    imported where it is, then `beet musictag` and `beet ls` of its fields
    (beets' main, in this process)."""
    os.makedirs(library, exist_ok=True)
    with open(os.path.join(library, "config.yaml"), "w") as f:
        f.write(f"directory: {library}/music\nlibrary: {library}/library.db\n"
                "plugins: [musictagger]\nimport: {copy: no, write: no, quiet: yes}\n"
                f"musictagger:\n  batch_size: 8\n  model: {model}\n")
    os.environ["BEETSDIR"] = library
    from beets import ui

    def beet(argv):
        ui.main(argv)
        return 0

    run(runs, "beets:import", beet, ["import", "-A", music])
    run(runs, "beets:musictag", beet, ["musictag"])
    run(runs, "beets:ls", beet, ["ls", "-f", "$path|$musictagger_tags"])


def main(work: str, inputs: dict) -> dict:
    runs = {}
    refused_backends(runs, os.path.join(work, "unused"))
    keras_before_jax = "keras" in sys.modules

    mtt, msd, records = f"{work}/mtt", f"{work}/msd", f"{work}/mtt/tfrecord"
    run(runs, "synthetic", command("synthetic"),
        [mtt, "--clips", 30, "--seconds", 3, "--workers", 1, "--no-progress"])
    run(runs, "synthetic_msd", command("synthetic_msd"),
        [msd, "--tracks", 40, "--seconds", 3, "--workers", 1, "--no-progress"])
    run(runs, "build_mtt", command("build_mtt"), ["--data-dir", mtt, "--workers", 1,
                                                  "--no-progress"])
    run(runs, "build_msd", command("build_msd"), ["--data-dir", msd, "--workers", 1,
                                                  "--no-progress"])
    songs = f"{work}/songs"  # three of the dataset's clips that decode
    os.makedirs(songs)
    for path in sorted(os.path.join(root, name) for root, _, names in os.walk(f"{mtt}/mp3")
                       for name in names if name.startswith("the_"))[:3]:
        shutil.copy(path, songs)
    run(runs, "build_folder", command("build_folder"),
        [songs, "--out-dir", f"{work}/folder_records", "--workers", 1, "--no-progress",
         "--val-fraction", 0, "--test-fraction", 0])  # three files: all train

    run(runs, "demo", command("demo"), ["--work-dir", f"{work}/demo", "--clips", 30,
                                        "--seconds", 3, "--epochs", 1, "--width", 0.0625,
                                        "--workers", 1, "--no-progress"])
    run(runs, "train", command("train"), ["--data-dir", records, "--train-dir", f"{work}/runs",
                                          *TINY_RUN, "--no-progress", "--backend", "jax"])
    model = f"{work}/runs/samplecnn-rese-multi/model.keras"
    run(runs, "eval", command("eval"), [model, "--data-dir", records, "--bootstrap", 0,
                                        "--out-json", f"{work}/eval.json", "--no-progress"])

    tag, files = command("tag"), sorted(os.path.join(songs, name) for name in os.listdir(songs))
    for engine in ("keras", "xla", "keras-bf16", "tflite", "tflite-int8"):
        run(runs, f"tag:{engine}", tag, [model, *files, "--engine", engine, "--format", "json",
                                         "--out", f"{work}/tag-{engine}.json", "--top-k", 50,
                                         "--no-progress"])
    run(runs, "tag:db", tag, [model, *files[:2], "--db", f"{work}/library.sqlite",
                              "--embeddings", "--no-progress"])
    run(runs, "tag:embeddings", tag, [model, *files, "--embeddings", f"{work}/embeddings.npz",
                                      "--taggram", f"{work}/taggram", "--out",
                                      f"{work}/tags.csv", "--format", "csv", "--no-progress"])
    tagged = f"{work}/tagged"
    shutil.copytree(songs, tagged)
    run(runs, "tag:write_tags", tag, [model, tagged, "--write-tags", "--top-k", 3,
                                      "--no-progress"])
    run(runs, "library", command("library"), ["export", "--db", f"{work}/library.sqlite",
                                              "--format", "csv", "--out",
                                              f"{work}/library.csv"])
    similar = command("similar")
    run(runs, "similar:stored", similar, [files[0], "--db", f"{work}/library.sqlite", "-k", 1])
    run(runs, "similar:tagged_now", similar, [files[2], "--db", f"{work}/library.sqlite",
                                              "-k", 2])
    export = command("export")
    run(runs, "export:saved_model", export, [model, "--out", f"{work}/saved_model"])
    run(runs, "export:tflite", export, [model, "--format", "tflite", "--out",
                                        f"{work}/model.tflite"])
    run(runs, "extract_excitations", command("extract_excitations"),
        [model, "--data-dir", records, "--out", f"{work}/excitations.pkl", "--plots",
         f"{work}/excitation_plots", "--no-progress"])
    run(runs, "attention", command("attention"), [inputs["self_attention"], files[0], "--out",
                                                  f"{work}/attention", "--no-progress"])
    convert = command("convert_weights")
    run(runs, "convert_weights:resemul", convert, [inputs["resemul"], "--from", "resemul",
                                                   "--block", "rese", "--out",
                                                   f"{work}/converted.keras"])
    wheel = f"{work}/musicnn-0.1.0-py3-none-any.whl"
    with open(wheel, "wb") as f:  # never opened: only TensorFlow reads the package's weights
        f.write(b"PK")
    run(runs, "convert_weights:musicnn", convert, [wheel, "--from", "musicnn", "--model",
                                                   "MTT_musicnn", "--out", f"{work}/m.keras"])
    run(runs, "pretrained", command("pretrained"), ["info", "MTT_musicnn"])
    served = {}
    if installed("fastapi", "fastapi_offline", "python_multipart", "uvicorn"):  # the extras
        runs["serve"], served = serve_one_request(model, files[0])
    if installed("beets"):
        shutil.copytree(songs, f"{work}/beets_music")
        beets(runs, f"{work}/beets", f"{work}/beets_music", model)

    import sitecustomize

    from tagger.runtime import tensorflow_installed

    return {"runs": runs, "served": served, "keras_before_jax": keras_before_jax,
            "tensorflow": tensorflow_installed() or "tensorflow" in sys.modules,
            "blocked": sorted(set(sitecustomize.BLOCKED))}


if __name__ == "__main__":
    work_dir, inputs_json = sys.argv[1:]
    with open(inputs_json, encoding="utf-8") as f:
        report = main(work_dir, json.load(f))
    with open(os.path.join(work_dir, "report.json"), "w", encoding="utf-8") as f:
        json.dump(report, f, indent=1)
