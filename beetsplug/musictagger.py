"""musictagger: tags a beets library with this package's taggers (docs/beets.md).

`beet musictag [QUERY]` scores each matching item's audio with a tagger
(MTT_musicnn by default, any pretrained name or a .keras/.hdf5 model file)
through the pipeline tag.py uses, and stores on the item:

- `musictagger_tags`: the selected tags, highest score first (a list, as
  beets' `genres`; written to the file as tag.py --write-tags writes them);
- `<prefix>_<tag>`: each tag's score, a float (`beets_fields`);
- `musictagger_model`: the model's name and SHA-256 and the windows each
  track was scored from with the rule that chose them (`windows:8 rule:2`;
  the `windows` setting, or -n/--windows: N of them spread over the track,
  decoding only those; 0 or all: every window, the label as before;
  `window_choice.windows_label`), and `musictagger_stamp`: the file's size
  and modification time as it was tagged, so an unchanged file is not
  tagged again by the same model from as many windows by the same rule;
- the beets fields the `fields` setting maps tags to.

Each item is stored as soon as it is scored (a killed run resumes where it
stopped); a file that cannot be read is one line and the others go on.
Files are written by beets itself (`item.write`), with `write`. Its lines
are beets' (`self._log`) and the plugin's own: a handler that the libraries
add to the root logger while a model is loaded or run (`_root_logging_kept`)
is taken away again. One run tags a library at a time (`_library_lock`: a
second waits, then finds the first's items up to date). `--labels FIELD`
prints the labels CSV (`tagger.datasets.labels_csv`) of the items FIELD
gives a tag.
"""

from __future__ import annotations

import contextlib
import os
import sys

import mediafile
from beets import library, ui
from beets.dbcore import types
from beets.plugins import BeetsPlugin

from tagger.inference.library import beets_fields
from tagger.inference.library.file_tags import (
    FIELD,
    MODEL_FIELD,
    MP4_PREFIX,
    SEPARATOR,
    stamp_of,
)
from tagger.inference.window_choice import LIBRARY_WINDOWS, windows_label

TAGS = "musictagger_tags"
MODEL = "musictagger_model"
STAMP = "musictagger_stamp"
SCORE = types.Float(3)  # shown with 3 decimals; stored as scored (6)
FLAGS = {"model": "-m/--model", "force": "-f/--force", "write": "-w/--write (-W/--nowrite)",
         "windows": "-n/--windows"}


class _UnsetTagList(types.DelimitedString):
    """beets' list type (MULTI_VALUE_DSV), None where unset: beets reads
    our media fields from every file it imports or updates, and a file
    without our tags gives None, which beets' list type would store as an
    empty field on an item never tagged; None it stores nothing for (beets'
    own NullFloat's way; checked with beets 2.14.1)."""

    def __init__(self):
        super().__init__(types.MULTI_VALUE_DSV.db_delimiter)

    @property
    def null(self):
        return None

    def format(self, value) -> str:
        return "" if value is None else super().format(value)

    def to_sql(self, model_value):
        return None if model_value is None else super().to_sql(model_value)


class _UnsetText(types.String):
    """beets' text type, None where unset (as `_UnsetTagList`)."""

    @property
    def null(self):
        return None


class _JoinedTags(mediafile.MediaField):
    """A list of tags kept in one text tag joined by "; " (tag.py --write-tags' form)."""

    def __get__(self, mediafile_, owner=None):
        text = super().__get__(mediafile_, owner)
        return text.split(SEPARATOR) if text else None

    def __set__(self, mediafile_, value):
        if isinstance(value, list):
            value = SEPARATOR.join(value)
        super().__set__(mediafile_, value)


def _file_field(name: str, cls=mediafile.MediaField):
    """A media field kept where tag.py --write-tags keeps `name`."""
    return cls(mediafile.MP3DescStorageStyle(name), mediafile.StorageStyle(name.upper()),
               mediafile.MP4StorageStyle(MP4_PREFIX + name), mediafile.ASFStorageStyle(name))


