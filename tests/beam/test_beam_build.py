"""Beam builds: the DirectRunner writes the local build's bytes; skipped
clips are reported, not failures; a cut-short shard never takes its final
name; the flags; no Beam import without --runner."""

import json
import os

import pytest

pytest.importorskip("apache_beam")

from tagger.beam.build import BeamRun  # noqa: E402
from tagger.commands import build_flags  # noqa: E402
from tagger.commands import build_mtt as build_mtt_command  # noqa: E402
from tagger.commands.beam_flags import beam_run  # noqa: E402
from tagger.datasets.mtt import plan_mtt  # noqa: E402
from tagger.errors import UserError  # noqa: E402
from tagger.records import writer  # noqa: E402
from tests.checks import beam_modules_after, build_config, build_mtt, files_digest  # noqa: E402

DIRECT = BeamRun("DirectRunner")


def beam_build(data_dir, out_dir, run=DIRECT, **overrides):
    return build_mtt(data_dir, out_dir, runner=run, **overrides)


def test_direct_runner_is_byte_identical_to_the_local_build(synthetic_mtt, raw_records,
                                                            tmp_path):
    data_dir, summary = synthetic_mtt
    local_dir, local_info = raw_records
    info = beam_build(data_dir, tmp_path / "beam")
    digests = files_digest(tmp_path / "beam")
    assert digests == files_digest(local_dir)
    assert len(digests) == sum(len(s["shards"]) for s in local_info.splits.values()) + 1
    assert info == local_info
    assert not [n for n in os.listdir(tmp_path / "beam") if n.endswith(".tmp")]
    assert not (tmp_path / "beam" / ".build" / "beam-jobs.jsonl").exists()
    # clips that fail inside the pipeline (undecodable, empty, too short) are
    # skipped and reported with their reasons, like the known-broken ones
    reasons = {s["path"]: s["reason"] for s in info.skipped}
    assert {b.mp3_path for b in summary.broken} <= set(reasons)
    assert any(r.startswith("not decodable audio") for r in reasons.values())
    assert any(r.startswith("too short") for r in reasons.values())


def test_log_mel_and_unlabelled_split_match_the_local_build(synthetic_mtt, tmp_path):
    from tagger.config import FeatureConfig, LogMelConfig

    data_dir, _ = synthetic_mtt
    settings = dict(features=FeatureConfig("logmel", "int16", LogMelConfig(
        n_mels=16, n_fft=256, hop_length=256)), unlabelled_fraction=0.25)
    local = build_mtt(data_dir, tmp_path / "local", **settings)
    info = beam_build(data_dir, tmp_path / "beam", **settings)
    assert info == local and info.splits["student"]["clips"] > 0
    assert files_digest(tmp_path / "beam") == files_digest(tmp_path / "local")


def test_cut_short_shard_keeps_a_temporary_name_and_a_rerun_finishes(
        synthetic_mtt, raw_records, tmp_path, monkeypatch):
    data_dir, _ = synthetic_mtt
    out = tmp_path / "beam"
    decode, calls = writer.decode_clip, []

    def failing(task):  # the per-clip step (decode and serialize) of one clip fails
        calls.append(1)
        if len(calls) == 7:  # inside the second shard
            raise OSError("worker lost")
        return decode(task)

    monkeypatch.setattr(writer, "decode_clip", failing)
    with pytest.raises(Exception, match="worker lost"):
        beam_build(data_dir, out)
    names = os.listdir(out)
    shards = [n for n in names if n.endswith(".tfrecord")]
    assert any(n.endswith(".tmp") for n in names)
    assert not (out / "dataset_info.json").exists()
    local = files_digest(raw_records[0])
    for name, digest in files_digest(out).items():  # only complete shards have their name
        assert digest == local[name], name
    monkeypatch.setattr(writer, "decode_clip", decode)
    stamps = {n: (out / n).stat().st_mtime_ns for n in shards}
    beam_build(data_dir, out)
    assert files_digest(out) == local
    assert stamps == {n: (out / n).stat().st_mtime_ns for n in shards}  # kept, not rewritten
    assert not [n for n in os.listdir(out) if n.endswith(".tmp")]


def test_retried_job_does_not_rewrite_its_shard(synthetic_mtt, raw_records, tmp_path):
    from tagger.beam.jobs import encode_job
    from tagger.beam.pipeline import WriteShardFn

    data_dir, _ = synthetic_mtt
    config = build_config(data_dir, tmp_path / "out")
    plan = plan_mtt(config.data_dir)
    build = writer.prepare_build(plan, config)
    job = build.jobs[0]
    fn = WriteShardFn(config, plan.audio_root, len(plan.tag_names))
    fn.setup()
    assert list(fn.process(encode_job(job, plan.known_broken))) == [job.name]
    shard = tmp_path / "out" / job.name
    stamp = shard.stat().st_mtime_ns
    assert list(fn.process(encode_job(job, plan.known_broken))) == [job.name]
    assert shard.stat().st_mtime_ns == stamp
    assert files_digest(tmp_path / "out")[job.name] == files_digest(raw_records[0])[job.name]
    index = job.name.replace(".tfrecord", ".framing")  # its framing index, beside it
    assert sorted(os.listdir(tmp_path / "out")) == [".build", index, job.name]


