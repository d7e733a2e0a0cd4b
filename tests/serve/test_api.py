"""The HTTP API in-process (FastAPI's test client, and the ASGI app called
directly where the test needs to see how the body is read): every endpoint,
the scores against tag.py's pipeline, and every refusal with its status and
its one-line JSON message."""

from __future__ import annotations

import asyncio
import json
import os
import re

import numpy as np
import pytest

pytest.importorskip("fastapi")
pytest.importorskip("python_multipart")

from tests.presets import TAGGER_TAGS as TAGS  # noqa: E402

LIMIT_MB = 0.5  # the app's --max-upload-mb: the test files are below, `big` above
MAX_SECONDS = 20.0  # long.wav (25 s) is above


@pytest.fixture(scope="module")
def app(serve_models):
    from tagger.serve.app import create_app
    from tagger.serve.config import ServeConfig
    from tagger.serve.models import load_models

    config = ServeConfig(models=(serve_models["cnn"], f"mtt={serve_models['transformer']}"),
                         max_upload_mb=LIMIT_MB, max_seconds=MAX_SECONDS, max_queue=3,
                         max_batch=8)
    return create_app(load_models(config), config)


@pytest.fixture(scope="module")
def client(app):
    from fastapi.testclient import TestClient

    with TestClient(app) as client:
        yield client


def read(name, serve_audio) -> bytes:
    with open(serve_audio[name], "rb") as f:
        return f.read()


def post_raw(client, data, content_type="audio/wav", query=""):
    return client.post(f"/v1/tag{query}", content=data, headers={"content-type": content_type})


def error_of(response, status, *fragments):
    """The refusal: its status, a JSON body {"error": one line} holding every fragment."""
    assert response.status_code == status, response.text
    body = response.json()
    assert list(body) == ["error"] and "\n" not in body["error"], body
    for fragment in fragments:
        assert fragment in body["error"], body
    return body["error"]


@pytest.fixture(scope="module")
def expected(serve_models, serve_audio):
    """name -> the cnn's FileResult as tag.py computes it (tagger.inference.engine.tagging)."""
    from tagger.inference.engine.keras import KerasPredictor
    from tagger.inference.engine.tagging import tag_files
    from tagger.models.saved import load_tagger

    names = ["song.wav", "song.mp3"]
    results = tag_files(KerasPredictor(*load_tagger(serve_models["cnn"])),
                        [serve_audio[n] for n in names])
    by_index = {r.index: r for r in results}
    assert all(r.ok for r in by_index.values())
    return {name: by_index[i] for i, name in enumerate(names)}


# -- what is served -----------------------------------------------------------


def synthetic_note_of(path):
    from tagger.models.saved import read_saved_info, synthetic_note

    return synthetic_note(read_saved_info(path))


def test_healthz_and_models(client, serve_models):
    from tagger.inference.common import model_fingerprint

    health = client.get("/healthz").json()
    # no server counts connections in the test client
    assert health == {"status": "ok", "models": ["cnn", "mtt"], "in_progress": 0,
                      "max_queue": 3, "connections": None, "max_connections": 256,
                      "batching": health["batching"]}
    assert set(health["batching"]) == {"cnn", "mtt"}
    listed = client.get("/v1/models").json()
    assert listed["default"] == "cnn"
    cnn, mtt = listed["models"]
    assert (cnn["name"], cnn["family"], cnn["tags"]) == ("cnn", "samplecnn", TAGS)
    assert cnn["fingerprint"] == model_fingerprint(serve_models["cnn"])
    assert (cnn["attention"], mtt["attention"]) == (False, True)
    assert cnn["window_seconds"] == pytest.approx(59049 / 22050)
    assert cnn["embedding_dim"] > 0 and mtt["family"] == "transformer"
    assert "path" not in cnn and cnn["file"] == "model.keras"  # no server paths
    # the cnn's records were synthetic: its note says so; the transformer's were real
    assert cnn["note"] == synthetic_note_of(serve_models["cnn"])
    assert cnn["note"].startswith("this model was trained on the synthetic dataset")
    assert mtt["note"] is None