class _Tagger:
    """A loaded model: its predictor, tags, label and score fields."""

    def __init__(self, given: str, embeddings: bool = False, engine: str | None = None,
                 audio=list):
        from tagger import backends

        backends.choose(None)  # Keras's backend, checked as the commands check it
        backends.quiet_tensorflow_for_keras()  # before anything imports it: no chatter
        from tagger.cli import progress_wanted
        from tagger.fileio import is_local
        from tagger.inference.common import model_fingerprint
        from tagger.inference.engine.registry import (
            EngineOptions,
            default_engine,
            make_predictor,
        )
        from tagger.inference.library.file_tags import model_label
        from tagger.models.saved import load_tagger, model_file_name
        from tagger.pretrained import resolve_model

        path = resolve_model(given, progress=progress_wanted())
        model, info = load_tagger(path)
        self.predictor = make_predictor(engine or default_engine(), model, info, EngineOptions(
            model_path=path, embeddings=embeddings, calibration_audio=audio))
        for line in filter(None, self.predictor.note.splitlines()):  # which engine auto took
            print(f"musictagger: {line}", file=sys.stderr, flush=True)
        self.tag_names = list(self.predictor.tag_names)
        name = given if path != given else model_file_name(path)
        if path == given and info is not None and info.model:
            name = f"{info.model}/{name}"
        self.label = model_label(name, model_fingerprint(path) if is_local(path) else None)
        prefix = beets_fields.score_prefix(self.tag_names, model_file_name(given))
        self.fields = beets_fields.score_fields(prefix, self.tag_names)


