"""`tagger-serve`: tagging over HTTP, and a web page for it.

    tagger-serve demo_output/runs/samplecnn-rese-multi/model.keras   # http://127.0.0.1:8000/
    python -m tagger.serve msd-transformer --port 8080

- `config.py`: `ServeConfig`, the checked settings (limits, models, address);
- `batching.py`: `Batcher`, the dynamic batcher: windows of many requests
  share the model's calls, with a small wait bound and a bounded backlog;
- `uploads.py`: reads a request's body (raw audio or one multipart file)
  into a private temporary folder, checking its size while it arrives;
- `models.py`: `ServedModel`, one loaded tagger: its predictor, batcher,
  fingerprint, and the decoding of an upload into the model's windows;
- `app.py`: the FastAPI application (`create_app`): the versioned JSON API,
  the page, the health check and the errors as JSON (`problems.Problem`: a
  status and one line);
- `connections.py`: the bounds uvicorn's HTTP/1.1 protocol lacks: a
  deadline for each request head, a cap on open connections, and a
  lingering close so a client that sends its whole body first reads a
  refusal;
- `server.py`: `serve(config)`: binds, loads the models and runs uvicorn;
- `page/`: the page itself (HTML, CSS, JavaScript, its icon; no build step,
  nothing from elsewhere).

The web framework (FastAPI, uvicorn, python-multipart) is the `serve`
extra (requirements-serve.txt); only this package imports it. See
docs/commands/serve.md.
"""
