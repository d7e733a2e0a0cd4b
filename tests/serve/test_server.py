"""tagger-serve as a process on 127.0.0.1 (a free port): the page in a real
headless Chromium, a small version of bench/bench_serve.py's load test,
clients that send half a request head and stall, an upload above the limit
sent whole by urllib, a client that leaves mid-upload, and a clean stop on
SIGINT.

The browser is the system's Chromium and chromedriver (.ci/run installs
them with apt-get); the page test is skipped, saying so, only where they
cannot be found.
"""

from __future__ import annotations

import importlib.util
import json
import os
import pathlib
import shutil
import socket
import sys
import time
import urllib.error
import urllib.request

import pytest

pytest.importorskip("fastapi")
pytest.importorskip("uvicorn")
pytest.importorskip("python_multipart")

from tests import checks  # noqa: E402
from tests.checks import (  # noqa: E402
    HANG_S,
    ROOT,
    http_status_and_error,
    is_png,
    watch_sockets,
    write_audio,
)

pytestmark = pytest.mark.slow  # starts a server process (and a browser)

BENCH = ROOT / "bench"
MAX_QUEUE = 4
MAX_CONNECTIONS = 48
# seconds: long enough that the clients below are all connected and a song
# tagged before the first is closed, on a busy machine too
HEAD_TIMEOUT = 10.0
SLACK = 10.0  # seconds a closing may be late: a guard against one that never comes
MAX_UPLOAD_MB = 8
WAIT = 60  # seconds: the longest any loop here waits for the server or the page
HALF_HEAD = b"POST /v1/tag HTTP/1.1\r\nHost: test\r\nContent-Type: audio/mp"


def bench_serve():
    """bench/bench_serve.py as a module (it imports bench/common.py)."""
    if str(BENCH) not in sys.path:
        sys.path.insert(0, str(BENCH))
    spec = importlib.util.spec_from_file_location("bench_serve", BENCH / "bench_serve.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def bench():
    return bench_serve()


@pytest.fixture(scope="module")
def files(tmp_path_factory, serve_audio):
    """A 3-minute song (MP3), a 2-second clip and a file that is not audio."""
    folder = tmp_path_factory.mktemp("page_files")
    (folder / "notes.mp3").write_text("liner notes, not audio\n" * 40)
    return {"three minutes": str(write_audio(folder / "three minutes.mp3", 180 * 22050,
                                             22050, seed=7)),
            "two seconds": str(write_audio(folder / "two seconds.wav", 2 * 22050, seed=8)),
            "not audio": str(folder / "notes.mp3"), **serve_audio}


@pytest.fixture(scope="module")
def server(bench, serve_models, tmp_path_factory):
    """The running server (the tiny CNN, the tiny transformer as `mtt`) and
    its TMPDIR; stopped with SIGINT at the end, which must end it cleanly."""
    tmp = tmp_path_factory.mktemp("server_tmp")
    running = bench.Server([serve_models["cnn"], "--model", f"mtt={serve_models['transformer']}"],
                           "--max-queue", MAX_QUEUE, "--max-batch", 8,
                           "--max-connections", MAX_CONNECTIONS, "--head-timeout", HEAD_TIMEOUT,
                           "--max-upload-mb", MAX_UPLOAD_MB,
                           env={"TMPDIR": str(tmp)}, timeout=HANG_S)
    assert running.url  # listening: its upload folder is made, whichever test comes first
    yield running, tmp
    code = running.stop()
    assert code == 0 and running.lines[-1] == "stopped", running.lines[-10:]
    assert list(tmp.glob("tagger-serve-*")) == []  # its upload folder is removed


def health(url):
    with urllib.request.urlopen(url + "healthz", timeout=30) as response:
        return json.loads(response.read())


def api_top(url, path, model="cnn"):
    with open(path, "rb") as f:
        request = urllib.request.Request(f"{url}v1/tag?k=10&model={model}", data=f.read(),
                                         headers={"Content-Type": "audio/mpeg"})
    with urllib.request.urlopen(request, timeout=60) as response:
        return json.loads(response.read())


def address_of(url) -> tuple[str, int]:
    host, port = url.split("//")[1].rstrip("/").rsplit(":", 1)
    return host, int(port)


# -- the page -----------------------------------------------------------------------


def chromium():
    """A headless Chromium driven by the system's chromedriver; skips,
    saying why, where either is missing."""
    browser = next(filter(None, map(shutil.which, ("chromium", "chromium-browser"))), None)
    driver = shutil.which("chromedriver")
    if browser is None or driver is None:
        pytest.skip("the system's Chromium and chromedriver are not installed "
                    "(apt-get install chromium chromium-driver, as .ci/run does)")
    webdriver = pytest.importorskip("selenium.webdriver",
                                    reason="selenium is not installed (requirements-dev.txt)")
    options = webdriver.ChromeOptions()
    options.binary_location = browser
    options.set_capability("goog:loggingPrefs", {"performance": "ALL"})  # every response
    for flag in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                 "--window-size=1400,1000", "--force-device-scale-factor=1",
                 "--autoplay-policy=no-user-gesture-required"):
        options.add_argument(flag)
    return webdriver.Chrome(options=options, service=webdriver.ChromeService(driver))