class MusicTaggerPlugin(BeetsPlugin):
    def __init__(self):
        super().__init__()
        self.config.add({"model": "MTT_musicnn", "auto": False, "write": False,
                         "top_k": None, "threshold": None, "fields": {},
                         "batch_size": 32, "workers": None,
                         "windows": LIBRARY_WINDOWS, "engine": None})
        self._taggers = {}
        self._stamped = set()  # ids of items whose stamp was current when beets began a write
        self.add_media_field(TAGS, _file_field(FIELD, _JoinedTags))
        self.add_media_field(MODEL, _file_field(MODEL_FIELD))
        self.register_listener("write", self._before_write)
        self.register_listener("after_write", self._after_write)
        auto = self.config["auto"].get()
        if auto is True:
            self.register_listener("import_task_files", self._imported)
        elif auto is not False:  # one line, not a plugin that fails to load
            self._log.warning("auto is yes or no, got {!r}: items are not tagged on import "
                              "until it is", auto)

    @property
    def item_types(self):
        declared = {TAGS: _UnsetTagList(), MODEL: _UnsetText(), STAMP: types.STRING}
        declared.update(dict.fromkeys(beets_fields.known_score_fields(), SCORE))
        declared.update(dict.fromkeys(self._model_score_fields(), SCORE))
        fields = self.config["fields"].get()  # checked when the command runs
        for field in fields if isinstance(fields, dict) else ():
            if beets_field_type(field) is None:
                declared[field] = types.MULTI_VALUE_DSV
        return declared

    def commands(self):
        command = ui.Subcommand("musictag", help="tag items with a music tagger's tags")
        command.parser.add_option("-m", "--model", help="a pretrained name or a model file "
                                  "(default: the model setting, MTT_musicnn)")
        command.parser.add_option("-f", "--force", action="store_true",
                                  help="tag again the items that are up to date")
        command.parser.add_option("-w", "--write", action="store_true", default=None,
                                  help="write the tags into the files")
        command.parser.add_option("-W", "--nowrite", action="store_false", dest="write",
                                  help="do not write the tags into the files")
        command.parser.add_option("-n", "--windows", metavar="N",
                                  help="score each track from N windows spread over it, "
                                  "decoding only those; 0 or all: every window (default: the "
                                  f"windows setting, {LIBRARY_WINDOWS})")
        command.parser.add_option("--labels", metavar="FIELD",
                                  help="print build_folder.py --labels' CSV of FIELD instead")
        command.parser.add_option("--suggest", type="int", metavar="N",
                                  help="with --labels FIELD: print instead the N items "
                                  "without FIELD whose labels would help the model most "
                                  "(a tagger trained on FIELD's labels, train.py --from), "
                                  "as that CSV with the tags to fill in (default: none)")
        command.func = self._command
        return [command]

    # --- the command and the import listener ---------------------------------------

    def _command(self, lib, opts, args):
        if opts.labels is not None and not opts.labels.strip():
            raise ui.UserError("--labels takes a field's name, got an empty one (an unset "
                               "shell variable?)")
        if opts.suggest is not None:
            if not opts.labels or opts.suggest < 1:
                raise ui.UserError(f"--suggest takes a number of items, at least 1, and "
                                   f"--labels FIELD, the field they lack; got --suggest "
                                   f"{opts.suggest} and --labels {opts.labels}")
            _refuse(opts, ("force", "write", "windows"), "with --suggest (it tags no item, "
                    "and scores every window)")
            return self._suggest(lib, opts.labels, args, opts.suggest, self._model(opts.model))
        if opts.labels:
            _refuse(opts, ("model", "force", "write", "windows"), "with --labels alone (it "
                    "reads the field, it tags no item)")
            return self._labels(lib, opts.labels, args)
        write = self.config["write"].get(bool) if opts.write is None else opts.write
        model = self._model(opts.model)
        if not any(True for _ in lib.items(args)):
            raise ui.UserError("no items match the query; `beet ls QUERY` lists what it matches")
        self._tag(lib, lambda: list(lib.items(args)), model, opts.force, write, opts.windows)

    def _imported(self, session, task):
        items = list(task.imported_items())

        def reloaded():
            for item in items:
                item.load()  # what another run stored meanwhile
            return items

        self._tag(session.lib, reloaded, self._model(None), False,
                  self.config["write"].get(bool))

    def _tag(self, lib, items, model: str, force: bool, write: bool, windows=None) -> None:
        """Tags the items `items()` gives, called once this run holds the
        library's lock (`_library_lock`): what another run stored is seen;
        each from `windows` windows (-n/--windows, else the setting)."""
        from tagger.errors import UserError

        try:
            self._tag_items(lib, items, model, force, write, self._windows(windows))
        except UserError as error:
            raise ui.UserError(str(error)) from None

    def _windows(self, given) -> int | None:
        """-n/--windows, else the `windows` setting: N, or None for every window."""
        from tagger.inference.window_choice import windows_count

        value = self.config["windows"].get() if given is None else given
        try:
            return windows_count(value) or None
        except ValueError as error:
            raise ui.UserError(f"musictagger windows: {error}") from None

    def _tag_items(self, lib, items, model: str, force: bool, write: bool,
                   windows: int | None = None) -> None:
        from tqdm import tqdm

        from tagger.cli import progress_wanted
        from tagger.fileio import path_text
        from tagger.inference.engine.tagging import tag_files
        from tagger.inference.outputs import select_tags
        from tagger.runtime import native_stderr_silenced

        top_k, threshold = self._selection()
        self._mapping()  # a bad setting is reported before the model loads
        tagger = self._tagger(model, audio=lambda: _some_paths(lib))
        mapping = self._mapping(tagger.tag_names)
        label = windows_label(tagger.label, windows)
        with _library_lock(lib, lambda line: print(f"musictagger: {line}", file=sys.stderr,
                                                   flush=True)):
            items = items()
            wanted = [item for item in items if force or not _is_current(item, label)]
            if len(wanted) < len(items):
                self._log.info("up to date: {} of {} items (--force tags them again)",
                               len(items) - len(wanted), len(items))
            paths = [os.fsdecode(item.path) for item in wanted]
            failed = 0
            # decoders' notes on damaged files hidden: tag.py's lines
            with native_stderr_silenced(), _root_logging_kept():
                bar = tqdm(total=len(wanted), unit="item", desc="musictag", file=sys.stderr,
                           disable=not progress_wanted(), dynamic_ncols=True)
                say = lambda line: bar.write(f"musictagger: {line}", file=sys.stderr)
                try:
                    for result in tag_files(tagger.predictor, paths,
                                            batch_size=self._int("batch_size"),
                                            workers=self._int("workers"), windows=windows):
                        bar.update(1)
                        item = wanted[result.index]
                        reason = result.error or _changed_since_read(result)
                        if reason is None:
                            chosen = [t for t, _ in select_tags(
                                result.clip_scores, tagger.tag_names, top_k, threshold)]
                            _set_fields(item, tagger, result, chosen, mapping, label)
                            reason = _store(item, write)
                        if reason is not None:
                            failed += 1
                            say(f"skipped {path_text(result.path)}: {reason}")
                finally:
                    bar.close()
        if failed:
            self._log.warning("{} of {} items could not be tagged", failed, len(wanted))

    def _tagger(self, model: str, embeddings: bool = False, audio=list) -> _Tagger:
        if (model, embeddings) not in self._taggers:
            with _root_logging_kept():
                self._taggers[model, embeddings] = _Tagger(model, embeddings,
                                                           self.config["engine"].get(), audio)
        return self._taggers[model, embeddings]

    def _model(self, given: str | None) -> str:
        """The model to tag with: -m/--model as given (an empty one refused,
        as tag.py refuses it), else the `model` setting: a pretrained name
        as it is, a path as beets reads its other paths (`~` expanded, a
        relative path from the config file's folder: confuse's
        `as_filename`)."""
        import argparse

        from tagger.cli import model_name_or_path
        from tagger.pretrained.registry import lookup

        if given is not None:
            try:
                return model_name_or_path(given)
            except argparse.ArgumentTypeError as error:
                raise ui.UserError(f"-m/--model: {error}") from None
        text = self.config["model"].as_str()
        if "://" in text:
            return text
        path = self.config["model"].as_filename()
        if os.path.exists(path) or (lookup(text) is None and _written_as_path(text)):
            return path
        return text  # a pretrained name (or a name resolve_model answers with the names)

    # --- beets' writes: no empty tags; a current stamp stays current -------------------

    def _before_write(self, item, path, tags):
        for field in (TAGS, MODEL):  # an item not tagged: its file keeps what it holds
            if not tags.get(field):
                tags.pop(field, None)
        if path == item.path and _stamp_current(item):
            self._stamped.add(id(item))
        else:
            self._stamped.discard(id(item))

    def _after_write(self, item, path):
        if id(item) in self._stamped:
            self._stamped.discard(id(item))
            item[STAMP] = stamp_of(os.stat(item.path))

    # --- labels ----------------------------------------------------------------------

    def _labels(self, lib, field: str, args) -> None:
        rows, labelled = [], False
        for item in lib.items(args):
            tags = _labels_of(item, field)
            labelled = labelled or bool(tags)
            relative = self._relative(lib, item) if tags else None
            if relative is not None:
                rows.append((relative, tags))
        if not labelled:
            raise ui.UserError(f"no item the query matches has {field}, so there are no "
                               f"labels to print; name a field they have (`beet ls -f "
                               f"'${field}' QUERY` shows it)")
        self._print_labels(rows)

    def _suggest(self, lib, field: str, args, count: int, model: str) -> None:
        """The `count` items without `field` to label next (train.py
        --suggest's choice: tagger.training.suggest), as a labels CSV."""
        import numpy as np

        from tagger.errors import UserError
        from tagger.inference.engine.tagging import tag_files
        from tagger.runtime import native_stderr_silenced
        from tagger.training.suggest import suggestions

        items = [item for item in lib.items(args) if self._relative(lib, item) is not None]
        labelled = [bool(_labels_of(item, field)) for item in items]
        if all(labelled):
            raise ui.UserError(f"every item the query matches has {field}; there is nothing "
                               "to suggest")
        scores, means, unread = [None] * len(items), [None] * len(items), []
        try:
            tagger = self._tagger(model, embeddings=True, audio=lambda: _some_paths(lib))
            paths = [os.fsdecode(item.path) for item in items]
            # decoders' notes on damaged files hidden
            with native_stderr_silenced(), _root_logging_kept():
                for result in tag_files(tagger.predictor, paths,
                                        batch_size=self._int("batch_size"),
                                        workers=self._int("workers")):
                    if result.error is None:
                        scores[result.index] = result.clip_scores
                        means[result.index] = result.embeddings.mean(axis=0)
                    else:
                        unread.append((items[result.index].filepath, result.error))
        except UserError as error:
            raise ui.UserError(str(error)) from None
        for path, error in unread:
            self._log.warning("left out {}: {}", path, error)
        read = [i for i, mean in enumerate(means) if mean is not None]
        pool = [i for i in read if not labelled[i]]
        if not pool:
            raise ui.UserError(f"none of the items without {field} could be read; see the "
                               "warnings above")
        known = [means[i] for i in read if labelled[i]]
        try:
            _, text = suggestions([self._relative(lib, items[i]) for i in pool],
                                  np.array([scores[i] for i in pool]),
                                  np.array([means[i] for i in pool]), count,
                                  np.array(known) if known else None)
        except ValueError as error:
            raise ui.UserError(str(error)) from None
        sys.stdout.write(text)

    def _relative(self, lib, item):
        """The item's path relative to the library's directory, or None
        (with a warning) for an item outside it."""
        relative = os.path.relpath(item.path, os.fsencode(lib.directory))
        if relative.startswith(os.fsencode(os.pardir + os.sep)):
            self._log.warning("left out {}: it is outside the library's directory",
                              item.filepath)
            return None
        return relative

    def _print_labels(self, rows) -> None:
        from tagger.datasets.labels_csv import labels_text

        try:
            sys.stdout.write(labels_text(rows))
        except ValueError as error:
            raise ui.UserError(str(error)) from None

    # --- settings --------------------------------------------------------------------

    def _mapping(self, tag_names=None) -> dict:
        """The `fields` setting, checked ({field: {tag: value}} with `tag_names`)."""
        from tagger.errors import UserError

        try:
            mapping = beets_fields.check_mapping(self.config["fields"].get(dict), tag_names)
        except UserError as error:
            raise ui.UserError(str(error)) from None
        for field in mapping:
            kind = beets_field_type(field)
            if kind is not None and not isinstance(kind, types.DelimitedString):
                raise ui.UserError(f"musictagger fields: beets' {field} holds one value, not "
                                   "a list of tags; map tags to a list field such as genres "
                                   "or to a field of your own such as mood")
        return mapping

    def _model_score_fields(self) -> list:
        """The score fields of the configured model, when it is a file whose
        tags can be read without loading it."""
        from tagger.models.saved import model_file_name, read_saved_info

        try:
            path = self._model(None)
            info = read_saved_info(path) if os.path.isfile(path) else None
        except Exception:  # a bad setting or model is reported when it is used
            info = None
        if info is None:
            return []
        prefix = beets_fields.score_prefix(info.tag_names, model_file_name(path))
        return beets_fields.score_fields(prefix, info.tag_names)

    def _selection(self):
        top_k, threshold = self.config["top_k"].get(), self.config["threshold"].get()
        if top_k is not None and (not _is_int(top_k) or top_k < 1):
            raise ui.UserError(f"musictagger top_k is a number of tags, at least 1; got "
                               f"{top_k!r}")
        if threshold is not None and not (isinstance(threshold, (int, float))
                                          and not isinstance(threshold, bool)
                                          and 0 <= threshold <= 1):
            raise ui.UserError(f"musictagger threshold is a score in [0, 1]; got {threshold!r}")
        return top_k, threshold

    def _int(self, name: str):
        value = self.config[name].get()
        if value is not None and (not _is_int(value) or value < 1):
            raise ui.UserError(f"musictagger {name} is a whole number, at least 1; got "
                               f"{value!r}")
        return value


