"""Serves taggers over HTTP: a JSON API and a web page to drop songs on.

    tagger-serve                                  # MTT_musicnn, the default for real music
    tagger-serve demo_output/runs/samplecnn-rese-multi/model.keras
    python -m tagger.serve msd-transformer --model mtat-self-attention --port 8080

Then open http://127.0.0.1:8000/ (the page), POST audio to /v1/tag, or read
the API at /docs. Binds to 127.0.0.1 (this machine) unless --host says
otherwise; see docs/commands/serve.md for a reverse proxy and a public host.
Needs the serve extra: pip install -r requirements-serve.txt.
"""

from __future__ import annotations

from tagger import cli
from tagger.cli import ArgumentParser, number_in_range, positive_float, positive_int
from tagger.serve.config import MAX_BATCH, MAX_WAIT_MS, MAX_WORKERS

port_number = number_in_range(int, 0, 65535)
batch_windows = number_in_range(int, 1, MAX_BATCH)
wait_ms = number_in_range(float, 0, MAX_WAIT_MS)
decoder_threads = number_in_range(int, 1, MAX_WORKERS)


def parse_args(argv=None):
    p = ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("model", nargs="?", type=cli.model_name_or_path, default=None,
                   metavar="MODEL",
                   help="a .keras or .hdf5 model written by train.py, a pretrained name "
                        "(tagger-pretrained list), or NAME=PATH; the default model of "
                        "the API (default: MTT_musicnn, the musicnn package's tagger for "
                        "real music, fetched from the package index on first use)")
    p.add_argument("--model", dest="more_models", action="append",
                   type=cli.model_name_or_path, default=None,
                   metavar="MODEL",
                   help="another model to serve, chosen with /v1/tag?model=NAME "
                        "(repeatable; default: none)")
    p.add_argument("--host", default="127.0.0.1",
                   help="address to listen on (default 127.0.0.1: this machine only; "
                        "0.0.0.0: every interface)")
    p.add_argument("--port", type=port_number, default=8000,
                   help="TCP port (default 8000; 0: any free port, printed)")
    p.add_argument("--max-upload-mb", type=positive_float, default=50.0, metavar="MB",
                   help="largest upload, checked while it arrives (default 50)")
    p.add_argument("--max-seconds", type=positive_float, default=900.0, metavar="S",
                   help="longest audio decoded (default 900: 15 minutes)")
    p.add_argument("--max-batch", type=batch_windows, default=32,
                   help=f"windows per model call, from one or many requests (default 32, "
                        f"at most {MAX_BATCH})")
    p.add_argument("--max-wait-ms", type=wait_ms, default=5.0, metavar="MS",
                   help=f"how long a window waits for others to fill its batch (default 5, "
                        f"at most {MAX_WAIT_MS:g})")
    p.add_argument("--max-queue", type=positive_int, default=32,
                   help="requests in progress at once (uploading, decoding or scored); "
                        "more get 503 with Retry-After (default 32)")
    p.add_argument("--workers", type=decoder_threads, default=2,
                   help=f"decoder threads (default 2, at most {MAX_WORKERS})")
    p.add_argument("--head-timeout", type=positive_float, default=10.0, metavar="S",
                   help="seconds for a request's head to arrive whole, from the connection's "
                        "start or the previous answer; then 408 and the connection is "
                        "closed (default 10)")
    p.add_argument("--body-timeout", type=positive_float, default=20.0, metavar="S",
                   help="seconds for an upload to arrive, plus one for every --body-min-rate "
                        "KB it sends; a slower one gets 408 and frees its place in the "
                        "queue (default 20)")
    p.add_argument("--body-min-rate", type=positive_float, default=32.0, metavar="KB",
                   help="KB a second an upload keeps up after its --body-timeout "
                        "(default 32)")
    p.add_argument("--max-connections", type=positive_int, default=256, metavar="N",
                   help="open connections at once; beyond, a new one gets 503 and is "
                        "closed (default 256; at least --max-queue)")
    p.add_argument("--root-path", default="", metavar="PATH",
                   help="the URL prefix a reverse proxy serves this under, e.g. /tagger "
                        "(default: none)")
    p.add_argument("--no-progress", action="store_true",
                   help="no progress bar while a pretrained model downloads")
    from tagger.inference.engine.registry import ENGINES

    p.add_argument("--engine", default=None, choices=ENGINES,
                   help="what runs the models, as tag.py --engine (default auto, or "
                        "$TAGGER_ENGINE: the fastest engine giving embeddings that keeps "
                        "keras's tags, as a tag.py --engine auto run on the model measured "
                        "it on this machine, else keras); an engine without embeddings "
                        "serves tag scores only")
    args = p.parse_args(argv)
    if args.model is None and not args.more_models:
        from tagger.pretrained.registry import DEFAULT_MODEL

        args.model = DEFAULT_MODEL
    return args


def main(argv=None):
    args = parse_args(argv)
    # without the serve extra, one line at once, before TensorFlow is imported
    return cli.run(_check_installed, args) or cli.main(run, args)


def _check_installed(args) -> None:
    from tagger.backends import check
    from tagger.serve.server import check_installed

    check()  # Keras's backend first, as every command checks it
    check_installed()


def run(args) -> int:
    from tagger.serve.config import ServeConfig
    from tagger.serve.server import serve

    models = ([args.model] if args.model else []) + list(args.more_models or [])
    config = ServeConfig(
        models=tuple(models), host=args.host, port=args.port,
        max_upload_mb=args.max_upload_mb, max_seconds=args.max_seconds,
        max_batch=args.max_batch, max_wait_ms=args.max_wait_ms, max_queue=args.max_queue,
        workers=args.workers, head_timeout=args.head_timeout,
        body_timeout=args.body_timeout, body_min_rate=args.body_min_rate,
        max_connections=args.max_connections, root_path=args.root_path,
        progress=not args.no_progress,
        **({"engine": args.engine} if args.engine else {}))
    return serve(config)


if __name__ == "__main__":
    raise SystemExit(main())
