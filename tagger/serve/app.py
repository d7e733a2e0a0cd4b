"""The HTTP application: a versioned JSON API, the page, the health check.

    GET  /                 the page (tagger/serve/page/)
    POST /v1/tag           audio in the body -> tags, scores, duration, windows,
                           model name and fingerprint; ?model=NAME, ?k=5,
                           ?taggram=1 (per-window scores), ?embeddings=1,
                           ?attention=1 (attention models)
    GET  /v1/models        the models served, the first the default
    GET  /healthz          liveness, the requests in progress and the open connections
    GET  /docs, /openapi.json   the API's OpenAPI description (FastAPI's; /docs-assets/
                                holds Swagger UI's files)

Every error is `{"error": "<one line>"}` with its status: 400 a malformed
request or an option the model lacks, 404 an unknown model or path, 408 an
upload that stalls or comes too slowly (--body-timeout, --body-min-rate), 413 an
upload above --max-upload-mb (refused while it arrives) or audio above
--max-seconds, 415 a body that is not audio, 422 audio that cannot be
decoded (or a bad query parameter), 503 with Retry-After when --max-queue
requests are in progress already.

A response sent before the request's body was read whole (a refusal)
says `Connection: close` (`connections.CloseBeforeBody`); the server then
reads and drops the rest of the body before it closes, so the client reads
the answer.

Work stays off the event loop: uploads are streamed to the private folder
(`uploads.py`), decoding runs on `workers` decoder threads, the model on
each model's batcher thread (`batching.py`) and attention maps on one more
thread, so the loop only moves bytes and answers.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import math
import threading
from importlib import resources

from fastapi import FastAPI, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, Response
from fastapi_offline import FastAPIOffline
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect

from tagger.serve import uploads
from tagger.serve.connections import CloseBeforeBody
from tagger.serve.problems import Problem

API_VERSION = "v1"
DOCS_ASSETS = "/docs-assets"  # Swagger UI's script, style and icon
PAGE_ASSETS = {"page.js": "text/javascript; charset=utf-8",
               "page.css": "text/css; charset=utf-8",
               "favicon.svg": "image/svg+xml"}
# The page runs only what this server sends: no inline script, nothing from elsewhere.
PAGE_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; script-src 'self'; style-src 'self'; "
                               "img-src 'self' data: blob:; media-src 'self' blob:; "
                               "object-src 'none'; base-uri 'none'; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}


class TopTag(BaseModel):
    tag: str
    score: float


class Taggram(BaseModel):
    starts: list[float] = Field(description="each window's start, seconds")
    scores: list[list[float]] = Field(description="(windows, tags): each window's scores, "
                                                  "in the order of `tags`")


class AttentionMap(BaseModel):
    step_seconds: float = Field(description="seconds of audio per value")
    audio_seconds: float = Field(description="where the audio ends (the rest is padding)")
    values: list[float] = Field(description="the last encoder layer's [CLS] attention to "
                                            "each time step, summed over the heads")


class TagResult(BaseModel):
    model: str = Field(description="the model's name, as GET /v1/models lists it")
    fingerprint: str = Field(description="SHA-256 of the model file (as tag.py --db keys it)")
    file: str = Field(description="the uploaded file's name, or 'upload'")
    duration: float = Field(description="seconds of audio")
    sample_rate: int = Field(description="the file's own sample rate, Hz")
    windows: int = Field(description="model windows scored (non-overlapping, the last "
                                     "partial one dropped)")
    window_seconds: float
    padded: bool = Field(description="shorter than one window: zero-padded to one")
    note: str | None = Field(description="a caveat to show beside the tags (a model trained "
                                         "on the synthetic dataset says so), or null")
    top: list[TopTag] = Field(description="the k best tags, best first")
    tags: list[str] = Field(description="every tag, in the model's order")
    scores: list[float] = Field(description="every tag's clip score (the mean over windows)")
    taggram: Taggram | None = Field(None, description="with ?taggram=1")
    embedding: list[float] | None = Field(None, description="with ?embeddings=1: the mean "
                                                            "penultimate-layer vector")
    attention: AttentionMap | None = Field(None, description="with ?attention=1")


class ModelInfo(BaseModel):
    name: str
    fingerprint: str
    family: str | None
    file: str
    tags: list[str]
    sample_rate: int
    window_seconds: float
    embedding_dim: int | None
    attention: bool
    note: str | None = Field(description="a caveat to show beside the model's tags, or null")


class Models(BaseModel):
    default: str
    models: list[ModelInfo]


class Batching(BaseModel):
    calls: int = Field(description="model calls so far")
    windows: int = Field(description="windows scored so far, over all calls")


class Health(BaseModel):
    status: str
    models: list[str]
    in_progress: int = Field(description="requests admitted and not yet answered")
    max_queue: int
    connections: int | None = Field(description="HTTP connections open (null where no "
                                                "server counts them, e.g. a test client)")
    max_connections: int
    batching: dict[str, Batching] = Field(description="per model")


class ErrorBody(BaseModel):
    error: str


ERRORS = {status: {"model": ErrorBody, "description": text} for status, text in (
    (400, "malformed request, empty upload, or an option the model lacks"),
    (404, "no model of that name"),
    (408, "the upload stalled (nothing arrived for 30 s) or came too slowly "
          "(--body-timeout, --body-min-rate)"),
    (413, "the upload is above --max-upload-mb, or the audio above --max-seconds"),
    (415, "the body is neither audio nor multipart/form-data"),
    (422, "not decodable audio, or a bad query parameter"),
    (503, "--max-queue requests in progress already (see Retry-After)"))}

UPLOAD_BODY = {"requestBody": {"required": True, "content": {
    "multipart/form-data": {"schema": {"type": "object", "required": ["file"], "properties": {
        "file": {"type": "string", "format": "binary"}}}},
    "application/octet-stream": {"schema": {"type": "string", "format": "binary"}},
    "audio/*": {"schema": {"type": "string", "format": "binary"}}}}}


class _Admission:
    """At most `limit` requests in progress; the others are refused (503)."""

    def __init__(self, limit: int):
        self.limit = limit
        self.count = 0
        self._lock = threading.Lock()

    def enter(self) -> bool:
        with self._lock:
            if self.count >= self.limit:
                return False
            self.count += 1
            return True

    def leave(self) -> None:
        with self._lock:
            self.count -= 1


def page_file(name: str) -> bytes:
    return resources.files("tagger.serve").joinpath("page", name).read_bytes()


def create_app(models, config) -> FastAPI:
    """The application serving `models` (loaded `ServedModel`s, the first the
    default) within `config`'s limits (a ServeConfig). It owns the models:
    their batchers are closed, and the upload folder removed, when the
    application shuts down."""
    served = {model.name: model for model in models}
    default = models[0].name
    folder = uploads.private_folder()
    decoders = concurrent.futures.ThreadPoolExecutor(config.workers, "tagger-decoder")
    mapper = concurrent.futures.ThreadPoolExecutor(1, "tagger-attention")
    admission = _Admission(config.max_queue)
    page = {name: page_file(name) for name in ("index.html", *PAGE_ASSETS)}

    @contextlib.asynccontextmanager
    async def lifespan(app):
        try:
            yield
        finally:
            for model in models:
                model.batcher.close()
            decoders.shutdown(wait=False, cancel_futures=True)
            mapper.shutdown(wait=False, cancel_futures=True)
            uploads.remove_folder(folder)

    # /docs: FastAPI's Swagger UI with its script and style served from here
    # (fastapi-offline bundles them), so it works without the internet
    app = FastAPIOffline(
        title="tagger", version=API_VERSION, lifespan=lifespan, redoc_url=None,
        static_url=DOCS_ASSETS,
        description="Music auto-tagging over HTTP: POST audio to /v1/tag. Errors are "
                    "`{\"error\": message}`. See docs/commands/serve.md.")
    app.add_middleware(CloseBeforeBody)
    app.state.uploads = folder
    app.state.admission = admission
    app.state.models = served
    app.state.connections = None  # the server's open connections (a set), where it counts them

    @app.exception_handler(Problem)
    async def problem(request, error: Problem):
        return JSONResponse({"error": error.message}, error.status, headers=error.headers)

    @app.exception_handler(HTTPException)
    async def http_error(request, error: HTTPException):
        message = str(error.detail)
        if error.status_code == 404:
            message = f"no such endpoint: {request.method} {request.url.path}; see /docs"
        elif error.status_code == 405:
            message = f"{request.method} is not allowed on {request.url.path}; see /docs"
        return JSONResponse({"error": message}, error.status_code,
                            headers=getattr(error, "headers", None))

    @app.exception_handler(RequestValidationError)
    async def invalid(request, error: RequestValidationError):
        first = error.errors()[0]
        where = " ".join(str(part) for part in first.get("loc", ()))
        return JSONResponse({"error": f"{where}: {first.get('msg', 'invalid')}"}, 422)

    def model_named(name: str | None):
        if name is None:
            return served[default]
        if name not in served:
            raise Problem(404, f"no model named {name!r}; the models are: "
                               f"{', '.join(served)}")
        return served[name]

    def busy() -> Problem:
        drain = served[default].batcher.seconds_to_drain()
        wait = max(1, math.ceil(drain)) if drain else 1
        return Problem(503, f"the server is busy: {admission.limit} requests are in progress "
                            f"(--max-queue); try again in {wait} s", {"Retry-After": str(wait)})

    @app.get("/", include_in_schema=False)
    async def index():
        return HTMLResponse(page["index.html"], headers=PAGE_HEADERS)

    @app.get("/page/{name}", include_in_schema=False)
    async def asset(name: str):
        if name not in PAGE_ASSETS:
            raise Problem(404, f"no page file {name!r}")
        return Response(page[name], media_type=PAGE_ASSETS[name], headers=PAGE_HEADERS)

    @app.get("/healthz", response_model=Health, summary="Liveness and load")
    async def healthz():
        connections = app.state.connections
        return {"status": "ok", "models": list(served), "in_progress": admission.count,
                "max_queue": admission.limit,
                "connections": None if connections is None else len(connections),
                "max_connections": config.max_connections,
                "batching": {name: {"calls": m.batcher.batches, "windows": m.batcher.windows}
                             for name, m in served.items()}}

    @app.get(f"/{API_VERSION}/models", response_model=Models, summary="The models served")
    async def list_models():
        return {"default": default, "models": [m.describe() for m in served.values()]}

    @app.post(f"/{API_VERSION}/tag", response_model=TagResult, responses=ERRORS,
              openapi_extra=UPLOAD_BODY, summary="Tag one audio file")
    async def tag(request: Request,
                  model: str | None = Query(None, description="a name from /v1/models "
                                                              "(default: the first)"),
                  k: int = Query(5, ge=1, le=10_000, description="tags in `top`"),
                  taggram: bool = Query(False, description="add the per-window scores"),
                  embeddings: bool = Query(False, description="add the embedding"),
                  attention: bool = Query(False, description="add the attention map "
                                                             "(attention models)")):
        """The audio goes in the body: multipart/form-data with one file (the
        field `file`), or the raw file with Content-Type audio/... or
        application/octet-stream. MP3, M4A, OGG, FLAC, WAV, ... are decoded, mixed
        to mono and resampled to the model's rate, as tag.py does."""
        _check_query(request.query_params)
        chosen = model_named(model)
        if embeddings and not chosen.has_embeddings:
            raise Problem(400, f"model {chosen.name!r} has no embedding layer this project "
                               "knows; leave out embeddings=1")
        if attention and chosen.attention is None:
            raise Problem(400, f"model {chosen.name!r} has no attention layers; attention=1 "
                               "needs a self-attention or transformer model")
        content_type = request.headers.get("content-type", "")
        kind = uploads.body_kind(content_type)
        uploads.check_declared_size(request.headers.get("content-length"), kind,
                                    config.max_upload_bytes)
        if not admission.enter():
            raise busy()
        try:
            try:
                upload = await uploads.receive(
                    request.stream(), folder, kind, content_type, config.max_upload_bytes,
                    config.body_timeout, config.body_min_rate_bytes)
            except ClientDisconnect:  # gone mid-upload: nothing was kept, nobody listens
                return Response(status_code=400)
            try:
                body = await _tag_upload(chosen, upload, config, decoders, mapper, attention)
            finally:
                upload.remove()
        finally:
            admission.leave()
        return JSONResponse(_tag_body(chosen, body, k, taggram, embeddings))

    return app