def _is_int(value) -> bool:
    """A whole number as YAML gives it (`yes` is a bool, which Python counts as one)."""
    return isinstance(value, int) and not isinstance(value, bool)


def _labels_of(item, field: str) -> list:
    """The tags `field` gives the item: a list field's values, a text
    field's `;`-separated parts; none where it is unset or empty (beets'
    own fields are in every item, empty, or 0 for a number, where not set)."""
    value = item.get(field)
    if not value:
        return []
    values = value if isinstance(value, list) else str(value).split(";")
    return [tag for tag in (str(v).strip() for v in values) if tag]


def _stamp_current(item) -> bool:
    """Whether the item's file is as it was when it was last tagged."""
    try:
        return item.get(STAMP) == stamp_of(os.stat(item.path))
    except OSError:
        return False


def _is_current(item, label: str) -> bool:
    return item.get(MODEL) == label and _stamp_current(item)


def _changed_since_read(result) -> str | None:
    from tagger.inference.library.file_tags import CHANGED_SINCE_READ

    try:
        now = os.stat(result.path)
    except OSError as error:
        return f"it cannot be read any more ({error.strerror or error})"
    if result.read_stat is None or stamp_of(now) != stamp_of(result.read_stat):
        return CHANGED_SINCE_READ
    return None