@pytest.fixture(scope="module")
def browser():
    driver = chromium()
    driver.set_script_timeout(WAIT)
    yield driver
    driver.quit()


def until(check, what, seconds=WAIT):
    """`tests.checks.until` with this file's wait."""
    return checks.until(check, what, seconds, interval=0.1)


def upload(browser, path) -> str:
    """Chooses `path` in the page's file input; returns the page's end state."""
    browser.execute_script("document.body.dataset.state = 'idle'")
    browser.find_element("id", "file").send_keys(str(pathlib.Path(path).resolve()))
    return until(lambda: browser.execute_script(
        "const s = document.body.dataset.state; return s === 'done' || s === 'error' ? s : ''"),
        "the page to show the tags")


# distinct colours among a canvas's pixels (a drawn heat map has many)
CANVAS_COLOURS = """
const canvas = document.getElementById(arguments[0]);
if (!canvas.width || !canvas.height) return 0;
const data = canvas.getContext("2d").getImageData(0, 0, canvas.width, canvas.height).data;
const seen = new Set();
for (let i = 0; i < data.length; i += 16) seen.add(data.slice(i, i + 4).join(","));
return seen.size;
"""


def responses(browser, url) -> list[tuple[str, int]]:
    """(path, status) of each response the browser got from the server at
    `url` since the last call (Chromium's performance log)."""
    seen = []
    for entry in browser.get_log("performance"):
        message = json.loads(entry["message"])["message"]
        if message["method"] == "Network.responseReceived":
            response = message["params"]["response"]
            if response["url"].startswith(url):
                path = "/" + response["url"][len(url):].split("?")[0]
                seen.append((path, response["status"]))
    return seen


def bar_labels(browser) -> list[str]:
    return [e.text for e in browser.find_elements("css selector", "#bars text:not(.score)")]


