"""`run_beam_build`: a DatasetPlan written as records by a Beam pipeline.

The driver (this process) prepares the out dir and lists the shards still
to write exactly as the local builder does, writes them as a jobs file,
runs the pipeline (workers write the shards) and, once it has finished,
writes dataset_info.json from the shards' manifests, holding the out
dir's lock (`writer.build_lock`) throughout as the local builder does (a
second build refuses). Under the DirectRunner the result is byte-identical
to the local build.
"""

from __future__ import annotations

import dataclasses
import logging

from tagger import fileio
from tagger.config import BuildConfig, join_path
from tagger.errors import UserError
from tagger.records import writer
from tagger.records.info import DatasetInfo
from tagger.records.plan import DatasetPlan

JOBS_FILE = "beam-jobs.jsonl"


@dataclasses.dataclass(frozen=True)
class BeamRun:
    """Which Beam runner builds the dataset and the pipeline options it
    gets, as Beam command-line flags (`--key=value`, `--flag`)."""
    runner: str
    options: tuple = ()

    def write(self, make_plan, config: BuildConfig) -> DatasetInfo:
        """The runner interface of `tagger.records.writer.LocalRun`."""
        return run_beam_build(make_plan(), config, self)


def run_beam_build(plan: DatasetPlan, config: BuildConfig, run: BeamRun) -> DatasetInfo:
    """Writes `plan` under `config.output_dir` with the Beam runner `run`
    names; returns its DatasetInfo (also saved as dataset_info.json)."""
    out_dir = config.output_dir
    if out_dir.startswith("ram://") or plan.audio_root.startswith("ram://"):
        raise UserError("a Beam build needs data and out dirs its workers can reach "
                        "(local paths, gs://, ...), not ram://")
    options = pipeline_options(run)
    writer.check_input(plan, config)
    with writer.writing_out_dir(out_dir):  # the driver holds the lock until the end
        build = writer.prepare_build(plan, config)
        if build.pending:
            _run_pipeline(build.pending, plan, config, options)
            for job in build.pending:
                build.manifests[job.name] = writer.load_manifest(out_dir, job)
            missing = [job.name for job in build.pending if build.manifests[job.name] is None]
            if missing:
                raise UserError(f"the {run.runner} pipeline finished without writing "
                                f"{len(missing)} shard(s), e.g. {missing[0]}; rerun to "
                                "write the missing shards")
        writer.remove_temporary_files(out_dir)
        return writer.finish_build(plan, config, build)


def pipeline_options(run: BeamRun):
    """Beam PipelineOptions for `run`; an option no Beam options class knows
    is an error (Beam itself would only log a warning and drop it)."""
    logging.disable(logging.WARNING)  # Beam's import and parse warnings
    try:
        from apache_beam.options.pipeline_options import PipelineOptions

        options = PipelineOptions(list(run.options), runner=run.runner)
        known, every = _parsed_options(options)
    except ImportError:
        raise UserError("--runner needs Apache Beam: pip install -r "
                        "requirements-beam.txt") from None
    finally:
        logging.disable(logging.NOTSET)
    unknown = sorted(set(every) - set(known))
    if unknown:
        raise UserError(f"unknown Beam pipeline option --{unknown[0]}; check its spelling "
                        "against the runner's pipeline options (e.g. --project, --region, "
                        "--temp_location, --direct_num_workers)")
    return options


def _parsed_options(options):
    """The known and all options of `options`; an option Beam's argparse
    refuses (`direct_num_workers=bad`) is one UserError with argparse's own
    line, not Beam's whole usage text."""
    import contextlib
    import io

    printed = io.StringIO()
    try:
        with contextlib.redirect_stderr(printed), contextlib.redirect_stdout(printed):
            return (options.get_all_options(),
                    options.get_all_options(retain_unknown_options=True))
    except SystemExit:
        lines = [line for line in printed.getvalue().splitlines() if "error:" in line]
        why = lines[-1].split("error:", 1)[1].strip() if lines else "refused by Beam"
        raise UserError(f"Beam pipeline option: {why}; fix --beam-option or "
                        "--beam-pipeline-options") from None


def _run_pipeline(jobs, plan: DatasetPlan, config: BuildConfig, options) -> None:
    import apache_beam as beam

    from tagger.beam.jobs import encode_job
    from tagger.beam.pipeline import shard_pipeline

    jobs_path = join_path(config.output_dir, writer.STATE_DIR, JOBS_FILE)
    fileio.write_atomic(jobs_path, "".join(encode_job(job, plan.known_broken) + "\n"
                                           for job in jobs))
    try:
        with beam.Pipeline(options=options) as root:
            shard_pipeline(root, jobs_path, config, plan.audio_root, len(plan.tag_names))
    finally:
        fileio.remove(jobs_path)