def _some_paths(lib, count: int = 64) -> list:
    """The files of the library's first `count` items: audio like that to be
    tagged, for an engine that measures on it (auto, tflite-int8)."""
    import itertools

    return [os.fsdecode(item.path) for item in itertools.islice(lib.items(), count)]


def _set_fields(item, tagger: _Tagger, result, chosen, mapping, label: str) -> None:
    for field, score in zip(tagger.fields, result.clip_scores):
        item[field] = round(float(score), 6)
    item[TAGS] = chosen
    item[MODEL] = label
    for field, values in beets_fields.mapped_values(chosen, mapping).items():
        item[field] = values
    item[STAMP] = stamp_of(result.read_stat)


def _store(item, write: bool) -> str | None:
    """Writes the item's file (with `write`, through beets; the stamp
    follows the written file) and stores the item; the reason it failed."""
    if write:
        try:
            item.write()
        except library.FileOperationError as error:
            item.load()  # forget the fields: nothing is stored for a file not written
            return f"beets could not write its tags: {error.reason}"
    item.store()
    return None


def _written_as_path(text: str) -> bool:
    """Whether a `model` setting is written as a file's path (a folder, `~`
    or an extension in it), not as a pretrained name."""
    return "/" in text or os.sep in text or text.startswith("~") or bool(
        os.path.splitext(text)[1])


