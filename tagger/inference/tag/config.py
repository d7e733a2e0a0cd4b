"""The frozen configuration of tag.py."""

from __future__ import annotations

import dataclasses

from tagger.errors import UserError, flags_do_not_apply
from tagger.inference.engine.registry import ENGINES, default_engine, engine_named
from tagger.inference.window_choice import ALL, LIBRARY_WINDOWS, MOST_WINDOWS

OUTPUT_FORMATS = ("table", "json", "csv")
EMBEDDINGS_IN_DB = ""  # tag.py --embeddings with no PATH: into the --db database


@dataclasses.dataclass(frozen=True)
class TagConfig:
    """What `tagger.inference.tag.run.tag` does; see tag.py for every field."""

    model: str
    inputs: tuple
    top_k: int | None = None  # None: 5, or every tag above `threshold`
    threshold: float | None = None
    format: str = "table"
    out: str | None = None  # None: the report goes to the caller (stdout)
    recursive: bool = False
    hop: float | None = None  # seconds; None: the model's window (no overlap)
    taggram_dir: str | None = None
    embeddings: str | None = None
    embedding_layer: str | None = None  # None: the family's penultimate layer
    batch_size: int = 32
    workers: int | None = None  # decoder threads; None: sized from the measured rates
    progress: bool = True
    engine: str = dataclasses.field(default_factory=default_engine)  # auto, or $TAGGER_ENGINE
    overwrite: bool = False  # replace an existing output that tag.py did not write
    db: str | None = None  # results database (inference/library/results_db.py)
    rescan: bool = False  # with db: tag files that are up to date there too
    write_tags: bool = False  # write the selected tags into each file (file_tags.py)
    write_scores: bool = False  # with write_tags: their scores too
    genre: bool = False  # with write_tags: the top selected genre tag as the genre as well
    dry_run: bool = False  # with write_tags: say what would change, change nothing
    # what --write-tags records as the model's name: the pretrained name the
    # model was given by; None: `family/name` of the model file
    model_name: str | None = None
    # --windows: score each file from N windows (ALL, 0: every one); None:
    # LIBRARY_WINDOWS with --db and no --taggram, else every window
    windows: int | None = None

    def __post_init__(self):
        if not self.inputs:
            raise UserError("no INPUT given; name audio files or folders to tag")
        if self.format not in OUTPUT_FORMATS:
            raise UserError(f"--format must be one of {', '.join(OUTPUT_FORMATS)}, "
                            f"got {self.format!r}")
        if self.top_k is not None and self.top_k < 1:
            raise UserError(f"--top-k must be at least 1, got {self.top_k}")
        if self.threshold is not None and not 0.0 <= self.threshold <= 1.0:
            raise UserError(f"--threshold is a score in [0, 1], got {self.threshold}")
        if self.hop is not None and not self.hop > 0:
            raise UserError(f"--hop must be a positive number of seconds, got {self.hop}")
        for flag, value in (("--batch-size", self.batch_size), ("--workers", self.workers)):
            if value is not None and value < 1:
                raise UserError(f"{flag} must be at least 1, got {value}")
        if self.windows is not None and not 0 <= self.windows <= MOST_WINDOWS:
            raise UserError(f"--windows takes a number of windows up to {MOST_WINDOWS}, or 0 "
                            f"or all for every window; got {self.windows}")
        if self.windows and self.taggram_dir:
            raise UserError("--taggram draws every window of each file, --windows scores "
                            f"{self.windows} of them: leave one out (or give --windows all)")
        engine = engine_named(self.engine)  # a UserError listing them for another
        if self.embeddings == EMBEDDINGS_IN_DB and not self.db:
            raise UserError("--embeddings without a PATH stores them in the --db database; "
                            "give --embeddings PATH or add --db PATH")
        if self.rescan and not self.db:
            raise flags_do_not_apply(["--rescan"], "with --db", "it redoes files up to date "
                                     "in the database")
        extra = [flag for flag, on in (("--write-scores", self.write_scores),
                                       ("--genre", self.genre), ("--dry-run", self.dry_run))
                 if on]
        if extra and not self.write_tags:
            raise flags_do_not_apply(extra, "with --write-tags", "they say what it writes")
        if self.embedding_layer is not None and (self.embeddings in (None, EMBEDDINGS_IN_DB)
                                                 or self.db):
            raise flags_do_not_apply(
                ["--embedding-layer"], "with --embeddings PATH and no --db",
                "a --db database holds the penultimate embeddings tagger-similar compares")
        if self.embeddings is not None and not engine.embeddings:
            *others, last = [name for name, e in ENGINES.items() if e.embeddings]
            embedders = f"{', '.join(others)} or {last}" if others else last
            raise UserError(f"--embeddings needs --engine {embedders} (the {self.engine} "
                            "engine returns tag scores only)")

    @property
    def scored_windows(self) -> int | None:
        """The windows each file is scored from: N, or None for every window."""
        if self.windows is None:
            return LIBRARY_WINDOWS if self.db is not None and not self.taggram_dir else None
        return None if self.windows == ALL else self.windows