def test_openapi_describes_the_api(client):
    spec = client.get("/openapi.json").json()
    assert {"/v1/tag", "/v1/models", "/healthz"} <= set(spec["paths"])
    tag = spec["paths"]["/v1/tag"]["post"]
    assert {"multipart/form-data", "application/octet-stream", "audio/*"} == set(
        tag["requestBody"]["content"])
    assert {"413", "415", "422", "503"} <= set(tag["responses"])
    from tagger.serve.uploads import QUERY_OPTIONS  # what the 422s for others name

    assert {p["name"] for p in tag["parameters"]} == set(QUERY_OPTIONS) == {
        "model", "k", "taggram", "embeddings", "attention"}
    docs = client.get("/docs")
    assert docs.status_code == 200 and "cdn." not in docs.text  # nothing from the internet
    for asset, kind in (("swagger-ui-bundle.js", "javascript"), ("swagger-ui.css", "css")):
        assert f"/docs-assets/{asset}" in docs.text
        served = client.get(f"/docs-assets/{asset}")
        assert served.status_code == 200 and kind in served.headers["content-type"]
        assert len(served.content) > 100_000


def test_the_page_and_its_files(client):
    page = client.get("/")
    assert page.status_code == 200 and "text/html" in page.headers["content-type"]
    assert "default-src 'self'" in page.headers["content-security-policy"]
    for name, kind, size in (("page.js", "javascript", 1000), ("page.css", "css", 1000),
                             ("favicon.svg", "image/svg+xml", 200)):
        assert f'"page/{name}"' in page.text  # relative: works under a proxy's prefix
        asset = client.get(f"/page/{name}")
        assert asset.status_code == 200 and kind in asset.headers["content-type"]
        assert len(asset.content) > size
    assert client.get("/page/favicon.svg").text.lstrip().startswith("<svg")
    script = client.get("/page/page.js").text
    for text in (page.text, script, client.get("/page/page.css").text,
                 client.get("/page/favicon.svg").text):  # nothing from elsewhere
        assert set(re.findall(r"https?://[^\s\"'`)]+", text)) <= {"http://www.w3.org/2000/svg"}
    assert re.findall(r"fetch\(`?\"?([^`\"?$]+)", script) == ["v1/models", "v1/tag"]
    error_of(client.get("/page/../app.py"), 404)
    error_of(client.get("/page/secret.txt"), 404, "no page file")


# -- tagging ------------------------------------------------------------------


def test_raw_body_gives_tag_pys_scores(client, expected, serve_audio, serve_models):
    before = client.get("/healthz").json()["batching"]["cnn"]
    response = post_raw(client, read("song.wav", serve_audio),
                        query="?k=3&taggram=1&embeddings=1")
    assert response.status_code == 200, response.text
    assert "connection" not in response.headers  # the body was read whole: kept alive
    after = client.get("/healthz").json()["batching"]["cnn"]
    assert (after["calls"] - before["calls"], after["windows"] - before["windows"]) == (1, 2)
    body = response.json()
    expected = expected["song.wav"]
    assert (body["model"], body["file"], body["tags"]) == ("cnn", "upload", TAGS)
    assert (body["windows"], body["padded"], body["sample_rate"]) == (2, False, 22050)
    assert body["duration"] == pytest.approx(8.0, abs=1e-3)
    assert body["note"] == synthetic_note_of(serve_models["cnn"]) is not None
    np.testing.assert_allclose(body["scores"], expected.clip_scores, atol=1e-5)
    best = np.argsort(-expected.clip_scores, kind="stable")[:3]
    assert [t["tag"] for t in body["top"]] == [TAGS[i] for i in best]
    assert body["top"][0]["score"] == max(body["scores"])
    np.testing.assert_allclose(body["taggram"]["scores"], expected.scores, atol=1e-5)
    assert body["taggram"]["starts"] == pytest.approx([0.0, 59049 / 22050])
    assert len(body["embedding"]) == client.get("/v1/models").json()["models"][0][
        "embedding_dim"]
    assert "attention" not in body


def test_multipart_upload_of_an_mp3_names_the_file(client, expected, serve_audio):
    response = client.post("/v1/tag", files={"file": ("my song.mp3", read("song.mp3",
                                                                           serve_audio),
                                                      "audio/mpeg")}, data={"note": "x"})
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["file"], body["windows"], body["sample_rate"]) == ("my song.mp3", 2, 16000)
    np.testing.assert_allclose(body["scores"], expected["song.mp3"].clip_scores, atol=1e-5)
    assert "taggram" not in body and "embedding" not in body


