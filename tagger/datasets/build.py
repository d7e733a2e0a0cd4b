"""`build`: any dataset source's records, written locally or by Beam."""

from __future__ import annotations

from tagger.config import BuildConfig
from tagger.datasets.source import DatasetSource
from tagger.records.info import DatasetInfo


def build(source: DatasetSource, settings, config: BuildConfig, runner=None) -> DatasetInfo:
    """Plans `source` in `config.data_dir` with `settings` (its settings
    dataclass) and writes the records as `config` says, with `runner`:
    `tagger.records.writer.LocalRun()` (the default: this machine's
    processes, started while the plan is made) or a `tagger.beam.build.BeamRun`.
    Returns its DatasetInfo (also saved as dataset_info.json)."""
    if not isinstance(settings, source.settings_type):
        raise TypeError(f"the {source.name} source takes {source.settings_type.__name__}, "
                        f"got {type(settings).__name__}")
    if runner is None:
        from tagger.records.writer import LocalRun

        runner = LocalRun()
    return runner.write(lambda: source.plan(config.data_dir, settings, config.progress),
                        config)
