"""Pretrained taggers by name (tagger.pretrained), with no network: a local
HTTP server on 127.0.0.1 (Range requests, a connection dropped half-way on
demand) serves checkpoints written here in the releases' layouts; the cache
is TAGGER_HOME under tmp_path."""

from __future__ import annotations

import hashlib
import http.server
import json
import os
import re
import socket
import subprocess
import sys
import threading
import time

import numpy as np
import pytest

from tagger import pretrained
from tagger.commands import pretrained as pretrained_cmd
from tagger.commands import tag as tag_cmd
from tagger.errors import UserError
from tagger.pretrained import download
from tests.checks import HANG_S, call_main, one_line_error, read_only_path, recorded_syncs

SE_FILE = "se-multi-auc_0.9111-tfrmodel.hdf5"
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


class Server:
    """http.server in a thread, serving `files` by name with Range support;
    `drop[name]` responses are cut half-way (the connection closed);
    `delay` seconds between 64 KiB chunks. Stopped at teardown."""

    def __init__(self, files: dict):
        self.files, self.drop, self.delay, self.requests = dict(files), {}, 0.0, []
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                name = self.path.lstrip("/")
                asked = self.headers.get("Range")
                server.requests.append((name, asked))
                data = server.files.get(name)
                if data is None:
                    self.send_error(404)
                    return
                start = int(re.match(r"bytes=(\d+)-", asked).group(1)) if asked else 0
                if start >= len(data):
                    self.send_error(416)
                    return
                body = data[start:]
                self.send_response(206 if asked else 200)
                if asked:
                    self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if server.drop.get(name, 0) > 0:
                    server.drop[name] -= 1
                    self.wfile.write(body[:len(body) // 2])
                    self.wfile.flush()
                    self.connection.shutdown(socket.SHUT_RDWR)
                    self.close_connection = True
                    return
                for i in range(0, len(body), 1 << 16):
                    self.wfile.write(body[i:i + (1 << 16)])
                    time.sleep(server.delay)

            def log_message(self, *args):
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def gets(self, name):
        return [r for r in self.requests if r[0] == name]

    def stop(self):
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(10)


@pytest.fixture(autouse=True)
def home(tmp_path, monkeypatch):
    monkeypatch.setenv("TAGGER_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("TAGGER_WEIGHTS_URL", raising=False)
    return tmp_path / "home"


@pytest.fixture(scope="module")
def se_bytes(tmp_path_factory):
    """A tiny SE+multi model in resemul's Keras 2.0.5 .hdf5 layout."""
    from tests.checks import random_resemul_model as random_model
    from tests.checks import write_keras2_file

    path = tmp_path_factory.mktemp("resemul") / SE_FILE
    write_keras2_file(random_model("se", 0), "se", path)
    return path.read_bytes()


@pytest.fixture
def server(se_bytes, monkeypatch):
    served = Server({SE_FILE: se_bytes})
    monkeypatch.setenv("TAGGER_WEIGHTS_URL", served.url + "/")
    yield served
    served.stop()


def info_field(out: str, key: str) -> str:
    """The value of `key` in `tagger-pretrained info`'s output."""
    [line] = [line for line in out.splitlines() if line.split(" ", 1)[0] == key]
    return line[len(key):].strip()


def closed_port_url() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{s.getsockname()[1]}"


def song(path, seconds=3.0, rate=22050):
    import soundfile

    t = np.arange(int(seconds * rate)) / rate
    soundfile.write(path, (0.3 * np.sin(2 * np.pi * 440 * t)).astype("float32"), rate)
    return path


@pytest.mark.slow
def test_download_convert_and_tag_end_to_end(server, se_bytes, home, tmp_path, capsys):
    code, out, err = call_main(pretrained_cmd.main, capsys, "download", "mtat-samplecnn-se")
    assert code == 0, err
    model = home / "models" / "mtat-samplecnn-se.keras"
    assert out.strip() == str(model) and model.is_file()
    assert f"{server.url}/{SE_FILE}" in err
    digest = hashlib.sha256(se_bytes).hexdigest()
    info = json.loads((home / "models" / "mtat-samplecnn-se.json").read_text())
    from tagger.convert import VERSION

    assert info["source_url"] == f"{server.url}/{SE_FILE}"
    assert info["source_sha256"] == digest and info["converter_version"] == VERSION
    record = json.loads((home / "originals" / (SE_FILE + ".json")).read_text())
    assert record["sha256"] == digest and record["bytes"] == len(se_bytes)
    assert not list((home / "originals").glob("*.part"))

    server.stop()  # the second use is offline
    audio = song(tmp_path / "song.wav")
    code, out, err = call_main(tag_cmd.main, capsys, "mtat-samplecnn-se", audio, "--top-k", "3")
    assert code == 0, err
    assert "song.wav" in out and "downloading" not in err
    assert len(server.gets(SE_FILE)) == 1

    import tagger
    from tagger.convert import ConvertConfig, convert_file

    # the cached model against one converted here from the served bytes
    served = tmp_path / SE_FILE
    served.write_bytes(se_bytes)
    by_hand = tmp_path / "by-hand.keras"
    convert_file(ConvertConfig(source=str(served), kind="resemul", out=str(by_hand),
                               options=(("block", "se"),)))
    names, by_name = tagger.clip_scores(str(audio), model="mtat-samplecnn-se")
    hand_names, by_path = tagger.clip_scores(str(audio), model=str(by_hand))
    assert list(names) == list(hand_names) == list(pretrained.get("mtat-samplecnn-se").tags())
    by_name, by_path = np.asarray(by_name), np.asarray(by_path)
    assert by_name.shape == (50,) and by_name.std() > 0  # a real, varied score vector
    np.testing.assert_allclose(by_name, by_path, rtol=0, atol=1e-6)
    top = tagger.top_tags(str(audio), model="mtat-samplecnn-se", k=3)
    assert [tag for tag, _ in top] == [names[i] for i in np.argsort(-by_path)[:3]]
    loaded, tagger_info = tagger.load_pretrained("mtat-samplecnn-se")
    assert list(tagger_info.tag_names) == list(pretrained.get("mtat-samplecnn-se").tags())
    code, out, _ = call_main(pretrained_cmd.main, capsys, "path", "mtat-samplecnn-se")
    assert code == 0 and out.strip() == str(model)


def test_an_interrupted_download_resumes(server, se_bytes, tmp_path):
    dest = str(tmp_path / "file.hdf5")
    server.drop[SE_FILE] = 1
    download.fetch(f"{server.url}/{SE_FILE}", dest)
    with open(dest, "rb") as file:
        assert file.read() == se_bytes
    half = (len(se_bytes)) // 2
    assert server.gets(SE_FILE) == [(SE_FILE, None), (SE_FILE, f"bytes={half}-")]
    assert not os.path.exists(dest + ".part")

    # every attempt cut: the part is kept, one line says so; the next run resumes it
    server.drop[SE_FILE] = download.ATTEMPTS
    other = str(tmp_path / "other.hdf5")
    with pytest.raises(download.DownloadFailed) as caught:
        download.fetch(f"{server.url}/{SE_FILE}", other)
    assert "run again to resume" in str(caught.value) and "\n" not in str(caught.value)
    kept = os.path.getsize(other + ".part")
    assert 0 < kept < len(se_bytes) and not os.path.exists(other)
    download.fetch(f"{server.url}/{SE_FILE}", other)
    assert server.requests[-1] == (SE_FILE, f"bytes={kept}-")
    with open(other, "rb") as file:
        assert file.read() == se_bytes


def test_a_download_is_flushed_to_the_disk_before_it_is_renamed_into_place(
        server, se_bytes, tmp_path, monkeypatch):
    calls = recorded_syncs(monkeypatch)
    dest = tmp_path / "file.hdf5"
    download.fetch(f"{server.url}/{SE_FILE}", str(dest))
    assert dest.read_bytes() == se_bytes and os.listdir(tmp_path) == ["file.hdf5"]
    inode = dest.stat().st_ino
    assert calls == [("fsync", inode), ("replace", inode), ("fsync", tmp_path.stat().st_ino)]


def test_a_changed_file_is_refused_and_its_checksum_kept(server, se_bytes, home, tmp_path,
                                                         capsys):
    path = pretrained.ensure("mtat-samplecnn-se", progress=False)
    original = home / "originals" / SE_FILE
    record = (home / "originals" / (SE_FILE + ".json")).read_text()
    os.remove(path)  # the next use converts again, and checks the file first
    capsys.readouterr()
    original.write_bytes(se_bytes[:-1] + bytes([se_bytes[-1] ^ 1]))
    code, _, err = call_main(pretrained_cmd.main, capsys, "path", "mtat-samplecnn-se")
    one_line_error(code, err, str(original), "has changed", "nothing was replaced",
                   f"delete {original} to download it again")
    assert not os.path.exists(path) and original.exists()
    assert (home / "originals" / (SE_FILE + ".json")).read_text() == record

    # a mirror serving other bytes: refused after the download, which is removed
    original.unlink()
    server.files[SE_FILE] = se_bytes + b"\0"
    code, _, err = call_main(pretrained_cmd.main, capsys, "path", "mtat-samplecnn-se")
    last = err.strip().splitlines()[-1]
    assert code == 2 and "not the" in last and "nothing was replaced" in last
    assert f"delete {home / 'originals' / (SE_FILE + '.json')} to accept it" in last
    assert (home / "originals" / (SE_FILE + ".json")).read_text() == record
    assert not os.path.exists(path) and not original.exists()

    # --weights FILE: another file is refused; the right one converts, offline
    wrong = tmp_path / "wrong.hdf5"
    wrong.write_bytes(se_bytes + b"\0")
    code, _, err = call_main(pretrained_cmd.main, capsys, "download", "mtat-samplecnn-se",
                             "--weights", wrong)
    one_line_error(code, err, "is not the", "recorded", "nothing was replaced",
                   f"delete {home / 'originals' / (SE_FILE + '.json')}")
    assert not original.exists()
    right = tmp_path / "right.hdf5"
    right.write_bytes(se_bytes)
    server.stop()
    code, out, err = call_main(pretrained_cmd.main, capsys, "download", "mtat-samplecnn-se",
                               "--weights", right)
    assert code == 0, err
    assert out.strip() == path and os.path.isfile(path)
    assert original.read_bytes() == se_bytes


def test_a_file_that_does_not_convert_is_removed_and_never_recorded(server, se_bytes, home,
                                                                    tmp_path, capsys):
    from tagger.convert import VERSION

    original = home / "originals" / SE_FILE
    record = home / "originals" / (SE_FILE + ".json")
    server.files[SE_FILE] = se_bytes[:len(se_bytes) // 2]  # a mirror's truncated copy
    code, _, err = call_main(pretrained_cmd.main, capsys, "path", "mtat-samplecnn-se")
    last = err.strip().splitlines()[-1]
    assert code == 2 and "Traceback" not in err
    assert "is not an HDF5 file" in last and f"{original} was removed from the cache" in last
    assert "nothing was recorded" in last
    assert os.listdir(home / "originals") == [] and os.listdir(home / "models") == []

    # a file given by hand that does not convert: nothing is copied, it stays where it was
    garbage = tmp_path / "garbage.bin"
    garbage.write_bytes(bytes(range(256)) * 20)
    code, _, err = call_main(pretrained_cmd.main, capsys, "download", "mtat-samplecnn-se",
                             "--weights", garbage)
    assert code == 2 and "is not an HDF5 file" in err and "nothing was copied" in err
    assert garbage.read_bytes() == bytes(range(256)) * 20
    assert os.listdir(home / "originals") == []

    # a cache written before records waited for a conversion: the truncated file
    # and its download-time record go, and the next run downloads again
    truncated = se_bytes[:len(se_bytes) // 2]
    original.write_bytes(truncated)
    record.write_text(json.dumps({"sha256": hashlib.sha256(truncated).hexdigest(),
                                  "bytes": len(truncated), "url": server.url}))
    code, _, err = call_main(pretrained_cmd.main, capsys, "path", "mtat-samplecnn-se")
    assert code == 2 and f"{original} was removed from the cache" in err
    assert not original.exists() and not record.exists()
    code, out, _ = call_main(pretrained_cmd.main, capsys, "info", "mtat-samplecnn-se")
    assert info_field(out, "checksum").startswith("none known: the first download is trusted")

    server.files[SE_FILE] = se_bytes  # the mirror repaired: the next run converts
    code, out, err = call_main(pretrained_cmd.main, capsys, "path", "mtat-samplecnn-se")
    assert code == 0, err
    assert original.read_bytes() == se_bytes
    written = json.loads(record.read_text())
    assert (written["bytes"], written["sha256"]) == (len(se_bytes),
                                                     hashlib.sha256(se_bytes).hexdigest())
    assert written["converter_version"] == VERSION
    code, out, _ = call_main(pretrained_cmd.main, capsys, "info", "mtat-samplecnn-se")
    assert info_field(out, "checksum").startswith(
        f"none known: recorded when the first file converted, {len(se_bytes):,} bytes, "
        f"sha256 {written['sha256']} (from {server.url}/{SE_FILE})")


def test_a_pinned_file_that_differs_is_refused_and_nothing_stays(server, se_bytes, home,
                                                                  tmp_path, monkeypatch,
                                                                  capsys):
    """The registry's size and sha256 decide, from the first download on."""
    import dataclasses

    from tagger.cache import Checksum
    from tagger.pretrained import registry

    pin = Checksum(len(se_bytes), hashlib.sha256(se_bytes).hexdigest())
    entry = dataclasses.replace(registry.MODELS["mtat-samplecnn-se"], checksum=pin)
    monkeypatch.setitem(registry.MODELS, entry.name, entry)
    code, out, _ = call_main(pretrained_cmd.main, capsys, "info", entry.name)
    assert info_field(out, "checksum").startswith(f"pinned: sha256 {pin.sha256}; ")
    assert info_field(out, "size").endswith(f" MB ({len(se_bytes):,} bytes)")

    flipped = se_bytes[:-1] + bytes([se_bytes[-1] ^ 1])
    for served, differs in ((se_bytes + b"\0", f"{len(se_bytes) + 1:,} bytes, not "
                                                f"{len(se_bytes):,}"),
                            (flipped, f"sha256 {hashlib.sha256(flipped).hexdigest()[:12]}..., "
                                      f"not {pin.sha256[:12]}...")):
        server.files[SE_FILE] = served
        code, _, err = call_main(pretrained_cmd.main, capsys, "path", entry.name)
        last = err.strip().splitlines()[-1]
        assert code == 2 and "Traceback" not in err
        assert "sent a file that is not the release's" in last and differs in last
        assert "nothing of it stays in the cache" in last
        assert os.listdir(home / "originals") == []
        assert not (home / "models").exists()

    wrong = tmp_path / "wrong.hdf5"
    wrong.write_bytes(flipped)
    code, _, err = call_main(pretrained_cmd.main, capsys, "download", entry.name,
                             "--weights", wrong)
    one_line_error(code, err, "is not the release's", "nothing was replaced")
    assert os.listdir(home / "originals") == []

    server.files[SE_FILE] = se_bytes
    assert pretrained.ensure(entry.name, progress=False, log=lambda line: None) == str(
        home / "models" / "mtat-samplecnn-se.keras")
    (home / "models" / "mtat-samplecnn-se.keras").unlink()  # converts again, from the cache
    (home / "originals" / SE_FILE).write_bytes(flipped)
    code, _, err = call_main(pretrained_cmd.main, capsys, "path", entry.name)
    one_line_error(code, err, f"{home / 'originals' / SE_FILE} is not the release's",
                   "removed from the cache")
    assert not (home / "originals" / SE_FILE).exists()


def test_no_network_is_one_line_naming_the_url_and_the_path(se_bytes, home, tmp_path,
                                                            monkeypatch, capsys):
    url = closed_port_url()
    monkeypatch.setenv("TAGGER_WEIGHTS_URL", url)
    by_hand = home / "originals" / SE_FILE
    code, _, err = call_main(pretrained_cmd.main, capsys, "path", "mtat-samplecnn-se")
    one_line_error(code, err, f"{url}/{SE_FILE}", str(by_hand))
    code, _, err = call_main(tag_cmd.main, capsys, "mtat-samplecnn-se", song(tmp_path / "s.wav"))
    one_line_error(code, err, f"{url}/{SE_FILE}", str(by_hand))
    assert not by_hand.exists() and not (home / "models" / "mtat-samplecnn-se.keras").exists()

    by_hand.write_bytes(se_bytes)  # put there by hand, as the line says: converts offline
    path = pretrained.resolve_model("mtat-samplecnn-se", progress=False)
    assert os.path.isfile(path)
    record = json.loads((home / "originals" / (SE_FILE + ".json")).read_text())
    assert record["sha256"] == hashlib.sha256(se_bytes).hexdigest()


def test_two_at_once_download_once_and_both_succeed(server, home):
    server.delay = 0.05  # slow enough that both ask while the first downloads
    results, errors = [], []

    def ask():
        try:
            results.append(pretrained.ensure("mtat-samplecnn-se", progress=False,
                                             log=lambda line: None))
        except Exception as error:  # noqa: BLE001  (reported below)
            errors.append(error)

    threads = [threading.Thread(target=ask) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(300)
    assert not errors and len(results) == 2 and results[0] == results[1]
    assert len(server.gets(SE_FILE)) == 1


def test_a_path_wins_and_unknown_names_are_one_line(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "msd-transformer").write_bytes(b"a file of that name")
    assert pretrained.resolve_model("msd-transformer") == "msd-transformer"
    assert pretrained.resolve_model("missing.keras") == "missing.keras"  # the loader reports
    with pytest.raises(UserError, match="neither a model file nor a pretrained model"):
        pretrained.resolve_model("msd-transfomer")
    code, _, err = call_main(pretrained_cmd.main, capsys, "info", "nope")
    one_line_error(code, err, "no pretrained model 'nope'", "mtat-samplecnn-se")


@pytest.mark.parametrize("kind", ["a file", "read-only"])
def test_a_cache_that_cannot_be_written_is_one_line_naming_the_folder(kind, server, tmp_path,
                                                                     monkeypatch, capsys):
    if kind == "a file":
        home = tmp_path / "home-file"
        home.write_text("a file where the cache folder should be")
        reason = f"{home} is a file, not a folder"
    else:
        home = read_only_path("tagger-home")  # skips where /sys accepts new files
        reason = "permission denied"
    monkeypatch.setenv("TAGGER_HOME", str(home))
    folder = os.path.join(str(home), "locks")
    code, _, err = call_main(pretrained_cmd.main, capsys, "path", "mtat-samplecnn-se")
    one_line_error(code, err, f"cannot write to the cache folder {folder} ({reason})",
                   "set TAGGER_HOME to a folder you may write to")
    code, _, err = call_main(tag_cmd.main, capsys, "mtat-samplecnn-se", song(tmp_path / "s.wav"))
    one_line_error(code, err, f"cache folder {folder}", "set TAGGER_HOME")
    assert server.gets(SE_FILE) == []  # refused before any download
    code, out, err = call_main(pretrained_cmd.main, capsys, "info", "mtat-samplecnn-se")
    assert code == 0 and "(not yet converted)" in out  # reading needs no writable cache


def test_a_cache_that_holds_the_model_serves_it_without_writing(server, home, tmp_path,
                                                                 capsys):
    path = pretrained.ensure("mtat-samplecnn-se", progress=False)
    for folder in ("locks", "originals"):  # nothing may be made or written there now
        for child in sorted((home / folder).rglob("*"), reverse=True):
            child.rmdir() if child.is_dir() else child.unlink()
        (home / folder).rmdir()
        (home / folder).write_text("a file in the way")
    server.stop()
    assert pretrained.resolve_model("mtat-samplecnn-se", progress=False) == path
    code, out, err = call_main(tag_cmd.main, capsys, "mtat-samplecnn-se",
                               song(tmp_path / "s.wav"), "--top-k", "2")
    assert code == 0 and "s.wav" in out, err


def test_cache_home_order(monkeypatch, tmp_path):
    monkeypatch.setenv("TAGGER_HOME", str(tmp_path / "a"))
    assert pretrained.cache_home() == str(tmp_path / "a")
    monkeypatch.delenv("TAGGER_HOME")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert pretrained.cache_home() == str(tmp_path / "xdg" / "tagger")
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "user"))
    assert pretrained.cache_home() == str(tmp_path / "user" / ".cache" / "tagger")


@pytest.mark.slow
def test_list_and_info_without_tensorflow(home):
    script = ("import sys\nfrom tagger.commands.pretrained import main\n"
              "code = main(['list'])\n"
              "assert 'tensorflow' not in sys.modules and 'torch' not in sys.modules\n"
              "raise SystemExit(code)")
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                            cwd=ROOT, timeout=HANG_S, env={**os.environ, "TAGGER_HOME": str(home)})
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].split()[:3] == ["name", "dataset", "input"]
    assert [line.split()[0] for line in lines[2:-1]] == list(pretrained.names())
    assert lines[-1].startswith("sets of bodies for train.py --from")
    assert "musicnn-package (" in lines[-1]
    assert "MIT" in result.stdout and "ROC-AUC 0.9111" in result.stdout
    result = subprocess.run([sys.executable, "-m", "tagger.pretrained", "info",
                             "msd-transformer-student"], capture_output=True, text=True,
                            cwd=ROOT, timeout=HANG_S, env={**os.environ, "TAGGER_HOME": str(home)})
    assert result.returncode == 0, result.stderr
    assert "compact_student.ckpt" in result.stdout and "CALS" in result.stdout
    assert "tags       50: rock, pop, indie" in result.stdout


def test_a_pytorch_release_converts_by_name_from_a_file_mirror(home, tmp_path, monkeypatch):
    """compact_student.ckpt in the release's layout (a plain state dict with
    its teacher inside), from a file:// mirror, converted without torch."""
    torch = pytest.importorskip("torch")
    from tests.convert import originals

    torch.manual_seed(0)
    student = originals.MusicTaggingTransformer(attention_ndim=64).state_dict()
    teacher = originals.MusicTaggingTransformer(attention_ndim=256).state_dict()
    state = {f"network.{k}": v for k, v in student.items()}
    state.update({f"teacher_network.{k}": v for k, v in teacher.items()})
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    torch.save(state, mirror / "compact_student.ckpt")
    monkeypatch.setenv("TAGGER_WEIGHTS_URL", f"file://{mirror}")
    monkeypatch.setitem(sys.modules, "torch", None)  # the reader needs no PyTorch
    model, info = pretrained.load_pretrained("msd-transformer-student", progress=False)
    assert list(info.tag_names[:3]) == ["rock", "pop", "indie"]
    assert info.sample_rate == 22050
    assert model.inputs[0].shape[-1] == 4 * 59049