def _check_query(params) -> None:
    """/v1/tag takes each of its options (`uploads.QUERY_OPTIONS`) once and
    nothing else: a misspelt or repeated one is a 422, never a default
    silently used."""
    unknown = sorted(set(params) - set(uploads.QUERY_OPTIONS))
    if unknown:
        raise Problem(422, f"unknown query parameter(s) {', '.join(unknown)}; /v1/tag takes "
                           f"{', '.join(uploads.QUERY_OPTIONS)}")
    repeated = sorted(name for name in set(params) if len(params.getlist(name)) > 1)
    if repeated:
        raise Problem(422, f"query parameter(s) {', '.join(repeated)} given more than once; "
                           "give each once")


async def _tag_upload(chosen, upload, config, decoders, mapper, attention: bool) -> dict:
    from tagger.errors import UserError
    from tagger.serve.batching import Closed

    loop = asyncio.get_running_loop()
    try:
        future, samples, rate, _ = await loop.run_in_executor(
            decoders, chosen.submit, upload.path, config.max_seconds)
        scores, embeddings = await asyncio.wrap_future(future)
        maps = None
        if attention:
            maps = await loop.run_in_executor(mapper, chosen.attention_map, upload.path)
    except Closed as error:
        raise Problem(503, f"{error}; try again later", {"Retry-After": "5"}) from None
    except UserError as error:
        raise Problem(422, str(error)) from None
    result = chosen.result(upload.filename or "upload", scores, embeddings, samples, rate)
    return {"result": result, "attention": maps}


def _tag_body(chosen, done: dict, k: int, taggram: bool, embeddings: bool) -> dict:
    from tagger.inference.outputs import select_tags

    result = done["result"]
    names = chosen.tag_names
    top = select_tags(result.clip_scores, names, top_k=min(k, len(names)))
    body = {
        "model": chosen.name, "fingerprint": chosen.fingerprint, "file": result.path,
        "duration": round(result.duration, 3), "sample_rate": result.file_sample_rate,
        "windows": result.windows,
        "window_seconds": round(result.window_samples / result.sample_rate, 6),
        "padded": result.padded, "note": chosen.note,
        "top": [{"tag": tag, "score": _score(score)} for tag, score in top],
        "tags": names, "scores": [_score(s) for s in result.clip_scores],
    }
    if taggram:
        starts = result.starts / result.sample_rate
        body["taggram"] = {"starts": [round(float(s), 6) for s in starts],
                           "scores": [[_score(s) for s in row] for row in result.scores]}
    if embeddings:
        body["embedding"] = [round(float(v), 6) for v in result.embeddings.mean(axis=0)]
    if done["attention"] is not None:
        body["attention"] = done["attention"]
    return body


def _score(value) -> float:
    return round(float(value), 6)