def test_the_page_in_chromium(server, browser, files, tmp_path):
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.support.ui import Select

    running, _ = server
    responses(browser, running.url)  # from here on
    browser.get(running.url)
    until(lambda: len(browser.find_elements("css selector", "#model option")) == 2,
          "the model list")

    # a 3-minute song: bars in the API's order, a drawn taggram, a tooltip, the playhead
    assert upload(browser, files["three minutes"]) == "done"
    answer = api_top(running.url, files["three minutes"])
    expected = [t["tag"] for t in answer["top"]]
    bars = browser.find_elements("css selector", "#bars rect.bar")
    labels = bar_labels(browser)
    assert labels == expected and len(bars) == len(expected) == 8
    # the model was trained on synthetic sounds: the page says so beside the tags
    note = browser.find_element("id", "model-note")
    assert answer["note"].startswith("this model was trained on the synthetic dataset")
    assert note.is_displayed() and note.text == answer["note"]
    assert all(float(bar.get_attribute("width")) > 0 for bar in bars)
    assert browser.execute_script(CANVAS_COLOURS, "taggram") > 50
    assert "three minutes.mp3 · 3:00 · 67 windows" in browser.find_element("id", "title").text
    canvas = browser.find_element("id", "taggram")
    ActionChains(browser).move_to_element(canvas).perform()  # the middle: a window, a tag
    tooltip = browser.find_element("id", "tooltip")
    assert tooltip.is_displayed() and tooltip.text.count(" · ") == 2, tooltip.text
    assert tooltip.text.split(" · ")[0] in expected
    until(lambda: browser.execute_script(
        "return document.getElementById('player').readyState >= 1"), "the audio's metadata")
    head = browser.find_element("id", "playhead")
    start = float(head.value_of_css_property("left")[:-2])
    browser.execute_script("const p = document.getElementById('player'); p.currentTime = 90;")
    middle = until(lambda: (lambda x: x if x > start + 100 else 0)(
        float(head.value_of_css_property("left")[:-2])), "the playhead to move")
    width = canvas.size["width"]
    assert start < middle < width  # half-way through the song, inside the plot
    browser.save_screenshot(str(tmp_path / "serve.png"))
    assert is_png(tmp_path / "serve.png")

    # a 2-second clip: one zero-padded window, drawn
    assert upload(browser, files["two seconds"]) == "done"
    assert "zero-padded" in browser.find_element("id", "title").text
    assert browser.execute_script(CANVAS_COLOURS, "taggram") > 10

    title, labels = browser.find_element("id", "title").text, bar_labels(browser)

    # a file that is not audio: the server's message, naming the file; the
    # previous result stays on the page, as it was
    assert upload(browser, files["not audio"]) == "error"
    status = browser.find_element("id", "status")
    assert status.text.startswith("notes.mp3: the upload is not audio this server can "
                                  "decode"), status.text
    assert "the result shown is still that of two seconds.wav" in status.text
    assert "error" in status.get_attribute("class")
    assert browser.find_element("id", "result").is_displayed()
    assert browser.find_element("id", "title").text == title and bar_labels(browser) == labels
    assert browser.execute_script(CANVAS_COLOURS, "taggram") > 10

    # an attention model: its attention map is drawn under the taggram; it
    # was trained on real data: no note
    Select(browser.find_element("id", "model")).select_by_value("mtt")
    assert upload(browser, files["song.wav"]) == "done"
    assert browser.find_element("id", "attention").is_displayed()
    assert browser.execute_script(CANVAS_COLOURS, "attention") > 5
    assert not browser.find_element("id", "model-note").is_displayed()

    # every request of the page was answered, the icon too; the one refusal
    # is the file that is not audio
    seen = responses(browser, running.url)
    assert [r for r in seen if r[1] == 404] == [], seen
    assert {"/", "/page/page.js", "/page/page.css", "/page/favicon.svg", "/v1/models",
            "/v1/tag"} <= {path for path, _ in seen}, seen
    assert [r for r in seen if r[1] >= 400] == [("/v1/tag", 422)], seen


def test_the_api_docs_render_in_chromium_without_the_internet(server, browser):
    """Swagger UI at /docs draws the API from this server's files alone (the
    tests' machines reach no CDN)."""
    running, _ = server
    responses(browser, running.url)  # from here on
    browser.get(running.url + "docs")
    paths = until(lambda: [e.text for e in browser.find_elements(
        "css selector", ".opblock-summary-path")], "Swagger UI to list the API")
    assert {"/v1/tag", "/v1/models", "/healthz"} <= set(paths)
    seen = responses(browser, running.url)
    assert {"/docs", "/openapi.json"} <= {path for path, _ in seen}, seen
    assert [r for r in seen if r[1] >= 400] == [], seen


# -- load, a client gone, the stop ---------------------------------------------------


def test_load_below_and_above_the_queue_bound(server, bench, files):
    """bench_serve's clients, small: within --max-queue no request fails;
    above it the excess gets 503 with Retry-After and nothing else fails;
    requests share model calls."""
    running, _ = server
    bodies = [open(files[name], "rb").read() for name in ("song.mp3", "song.wav")]
    below = bench.run_clients(running.url, bodies, MAX_QUEUE, 2.0, max_requests=400)
    assert below.errors == [] and set(below.statuses) == {200} and below.ok >= MAX_QUEUE
    assert 0 < below.latency(50) <= below.latency(99) < 30
    before = health(running.url)["batching"]["cnn"]
    above = bench.run_clients(running.url, bodies, 3 * MAX_QUEUE, 2.0, max_requests=600)
    after = health(running.url)["batching"]["cnn"]
    assert above.errors == [] and set(above.statuses) == {200, 503}, above.statuses
    assert above.ok > 0 and above.refused > 0
    assert all(int(value) >= 1 for value in above.retry_after)
    assert after["calls"] - before["calls"] < above.ok  # requests shared the model's calls
    assert after["windows"] - before["windows"] == 2 * above.ok  # two windows a song
    peak = bench.peak_rss_mb(running.pid)
    assert peak is not None and peak > 50
    assert health(running.url)["in_progress"] == 0