def test_an_m4a_upload_is_decoded_with_ffmpeg_as_tag_py_decodes_it(client, serve_models,
                                                                   serve_audio, tmp_path):
    import soundfile

    from tagger.inference.engine.keras import KerasPredictor
    from tagger.inference.engine.tagging import tag_files
    from tagger.models.saved import load_tagger
    from tests.checks import write_m4a

    samples, rate = soundfile.read(serve_audio["song.wav"], dtype="float32")
    path = write_m4a(tmp_path / "song.m4a", samples, rate)  # AAC: not libsndfile's
    response = client.post("/v1/tag", files={"file": ("song.m4a", path.read_bytes(),
                                                      "audio/mp4")})
    assert response.status_code == 200, response.text
    body = response.json()
    [result] = tag_files(KerasPredictor(*load_tagger(serve_models["cnn"])), [str(path)])
    assert result.ok
    # 8 s and the AAC encoder's priming and padding: a third full window
    assert (body["file"], body["windows"], body["sample_rate"]) == ("song.m4a", 3, 22050)
    assert (result.windows, result.file_sample_rate) == (3, 22050)
    np.testing.assert_allclose(body["scores"], result.clip_scores, atol=1e-5)


def test_a_clip_shorter_than_a_window_is_padded(client, serve_audio):
    body = post_raw(client, read("short.flac", serve_audio), "audio/flac").json()
    assert (body["windows"], body["padded"], body["sample_rate"]) == (1, True, 44100)
    assert body["duration"] == pytest.approx(1.5, abs=1e-3)


