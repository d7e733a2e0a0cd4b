"""The cache of pretrained taggers: the original files as downloaded and
the converted models, and the one resolver every command calls.

    $TAGGER_HOME, else $XDG_CACHE_HOME/tagger, else ~/.cache/tagger
        originals/<file name>            the release's file, as downloaded
        originals/<file name>.json       its URL, size and sha256, recorded once it converted
        models/<name>.keras              the converted tagger
        models/<name>.json               source URL, the source file's sha256, converter version
        locks/<name>.lock                held while one process downloads and converts
                                         (tagger.folder_lock); the others wait
        tflite-int8/                     tag.py's calibrated int8 models (export/int8_cache.py)

Every original file is checked against its reference (`reference`,
`checksum.py`): the size and sha256 the registry pins, else those recorded
when a file of this entry first converted; with neither, the first file is
trusted, and recorded only once it has converted. A file that differs is
refused in one line: a download or a cached file that differs from a pin is
removed, and nothing of it stays; a cached file that differs from its
record is kept, and the line names the file to delete. A file with no
reference that fails to convert is removed and nothing is recorded, so the
next run downloads it again. An entry published as a wheel on the package
index is fetched with the user's pip (`wheel.py`, never installed), or read
in place from the installed package when the files a conversion reads
carry the wheel's pinned sha256. A converted model whose info matches the
reference and the converter's version is used as it is: the second use is
offline.
"""

from __future__ import annotations

import json
import os
import sys

from tagger import cache, fileio
from tagger.cache import Checksum, cache_home
from tagger.errors import UserError
from tagger.folder_lock import folder_lock
from tagger.pretrained import checksum, download, wheel
from tagger.pretrained.registry import MODELS, Pretrained, get, lookup

_MODEL_SUFFIXES = (".keras", ".hdf5", ".h5")


def original_path(entry: Pretrained) -> str:
    return os.path.join(cache_home(), "originals", entry.file_name)


def model_path(entry: Pretrained) -> str:
    return os.path.join(cache_home(), "models", entry.name + ".keras")


def _info_path(entry: Pretrained) -> str:
    return model_path(entry)[:-len(".keras")] + ".json"


def source_urls(entry: Pretrained) -> tuple:
    """TAGGER_WEIGHTS_URL/<file name> when set (a mirror, or a file://
    folder), else the release's own URLs."""
    mirror = os.environ.get("TAGGER_WEIGHTS_URL")
    if mirror:
        return (mirror.rstrip("/") + "/" + entry.file_name,)
    return entry.urls


def reference(entry: Pretrained) -> tuple[Checksum | None, str]:
    """(the Checksum the original file must have, "pinned" or "recorded"),
    or (None, "") where the first file that converts is to be trusted."""
    if entry.checksum is not None:
        return entry.checksum, "pinned"
    found = checksum.recorded(original_path(entry))
    return (found, "recorded") if found is not None else (None, "")


def _read_json(path: str) -> dict | None:
    try:
        with open(path) as file:
            value = json.load(file)
        return value if isinstance(value, dict) else None
    except (OSError, ValueError):
        return None


def _locked(entry: Pretrained, log):
    """The lock on one entry (`folder_lock`, waited for): one process
    downloads and converts, the others wait and then find the result."""
    folder = cache.cache_folder("locks")
    return folder_lock(os.path.join(folder, entry.name + ".lock"), folder,
                       f"download and conversion of {entry.name}", log=log, wait=True)