def test_a_client_gone_mid_upload_costs_nothing(server):
    running, tmp = server
    (folder,) = tmp.glob("tagger-serve-*")
    assert folder.stat().st_mode & 0o777 == 0o700
    with socket.create_connection(address_of(running.url), timeout=30) as client:
        client.sendall(b"POST /v1/tag HTTP/1.1\r\nHost: test\r\nContent-Type: audio/mpeg\r\n"
                       b"Content-Length: 5000000\r\n\r\n" + b"\0" * 200_000)
        until(lambda: health(running.url)["in_progress"] == 1, "the upload to be admitted")
        until(lambda: [p.stat().st_size > 100_000 for p in folder.iterdir()] == [True],
              "the partial upload on disk")
    until(lambda: health(running.url)["in_progress"] == 0, "its place in the queue freed")
    until(lambda: not os.listdir(folder), "the partial upload removed")


# -- connections: stalled heads, the cap, a refusal read whole ---------------------


def test_half_heads_are_closed_in_time_and_connections_are_capped(server, files):
    """Clients that send half a request head and stall (slowloris) are
    closed --head-timeout after they connect, with a 408; while they hold
    their connections a whole request is answered; beyond --max-connections
    a connection is refused with a 503."""
    running, _ = server
    address = address_of(running.url)
    until(lambda: health(running.url)["connections"] == 1, "the other connections to close")
    held, connecting = [], {}  # client: when its connection was asked for
    for _ in range(MAX_CONNECTIONS - 2):
        before = time.monotonic()
        client = socket.create_connection(address, timeout=30)
        connecting[client] = before
        client.sendall(HALF_HEAD)
        held.append(client)
    state = health(running.url)  # its own connection is the last but one place
    assert (state["connections"], state["max_connections"]) == (MAX_CONNECTIONS - 1,
                                                                 MAX_CONNECTIONS)
    assert api_top(running.url, files["song.wav"])["windows"] == 2  # answered meanwhile
    silent = []
    for _ in range(2):  # full now
        before = time.monotonic()
        silent.append(socket.create_connection(address, timeout=30))
        connecting[silent[-1]] = before
    with socket.create_connection(address, timeout=30) as refused:
        data, refused_at = watch_sockets([refused], HEAD_TIMEOUT)[refused]
    status, error = http_status_and_error(data)
    assert status == 503 and f"{MAX_CONNECTIONS} connections open" in error
    with pytest.raises(urllib.error.HTTPError) as busy:  # an ordinary client, too
        health(running.url)
    assert busy.value.code == 503 and "--max-connections" in json.loads(busy.value.read())[
        "error"]

    seen = watch_sockets(held + silent, HEAD_TIMEOUT + SLACK + 5)
    for client in held + silent:
        client.close()
        data, ended = seen[client]
        assert refused_at < ended  # refused while the others were held
        assert HEAD_TIMEOUT - 0.1 <= ended - connecting[client] <= HEAD_TIMEOUT + SLACK
        if client in silent:
            assert data == b""  # nothing came: closed without a word
        else:
            status, error = http_status_and_error(data)
            assert status == 408 and f"within {HEAD_TIMEOUT:g} s (--head-timeout)" in error
    until(lambda: health(running.url)["connections"] == 1, "the places freed")
    assert api_top(running.url, files["song.mp3"])["windows"] == 2


def test_an_upload_above_the_limit_sent_whole_gets_its_413(server):
    """urllib sends the whole body before it reads the answer: it reads the
    413 and its JSON (the server reads and drops the rest of the body),
    whether the refusal came from the Content-Length or while the body
    arrived (chunked)."""
    running, _ = server
    body = b"\0" * (3 * MAX_UPLOAD_MB << 20)
    chunks = [body[i:i + (1 << 20)] for i in range(0, len(body), 1 << 20)]
    for data in (body, iter(chunks), body):
        request = urllib.request.Request(running.url + "v1/tag", data=data,
                                         headers={"Content-Type": "audio/mpeg"})
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(request, timeout=60)
        assert refused.value.code == 413
        assert f"limit of {MAX_UPLOAD_MB} MB (--max-upload-mb)" in json.loads(
            refused.value.read())["error"]
    until(lambda: health(running.url)["in_progress"] == 0, "the queue empty")