def last_layer_attention(model_path, audio_path):
    """`(windows, heads, T + 1, T + 1)` the last encoder layer's attention
    scores for the file cut into windows, the last partial one zero-padded:
    computed here from the model's own layers, not by tagger's attention maps."""
    import keras

    from tagger.audio import load_audio
    from tagger.models.attention import encoder_names
    from tagger.models.saved import load_tagger, raw_audio_input

    model, info = load_tagger(model_path)
    rate, window, to_model_input = raw_audio_input(model, info)
    audio = load_audio(audio_path, rate)
    count = -(-len(audio) // window)
    windows = np.pad(audio, (0, count * window - len(audio))).reshape(count, window)
    last = model.get_layer(encoder_names(model)[-1])
    probe = keras.Model(model.inputs, last.output[1])
    return np.asarray(probe.predict_on_batch(np.asarray(to_model_input(windows))), np.float64)


def test_attention_map_of_an_attention_model(client, serve_audio, serve_models):
    body = post_raw(client, read("song.wav", serve_audio),
                    query="?model=mtt&attention=1&taggram=1").json()
    assert body["model"] == "mtt" and len(body["taggram"]["scores"]) == 2
    assert body["note"] is None  # a model of real data
    attention = body["attention"]
    # the tiny transformer: 29 steps of 4 log-mel frames per 59049-sample window;
    # three windows (the last partial one zero-padded) cover the 8 s file
    assert len(attention["values"]) == 3 * 29
    assert attention["step_seconds"] == pytest.approx(59049 / 22050 / 29)
    assert attention["audio_seconds"] == pytest.approx(8.0, abs=1e-3)
    # the [CLS] query's attention to each step, summed over the heads, as the
    # model's last layer gives it for the same audio
    scores = last_layer_attention(serve_models["transformer"], serve_audio["song.wav"])
    heads = scores.shape[1]
    assert scores.shape == (3, heads, 30, 30) and heads > 1
    expected = scores[:, :, 0, 1:].sum(axis=1)  # (windows, steps)
    values = np.reshape(attention["values"], (3, 29))
    np.testing.assert_allclose(values, expected, atol=2e-5)
    # each head's row is a softmax: the steps get all but what [CLS] keeps for itself
    np.testing.assert_allclose(values.sum(axis=1) + scores[:, :, 0, 0].sum(axis=1), heads,
                               atol=1e-4)
    assert (values > 0).all() and values.sum(axis=1).max() < heads


def test_k_is_capped_at_the_number_of_tags(client, serve_audio):
    body = post_raw(client, read("song.wav", serve_audio), query="?k=100").json()
    assert len(body["top"]) == len(TAGS)


# -- refusals -----------------------------------------------------------------


@pytest.mark.parametrize("content_type, fragment", [
    ("text/plain", "Content-Type text/plain is not audio"),
    ("application/json", "Content-Type application/json is not audio"),
    ("application/x-www-form-urlencoded", "-F file=@FILE"),  # curl --data-binary's
    ("", "no Content-Type is not audio"),
])
def test_a_body_that_is_not_audio_is_415(client, content_type, fragment):
    error_of(post_raw(client, b"RIFF....", content_type), 415, fragment)


def test_not_audio_and_damaged_audio_are_422(client, serve_audio):
    error_of(post_raw(client, b"this is not audio\n" * 50, "audio/mpeg"), 422,
             "the upload is not audio this server can decode (unknown format or damaged "
             "file); send an MP3, OGG, FLAC, WAV or M4A file")
    wav = read("song.wav", serve_audio)
    damaged = wav[:44] + bytes(np.random.default_rng(0).integers(0, 256, 4000, np.uint8))
    damaged = damaged[:20] + b"\xff\xff" + damaged[22:]  # a broken format field in the header
    error_of(post_raw(client, damaged), 422, "not audio this server can decode")


def test_nan_audio_is_422(client, tmp_path):
    import soundfile

    audio = np.zeros(22050 * 3, np.float32)
    audio[100] = np.nan
    soundfile.write(str(tmp_path / "nan.wav"), audio, 22050, subtype="FLOAT")
    error_of(post_raw(client, (tmp_path / "nan.wav").read_bytes()), 422, "NaN or infinite")


def test_empty_uploads_are_400(client):
    error_of(post_raw(client, b""), 400, "empty (0 bytes)")
    error_of(client.post("/v1/tag", files={"file": ("a.mp3", b"", "audio/mpeg")}), 400,
             "empty (0 bytes)")


def test_multipart_without_one_file_is_400(client, serve_audio):
    error_of(post_raw(client, b"--B--\r\n", "multipart/form-data; boundary=B"), 400,
             "no file part")
    song = read("song.mp3", serve_audio)
    error_of(client.post("/v1/tag", data={"note": "x"}, files={"nothing": (None, b"x")}), 400,
             "no file part")  # fields that are not files are not read ...
    for name in ("model", "k"):  # ... nor options as fields: said
        error_of(client.post("/v1/tag", data={name: "1"},
                             files={"file": ("a.mp3", song, "audio/mpeg")}),
                 422, f"the option {name!r} as a form field", f"/v1/tag?{name}=")
    error_of(client.post("/v1/tag", files=[("file", ("a.mp3", song, "audio/mpeg")),
                                           ("file", ("b.mp3", song, "audio/mpeg"))]),
             400, "more than one file")
    error_of(post_raw(client, b"--x\r\n", "multipart/form-data"), 400, "no boundary")
    truncated = (b"--B\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.mp3\"\r\n"
                 b"\r\n" + song[:5000])
    error_of(post_raw(client, truncated, "multipart/form-data; boundary=B"), 400,
             "ended before its closing boundary")


def test_too_large_is_413(client):
    big = b"\0" * int(LIMIT_MB * 2**20 + 1)
    response = post_raw(client, big)
    error_of(response, 413, "larger than the limit of 0.5 MB", "--max-upload-mb")
    # refused before its body was read: the connection ends (the server reads
    # and drops the rest first, tagger.serve.connections)
    assert response.headers["connection"] == "close"
    error_of(client.post("/v1/tag", files={"file": ("big.wav", big, "audio/wav")}), 413,
             "--max-upload-mb")


def test_too_long_is_413(client, serve_audio):
    error_of(post_raw(client, read("long.wav", serve_audio)), 413,
             "longer than the limit of 20 s", "--max-seconds")


def test_options_the_model_lacks_and_unknown_models(client, serve_audio):
    song = read("song.wav", serve_audio)
    error_of(post_raw(client, song, query="?attention=1"), 400, "'cnn' has no attention layers")
    error_of(post_raw(client, song, query="?model=nope"), 404, "no model named 'nope'",
             "cnn, mtt")
    error_of(post_raw(client, song, query="?k=0"), 422, "k", "greater than or equal to 1")
    error_of(post_raw(client, song, query="?taggram=maybe"), 422, "taggram")
    for query, fragments in (("?K=1", ("unknown query parameter(s) K", "model, k, taggram")),
                             ("?embedding=1&bogus=", ("parameter(s) bogus, embedding",)),
                             ("?model=cnn&model=mtt", ("parameter(s) model given more than",))):
        error_of(post_raw(client, song, query=query), 422, *fragments)


def test_unknown_paths_and_methods_are_json(client):
    error_of(client.get("/v2/tag"), 404, "no such endpoint: GET /v2/tag")
    error_of(client.get("/v1/tag"), 405, "GET is not allowed on /v1/tag")


def test_a_full_queue_is_503_with_retry_after(app, client, serve_audio):
    admission = app.state.admission
    admission.count = admission.limit  # as if --max-queue requests were in progress
    try:
        response = post_raw(client, read("song.wav", serve_audio))
    finally:
        admission.count = 0
    error_of(response, 503, "busy", "--max-queue")
    assert int(response.headers["retry-after"]) >= 1
    assert post_raw(client, read("song.wav", serve_audio)).status_code == 200


# -- how the body is read: the ASGI app called directly -------------------------


def call(app, headers, chunks, disconnect=False, stall=False):
    """POST /v1/tag with `chunks` as the body, one receive() each, then a
    disconnect if `disconnect`, or nothing more ever if `stall`; returns
    (status, JSON body or None, chunks the app read)."""
    read_count, sent = [0], []
    queue = list(chunks)

    async def receive():
        if queue:
            read_count[0] += 1
            chunk = queue.pop(0)
            return {"type": "http.request", "body": chunk,
                    "more_body": bool(queue) or disconnect or stall}
        if disconnect:
            return {"type": "http.disconnect"}
        await asyncio.sleep(3600)  # a client that sends nothing more

    async def send(message):
        sent.append(message)

    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1",
             "method": "POST", "scheme": "http", "path": "/v1/tag", "raw_path": b"/v1/tag",
             "query_string": b"", "root_path": "", "client": ("127.0.0.1", 1),
             "server": ("127.0.0.1", 8000),
             "headers": [(k.encode(), v.encode()) for k, v in headers.items()]}
    asyncio.run(asyncio.wait_for(app(scope, receive, send), 20))
    start = next(m for m in sent if m["type"] == "http.response.start")
    body = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    return start["status"], (json.loads(body) if body else None), read_count[0]