def _log(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def _progress_default() -> bool:
    try:
        return sys.stderr.isatty()
    except (AttributeError, ValueError):
        return False


def _checked(entry: Pretrained, path: str, came_from: str, url: str) -> Checksum:
    """The Checksum of the original at `path`, which came from `url`:
    `came_from` "given" (--weights: read only), "cached" or "download".
    Against a reference it must match: a download that does not is
    removed, and a cached file that does not match a pin; a cached file
    that does not match its record is kept, and the line names it."""
    expected, kind = reference(entry)
    if expected is None:
        return Checksum.of(path)
    differs, found = cache.mismatch(path, expected)
    if not differs:
        return found
    record = checksum.record_path(original_path(entry))
    if came_from == "download" or (came_from == "cached" and kind == "pinned"):
        checksum.remove(path, keep_record=True)
    given = f"--weights {path!r} is not the"
    if kind == "pinned":
        raise UserError({
            "given": f"{given} release's {entry.file_name} for {entry.name}",
            "cached": f"{path} is not the release's {entry.file_name}",
            "download": f"{url} sent a file that is not the release's {entry.file_name}",
        }[came_from] + f" ({differs}; pinned in the registry); " + {
            "given": "nothing was replaced",
            "cached": "it was removed from the cache: run again to download it",
            "download": "it was removed and nothing of it stays in the cache (a damaged or "
                        "changed release or mirror; TAGGER_WEIGHTS_URL names a mirror)",
        }[came_from])
    raise UserError({
        "given": f"{given} {entry.file_name} recorded for {entry.name} ({differs}); nothing "
                 f"was replaced: to convert it instead, delete {record}",
        "cached": f"{path} has changed since it converted ({differs}); nothing was replaced: "
                  f"delete {path} to download it again from {url}",
        "download": f"{url} sent a file that is not the {entry.file_name} recorded when it "
                    f"first converted ({differs}); it was removed and nothing was replaced (a "
                    f"changed release or mirror: delete {record} to accept it)",
    }[came_from])


def _download(entry: Pretrained, path: str, progress: bool, log) -> str:
    """Fetches the original to `path`: with pip from the package index for
    a wheel, else from the first URL that answers; returns where from."""
    if entry.wheel is not None and not os.environ.get("TAGGER_WEIGHTS_URL"):  # no mirror
        wheel.fetch(entry.wheel, path, log, progress)
        return f"pip download {entry.wheel.requirement}"
    failures = []
    for url in source_urls(entry):
        def started(total, offset, url=url):
            size = f"{total / 1e6:.1f} MB" if total else f"about {entry.approx_mb:.0f} MB"
            again = f", resuming at {offset / 1e6:.1f} MB" if offset else ""
            log(f"downloading {entry.name}: {url} ({size}{again}) -> {path}")
        try:
            download.fetch(url, path, progress=progress, what=entry.file_name,
                           on_start=started)
            return url
        except download.DownloadFailed as error:
            failures.append(error)
    raise failures[-1]


def up_to_date(entry: Pretrained, found: Checksum | None = None) -> bool:
    """Whether the converted model is there, of this converter version and
    made from the original the entry's reference (or `found`) describes."""
    from tagger.convert import VERSION

    info = _read_json(_info_path(entry))
    expected = found if found is not None else reference(entry)[0]
    return bool(info and os.path.isfile(model_path(entry))
                and info.get("converter_version") == VERSION
                and (expected is None or info.get("source_sha256") == expected.sha256))


def _convert(entry: Pretrained, source: str, vouched: bool, log) -> str:
    """Converts `source` to a scratch file beside the model and returns its
    path. A `source` no reference vouched for that fails to convert is
    removed from the cache with its partial download, and nothing is
    recorded (a file given by hand is only read)."""
    from tagger.convert import ConvertConfig, convert_file

    out = model_path(entry)
    cache.cache_folder("models")
    scratch = out[:-len(".keras")] + ".converting.keras"
    log(f"converting {entry.file_name} ({entry.converter}) -> {out}")
    try:
        convert_file(ConvertConfig(source=source, kind=entry.converter, out=scratch,
                                   options=entry.options, overwrite=True))
    except BaseException as error:
        fileio.remove_quietly(scratch)
        if vouched or not isinstance(error, Exception):
            raise
        cached = os.path.abspath(source) == os.path.abspath(original_path(entry))
        if cached:
            checksum.remove(source, keep_record=False)
        if not isinstance(error, UserError):
            raise
        gone = (f"{source} was removed from the cache and nothing was recorded: run again "
                "to download it again" if cached else "nothing was copied into the cache")
        raise UserError(f"{error}; {gone}") from None
    return scratch


def ensure(name: str, weights: str | None = None, progress: bool | None = None,
           log=_log) -> str:
    """The converted model of registry entry `name`, downloaded and
    converted on first use (or from `weights`, the original file given by
    hand); returns its path. UserError (one line) for any failure."""
    from tagger.convert import VERSION

    entry = get(name)
    progress = _progress_default() if progress is None else progress
    if weights is None and up_to_date(entry):  # a read-only cache serves what it holds
        return model_path(entry)
    with _locked(entry, log):
        if weights is None and up_to_date(entry):
            return model_path(entry)
        original = original_path(entry)
        cache.cache_folder("originals", os.path.dirname(entry.file_name))
        vouched = reference(entry)[0] is not None
        if weights is not None:
            if not os.path.isfile(weights):
                raise UserError(f"--weights {weights!r} not found (or not a file); give the "
                                f"downloaded {entry.file_name}")
            source, came_from, url = weights, "given", f"file://{os.path.abspath(weights)}"
        elif os.path.isfile(original):
            source, came_from = original, "cached"
            url = ((checksum.read_record(original) or {}).get("url")
                   or (source_urls(entry) or (entry.file_name,))[0])
        elif entry.wheel is not None and (folder := wheel.installed(entry.wheel)) is not None:
            # the installed package's files carry the pinned sha256: read in place;
            # nothing is copied into the cache
            return _install(entry, _convert(entry, folder, True, log), f"file://{folder}",
                            entry.checksum.sha256)
        else:
            source, came_from = original, "download"
            url = _download(entry, original, progress, log)
        found = _checked(entry, source, came_from, url)
        scratch = None if up_to_date(entry, found) else _convert(entry, source, vouched, log)
        if os.path.abspath(source) != os.path.abspath(original):
            download.copy_local(source, original)
        checksum.write_record(original, found, url, VERSION, name=entry.name,
                              file=entry.file_name)
        if scratch is not None:
            _install(entry, scratch, url, found.sha256)
        return model_path(entry)


def _install(entry: Pretrained, scratch: str, url: str, sha256: str) -> str:
    """Puts the converted `scratch` at `model_path`, with its info (where
    from, the source's sha256, the converter's version) beside it."""
    from tagger.convert import VERSION

    fileio.move_into_place(scratch, model_path(entry))
    fileio.write_atomic(_info_path(entry), json.dumps({
        "name": entry.name, "source_url": url, "source_file": entry.file_name,
        "source_sha256": sha256, "converter": entry.converter,
        "converter_options": dict(entry.options), "converter_version": VERSION},
        indent=2) + "\n")
    return model_path(entry)


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