def test_options_reach_the_pipeline_and_unknown_ones_are_errors():
    from tagger.beam.build import pipeline_options

    args = build_flags.parse_args("mtt", [
        "--runner", "direct", "--beam-option", "direct_num_workers=2",
        "--beam-option", "save_main_session",
        "--beam-pipeline-options", "--job_name=mtt --region r1"])
    run = beam_run(args)
    assert run == BeamRun("DirectRunner", ("--direct_num_workers=2", "--save_main_session",
                                           "--job_name=mtt", "--region", "r1"))
    options = pipeline_options(run).get_all_options()
    assert (options["runner"], options["direct_num_workers"], options["job_name"],
            options["region"], options["save_main_session"]) == (
        "DirectRunner", 2, "mtt", "r1", True)
    with pytest.raises(UserError, match="unknown Beam pipeline option --direct_num_worker"):
        pipeline_options(BeamRun("DirectRunner", ("--direct_num_worker=2",)))


@pytest.mark.parametrize("argv,message", [
    (["--runner", "hadoop"], "expected one of direct, dataflow"),
    (["--beam-option", "project=p"], "apply only with --runner"),
    (["--beam-pipeline-options=--project=p"], "apply only with --runner"),
    (["--runner", "direct", "--workers", "2"], "--workers applies to the local builder only"),
    (["--runner", "direct", "--beam-option", "=x"], "expected KEY=VALUE"),
    (["--runner", "direct", "--beam-pipeline-options", "project=p"], "flags like --key"),
    (["--runner", "direct", "--beam-option", "runner=FlinkRunner"], "with --runner, not"),
    (["--runner", "direct", "--beam-option", "temp_locaton=/tmp"], "unknown Beam pipeline"),
    (["--runner", "direct", "--beam-option", "direct_num_workers=bad"],
     "argument --direct_num_workers: invalid int value: 'bad'"),
])
def test_bad_beam_flags_are_one_line_errors(synthetic_mtt, tmp_path, capsys, argv, message):
    try:
        code = build_mtt_command.main(["--data-dir", synthetic_mtt[0], "--out-dir",
                               str(tmp_path / "o"), "--no-progress"] + argv)
    except SystemExit as exit_:  # argparse's own errors
        code = exit_.code
    err = capsys.readouterr().err
    assert code == 2 and message in err and len(err.strip().splitlines()) == 1, err
    assert not (tmp_path / "o").exists()


def test_cli_builds_with_the_direct_runner(synthetic_mtt, raw_records, tmp_path, capsys):
    code = build_mtt_command.main([
        "--data-dir", synthetic_mtt[0], "--out-dir", str(tmp_path / "o"),
        "--num-audios-per-shard", "4", "--no-progress",
        "--runner", "direct", "--beam-option", "direct_num_workers=1"])
    assert code == 0 and "train" in capsys.readouterr().out
    assert files_digest(tmp_path / "o") == files_digest(raw_records[0])


def test_beam_build_refuses_an_out_dir_another_build_writes(synthetic_mtt, tmp_path, capsys):
    """The driver takes the out dir's lock before it touches the out dir: a
    live build's lock and its shard in progress are left as they are."""
    import socket

    from tagger import fileio
    from tests.checks import call_main, one_line_error

    out = tmp_path / "o"
    (out / ".build").mkdir(parents=True)
    lock = json.dumps({"pid": os.getpid(), "host": socket.gethostname(), "started": "now"})
    (out / ".build" / "lock.json").write_text(lock)
    partial = fileio.temporary_path(str(out / "train-0000-of-0002.tfrecord"))
    with open(partial, "wb") as f:
        f.write(b"a shard being written")
    code, _, err = call_main(build_mtt_command.main, capsys, "--data-dir", synthetic_mtt[0],
                             "--top-k", "10", "--out-dir", out, "--no-progress",
                             "--runner", "direct")
    one_line_error(code, err, f"another build (pid {os.getpid()} on ",
                   f"is writing to {str(out)!r}")
    assert sorted(os.listdir(out)) == [".build", os.path.basename(partial)]
    assert (out / ".build" / "lock.json").read_text() == lock
    assert open(partial, "rb").read() == b"a shard being written"


@pytest.mark.slow
def test_local_build_imports_nothing_of_beam(synthetic_mtt, tmp_path):
    assert beam_modules_after("build_mtt", ["--data-dir", synthetic_mtt[0], "--out-dir",
                                            tmp_path / "o", "--workers", "1",
                                            "--no-progress"]) == []
    assert json.loads((tmp_path / "o" / "dataset_info.json").read_text())["splits"]["train"]