def test_too_large_is_refused_while_it_arrives(app):
    chunk = b"\0" * 65536
    chunks = [chunk] * 40  # 2.5 MB, without a Content-Length
    status, body, read_count = call(app, {"content-type": "audio/wav"}, chunks)
    assert status == 413 and "--max-upload-mb" in body["error"]
    assert read_count == int(LIMIT_MB * 2**20 // len(chunk)) + 1  # stopped at the limit
    assert os.listdir(app.state.uploads) == []


def test_a_stalled_upload_is_408(app, monkeypatch):
    from tagger.serve import uploads

    monkeypatch.setattr(uploads, "IDLE_SECONDS", 0.3)
    status, body, read_count = call(app, {"content-type": "audio/wav"}, [b"RIFF" * 100],
                                    stall=True)
    assert (status, read_count) == (408, 1) and "stalled" in body["error"]
    assert os.listdir(app.state.uploads) == [] and app.state.admission.count == 0


def test_a_declared_size_above_the_limit_is_refused_unread(app):
    status, body, read_count = call(app, {"content-type": "audio/mpeg",
                                          "content-length": str(10 * 2**20)}, [b"x"])
    assert (status, read_count) == (413, 0)


def test_a_client_gone_mid_upload_leaves_nothing(app, serve_audio):
    song = read("song.wav", serve_audio)
    status, body, read_count = call(app, {"content-type": "audio/wav"},
                                    [song[:10000], song[10000:20000]], disconnect=True)
    assert read_count == 2
    assert os.listdir(app.state.uploads) == []  # the partial upload is gone
    assert app.state.admission.count == 0  # and its place in the queue
    assert os.stat(app.state.uploads).st_mode & 0o777 == 0o700  # the private folder


def test_behind_a_proxy_prefix(app):
    """--root-path /tagger: the API answers with the prefix kept or stripped by
    the proxy, and the OpenAPI page finds its description under the prefix."""
    from fastapi.testclient import TestClient

    client = TestClient(app, root_path="/tagger")  # no lifespan: the module's client owns it
    for path in ("/tagger/v1/models", "/v1/models"):
        assert client.get(path).json()["default"] == "cnn"
    assert "/tagger/openapi.json" in client.get("/tagger/docs").text
    assert client.get("/tagger/openapi.json").json()["servers"] == [{"url": "/tagger"}]