def _refuse(opts, names, where: str) -> None:
    """One line for the options among `names` (destinations) that were
    given but do not apply `where`."""
    given = [FLAGS[name] for name in names if getattr(opts, name) is not None]
    if given:
        raise ui.UserError(f"{', '.join(given)} {'does' if len(given) == 1 else 'do'} not "
                           f"apply {where}; leave {'it' if len(given) == 1 else 'them'} out")


@contextlib.contextmanager
def _root_logging_kept():
    """Keeps the root logger's handlers as they were (beets sets none; its
    lines go through its own logger's): absl's first log call, as
    TensorFlow saves a model to convert it for a TFLite engine, adds one
    (`logging.basicConfig()`), which would print each of the plugin's lines
    again after beets' (bound to a `sys.stderr` that stood in while native
    output was hidden: a logging error, tagger.runtime)."""
    import logging

    root = logging.getLogger()
    kept = list(root.handlers)
    try:
        yield
    finally:
        for handler in [h for h in root.handlers if h not in kept]:
            root.removeHandler(handler)


@contextlib.contextmanager
def _library_lock(lib, log):
    """Holds the lock of the library `lib` while items are tagged: a second
    `beet musictag` (or an import with `auto`) waits for the first to
    finish, saying so (`log`), then finds what it stored up to date. A
    lock whose run was killed is taken over (`folder_lock`)."""
    from tagger.folder_lock import folder_lock

    database = os.fsdecode(lib.path)
    if database == ":memory:":  # no other process can open it
        yield
        return
    with folder_lock(database + ".musictag.lock", os.path.dirname(database) or ".",
                     "beet musictag run", log=log, label="library", wait=True):
        yield


def beets_field_type(field: str):
    """The type of beets' own item field `field` (`types.DelimitedString`
    for a list field such as genres), or None for a flexible field. beets
    lists its fields' types only as `Item._fields` (checked with beets
    2.14.1, requirements-beets.txt; tests/inference/test_beets_plugin.py
    fails if that changes): read here alone."""
    return library.Item._fields.get(field)
