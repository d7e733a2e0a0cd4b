"""Trains a music tagger on records written by build_mtt.py.

    python train.py --data-dir dataset/tfrecord --block rese
    python train.py --data-dir my-records --from MTT_musicnn   # your own tags on its body
"""

from __future__ import annotations

from tagger import cli
from tagger.cli import ArgumentParser
from tagger.commands import semi_supervised_flags
from tagger.commands.train_ranges import BY_KIND, check_last_rate, ranged, say_ranges
from tagger.config import COMBINE_BODIES, HEAD_SETTINGS, MONITORS, SCHEDULES, TrainConfig

DEFAULTS = TrainConfig()  # every flag's default is its TrainConfig field's


def parse_args(argv=None):
    """The parsed flags; `args.given` holds those the command line set."""
    p = ArgumentParser(description=__doc__.splitlines()[0])
    add_data_flags(p)
    add_model_flags(p)
    add_optimisation_flags(p)
    add_hardware_flags(p)
    semi_supervised_flags.add_flags(p)
    add_pretrained_flags(p)
    say_ranges(p)
    return p.parse_args(argv)


def add_data_flags(p):
    data = p.add_argument_group("data and run folder")
    data.add_argument("--data-dir", default=DEFAULTS.data_dir, metavar="PATH",
                      help="folder with dataset_info.json and shards")
    data.add_argument("--train-dir", default=DEFAULTS.train_dir, metavar="PATH",
                      help="where run folders go")
    data.add_argument("--run-name", default=None, metavar="NAME",
                      help="run folder name (default: from the model, e.g. samplecnn-se-multi)")
    data.add_argument("--num-read-threads", type=ranged("num_read_threads"),
                      default=DEFAULTS.num_read_threads, metavar="N",
                      help="shards read in parallel; part of the run's input order")
    data.add_argument("--shuffle-segments", type=ranged("shuffle_segments"),
                      default=DEFAULTS.shuffle_segments, metavar="N",
                      help="segments shuffled together, one block of whole "
                           "batches")
    data.add_argument("--window-segments", type=ranged("window_segments"), default=None,
                      metavar="K",
                      help="segments per input window (default: the family's)")
    for dest, carried in RECORDS_CARRY.items():
        data.add_argument(flag(dest), type=ranged(dest), default=None, metavar="N",
                          help=f"resemul's flag, taken with a note and not used: the records "
                               f"carry {carried} (default: the records')")


# resemul's train.py flags whose values the records carry now: what they carry
RECORDS_CARRY = {
    "num_audios_per_shard": "their clips per shard (dataset_info.json; build_mtt.py "
                            "--num-audios-per-shard sets it)",
    "num_segments_per_audio": "each clip's segments (dataset_info.json; build_mtt.py "
                              "--segment-length cuts them)",
}


def seed_flag_notes(args) -> list:
    """A note for each of resemul's flags given whose value the records
    carry now (`RECORDS_CARRY`), and for --lr-decay beside resemul's
    `--num-lr-decays 1` (one stage: no decay), which resemul took."""
    notes = [f"note: {flag(dest)} {getattr(args, dest)} is resemul's; the records carry "
             f"{carried}, so train.py does not use it"
             for dest, carried in RECORDS_CARRY.items() if dest in (given(args) or ())]
    if ("--num-lr-decays" in getattr(args, "former_names", ()) and args.num_stages == 1
            and "lr_decay" in (given(args) or ())):
        notes.append(f"note: --lr-decay {args.lr_decay} does not apply to one stage "
                     "(--num-lr-decays 1): its rate is --lr's")
    return notes


def add_model_flags(p):
    """--model and the flags of every family, as the specs declare them
    (`tagger.models.family_spec.ModelFlag`); a flag several families take
    is one option whose help names each and its defaults."""
    from tagger.models import FAMILIES, FAMILY_NAMES

    families = "; ".join(f"{spec.name} ({describe_input(spec)})" for spec in FAMILIES.values())
    model = p.add_argument_group("model", f"Model families: {families}.")
    model.add_argument("--model", default=DEFAULTS.model, choices=FAMILY_NAMES,
                       help="model family, one of those above")
    for dest, owners in family_flags().items():
        first = owners[0][1]
        if len({declaration(declared) for _, declared in owners}) > 1:
            raise ValueError(f"the families declare {flag(dest)} differently")
        if first.type == "switch":
            kwargs = {"action": "store_true"}
        else:
            kind = ranged(dest, first.type) if first.type in BY_KIND else None
            kwargs = {"type": kind, "default": first.default,
                      "choices": first.choices, "metavar": first.metavar}
        model.add_argument(flag(dest), help=flag_help(owners), **kwargs)


def declaration(declared) -> tuple:
    """What the families that share a flag declare alike."""
    return declared.type, declared.default, declared.choices, declared.metavar


def family_flags() -> dict:
    """Every family's flags: dest -> [(spec, flag)], in order of first use."""
    from tagger.models import FAMILIES

    flags = {}
    for spec in FAMILIES.values():
        for declared in spec.flags:
            flags.setdefault(declared.dest, []).append((spec, declared))
    return flags


def flag_help(owners) -> str:
    """'fcn / crnn: channel unit; musicnn: back-end channels (default: fcn /
    crnn 64, the others 128)': each family's help, and its defaults."""
    helps = {}
    for spec, declared in owners:
        helps.setdefault(declared.help, []).append(spec.name)
    text = "; ".join(f"{' / '.join(names)}: {words}" for words, names in helps.items())
    if owners[0][1].type == "switch" or "default" in text:
        return text
    defaults = {spec.name: spec.default(declared.keyword) for spec, declared in owners}
    return f"{text} (default: {grouped(defaults)})"


def grouped(values: dict) -> str:
    """Families' values in few words: '0.5', or 'multiscale 0.4, the others 0.5'."""
    groups = {}
    for name, value in values.items():
        groups.setdefault(value, []).append(name)
    if len(groups) == 1:
        return str(next(iter(groups)))
    common = max(groups, key=lambda value: len(groups[value]))
    return ", ".join([f"{' / '.join(names)} {value}" for value, names in groups.items()
                      if value != common] + [f"the others {common}"])


def describe_input(spec) -> str:
    """'10 x 59049 samples at 22050 Hz, 128-bin log-mel': a family's input."""
    pre = spec.preprocessor
    kind = "raw waveform" if pre.raw_waveform else f"{pre.logmel.n_mels}-bin log-mel"
    return f"{pre.segments} x {pre.segment_length} samples at {pre.sample_rate} Hz, {kind}"


def add_optimisation_flags(p):
    opt = p.add_argument_group(
        "optimisation", "The staged schedule takes --optimizer, --lr, --lr-decay, "
        "--num-stages, --patience and --max-epochs-per-stage; the adam_then_sgd "
        "schedule has fixed rates and takes --switch-epochs and --total-epochs. A flag of "
        "the other schedule is an error.")
    opt.add_argument("--quick", action="store_true",
                     help="a small model and few epochs, to try a family in minutes on a "
                          "CPU: the family's demo setting, as demo.py trains it (its model "
                          "arguments and batch size; one Adam stage at its learning rate "
                          "for its epochs; with --schedule adam_then_sgd, that many "
                          "--total-epochs); a flag given beside --quick overrides it")
    opt.add_argument("--batch-size", type=ranged("batch_size"), default=DEFAULTS.batch_size,
                     metavar="N",
                     help="global mini-batch size")
    from tagger.models import FAMILIES

    schedules = grouped({spec.name: spec.schedule for spec in FAMILIES.values()})
    opt.add_argument("--schedule", choices=SCHEDULES, default=None,
                     help="staged: SGD stages of decaying rate, each until the --monitor "
                          "value stops improving (Kim 2018); adam_then_sgd: Adam, then SGD "
                          "at 1e-3, 1e-4, 1e-5 from fixed epochs (Won et al. 2019) "
                          f"(default: {schedules})")
    opt.add_argument("--optimizer", choices=["sgd", "adam"], default=DEFAULTS.optimizer,
                     help="staged: optimizer of every stage (SGD is Nesterov's)")
    opt.add_argument("--momentum", type=ranged("momentum"),
                     default=DEFAULTS.momentum,
                     metavar="M", help="momentum of the SGD stages")
    opt.add_argument("--lr", type=ranged("lr"), default=DEFAULTS.lr, metavar="LR",
                     help="staged: learning rate of stage 0")
    opt.add_argument("--lr-decay", type=ranged("lr_decay"),
                     default=DEFAULTS.lr_decay, metavar="DC",
                     help="staged: learning rate factor per stage")
    opt.add_argument("--num-stages", type=ranged("num_stages"), default=DEFAULTS.num_stages,
                     metavar="N", former=("--num-lr-decays",),
                     help="staged: number of stages, stage k at --lr x --lr-decay^k for "
                          "k = 0..N-1; --num-lr-decays N, resemul's name for it, is the same "
                          "N (its first stage is at --lr, undecayed)")
    opt.add_argument("--initial-stage", type=ranged("initial_stage"),
                     default=DEFAULTS.initial_stage, metavar="N",
                     help="stage to start at, from the best model so far of the run in "
                          "--train-dir/--run-name (one must be there)")
    opt.add_argument("--patience", type=ranged("patience"), default=DEFAULTS.patience,
                     metavar="N",
                     help="staged: epochs without improvement of the --monitor value "
                          "that end a stage")
    opt.add_argument("--monitor", choices=MONITORS, default=DEFAULTS.monitor,
                     help="what early stopping and the best model follow (default: "
                          "val_roc_auc with --distil, against the teachers' tags, the "
                          "figure a student is judged on; else val_loss)")
    opt.add_argument("--max-epochs-per-stage", type=ranged("max_epochs_per_stage"),
                     default=DEFAULTS.max_epochs_per_stage, metavar="N",
                     help="staged: epoch limit of one stage")
    opt.add_argument("--switch-epochs", default=",".join(map(str, DEFAULTS.switch_epochs)),
                     metavar="E1,E2,E3",
                     help="adam_then_sgd: epochs of the Adam->SGD 1e-3->1e-4->1e-5 switches")
    opt.add_argument("--total-epochs", type=ranged("total_epochs"), default=DEFAULTS.total_epochs,
                     metavar="N",
                     help="adam_then_sgd: total epochs")
    opt.add_argument("--steps-per-epoch", type=ranged("steps_per_epoch"), default=None,
                     metavar="N",
                     help="cap on training steps per epoch (default: one pass)")
    opt.add_argument("--validation-steps", type=ranged("validation_steps"), default=None,
                     metavar="N",
                     help="cap on validation batches, the clip the last one cuts read "
                          "to its end (default: the whole split)")
    opt.add_argument("--seed", type=ranged("seed"), default=DEFAULTS.seed, metavar="N",
                     help="seed of the weights and of each epoch's input order")


def add_hardware_flags(p):
    system = p.add_argument_group("hardware")
    cli.add_backend_flag(system)
    system.add_argument("--strategy", default=DEFAULTS.strategy,
                        choices=["auto", "default", "mirrored", "multiworker", "tpu"],
                        help="tf.distribute strategy")
    system.add_argument("--tpu", default=None, metavar="NAME",
                        help="TPU name or grpc:// address, with --strategy auto or tpu "
                             "(default: Colab's TPU when one is reachable)")
    system.add_argument("--mixed-precision", default=DEFAULTS.mixed_precision,
                        choices=["off", "float16", "bfloat16"],
                        help="compute type (a TPU uses bfloat16)")
    system.add_argument("--xla", choices=["auto", "on", "off"], default="auto",
                        help="compile the training steps with XLA: auto (the default) times "
                             "a long run's step both ways once per model and machine and "
                             "keeps the faster; on also compiles evaluation")
    system.add_argument("--jit-compile", action="store_true",
                        help="the same as --xla on (its former name)")
    system.add_argument("--steps-per-execution", type=ranged("steps_per_execution"),
                        default=DEFAULTS.steps_per_execution, metavar="N",
                        help="training steps per tf.function call (TPUs like 50+)")
    system.add_argument("--resume", action="store_true",
                        help="continue the run in --train-dir/--run-name; flags left out "
                             "come from the run, flags given must match it")
    system.add_argument("--drop-damaged-checkpoints", action="store_true",
                        help="with --resume or --initial-stage: a checkpoint of the run "
                             "that is missing or "
                             "damaged is dropped, and the run goes on from the latest good "
                             "one (from the start when none is good)")
    system.add_argument("--no-test", action="store_true",
                        help="skip the final test-split evaluation")
    system.add_argument("--no-progress", action="store_true", help="no progress bars")


def add_pretrained_flags(p):
    settings = DEFAULTS.pretrained
    head = ", ".join(f"--{k.replace('_', '-')} {v:g}" for k, v in HEAD_SETTINGS.items()
                     if k != "optimizer")
    group = p.add_argument_group(
        "your own tags on a trained model (docs/own_tags.md)",
        "--from learns the records' tags on a trained model's body: its embeddings of "
        "each clip, at its own rate and window, are computed once and stored beside the "
        "records, and a head trains on them with Adam in the staged schedule "
        f"({head} unless given). --model, its flags, --quick, --schedule, "
        "--window-segments, --validation-steps, --teacher, --distil, --switch-epochs and "
        "--total-epochs do not apply.")
    group.add_argument("--from", dest="from_model", type=cli.model_name_or_path,
                       action="append", default=None, metavar="MODEL",
                       help="a pretrained name (tagger-pretrained list) or a saved tagger "
                            "whose body learns the records' tags (default: none, a model "
                            "trained from scratch); given again, more bodies of the same "
                            "rate and window (--combine-bodies); 'musicnn-package': its "
                            "four taggers as bodies, the most accurate choice measured")
    group.add_argument("--combine-bodies", choices=COMBINE_BODIES,
                       default=settings.combine_bodies,
                       help="with --from given more than once: 'average', a head on each "
                            "body's embeddings, the tagger's scores their mean; 'join', one "
                            f"head on the bodies' embeddings joined (default: "
                            f"{settings.combine_bodies})")
    group.add_argument("--hold-out-val", action="store_true",
                       help="with --from: keep the val files out of the head's training, "
                            "to stop on their clip loss (up to 100 epochs, --patience); by "
                            "default they train it too, for 20 epochs, the last kept "
                            "(--fine-tune always holds them out)")
    group.add_argument("--head-units", type=ranged("head_units"), default=settings.head_units,
                       metavar="N",
                       help="with --from: units of the head's hidden layer; 0: a linear head")
    group.add_argument("--fine-tune", action="store_true",
                       help="with --from: then train every layer on the records' audio, "
                            "from the head's best (records built at MODEL's sample rate and "
                            "segment length)")
    group.add_argument("--fine-tune-lr", type=ranged("fine_tune_lr"),
                       default=settings.fine_tune_lr, metavar="LR",
                       help="with --fine-tune: its Adam learning rate")
    group.add_argument("--fine-tune-epochs", type=ranged("fine_tune_epochs"),
                       default=settings.fine_tune_epochs, metavar="N",
                       help="with --fine-tune: its epoch limit (--patience ends it earlier)")
    group.add_argument("--suggest", type=ranged("suggest"), default=None, metavar="N",
                       help="with --from: then list the N files of the records' unlabelled "
                            "student split whose labels would help the tagger most (its "
                            "least sure scores, files far apart), printed and written to "
                            "suggested.csv in the run folder, a labels CSV to fill in "
                            "(default: none)")


def main(argv=None):
    return cli.main(run, parse_args(argv))


# Flags that only one schedule, family or setting reads: giving one where
# it does not apply is an error, never silently ignored.
SCHEDULE_FLAGS = {
    "staged": ("optimizer", "lr", "lr_decay", "num_stages", "patience",
               "max_epochs_per_stage"),
    "adam_then_sgd": ("switch_epochs", "total_epochs"),
}
# Destinations whose TrainConfig field has another name.
CONFIG_FIELDS = {"no_test": "evaluate_test", "no_progress": "progress", "distil": "teachers",
                 "hold_out_val": "join_val", "xla": "jit_compile"}
# With --from: flags that only a model trained from scratch reads, the flags
# only --from reads, and those that only its fine-tuning (records' audio) reads.
NOT_WITH_FROM = ("model", "quick", "schedule", "window_segments", "validation_steps",
                 "teacher", "distil", "temperature", "unlabelled_split",
                 "unlabelled_data_dir", "pseudo_label_weight", "rounds")
FROM_FLAGS = ("head_units", "hold_out_val", "fine_tune", "fine_tune_lr", "fine_tune_epochs",
              "suggest", "combine_bodies")
FINE_TUNE_FLAGS = ("fine_tune_lr", "fine_tune_epochs", "augment", "shuffle_segments",
                   "num_read_threads")


def flag(dest: str) -> str:
    return "--" + dest.replace("_", "-")


def given(args) -> frozenset | None:
    """The flags the user set; None when unknown (`args` did not come from
    `parse_args`, e.g. a hand-made Namespace)."""
    return getattr(args, "given", None)


def check_applicable(args, schedule: str, num_stages: int | None = None,
                     resumed: str | None = None, optimizer: str | None = None) -> None:
    """A UserError for any flag given that the chosen schedule, model family
    or strategy would not read. `num_stages`, `optimizer`: the run's where
    they are not `args`'s (a resumed run's own); `resumed`: the folder of
    the run resumed."""
    from tagger.errors import flags_do_not_apply

    chosen = given(args) or frozenset()
    if "drop_damaged_checkpoints" in chosen and not (args.resume or args.initial_stage):
        raise flags_do_not_apply(["--drop-damaged-checkpoints"],
                                 "with --resume or --initial-stage",
                                 "a new run has no checkpoints", "add --resume")
    num_stages = args.num_stages if num_stages is None else num_stages
    resemuls = "--num-lr-decays" in getattr(args, "former_names", ())  # its note: the seed's
    if "lr_decay" in chosen and schedule == "staged" and num_stages == 1 and not resemuls:
        why = ("" if resumed or "num_stages" in chosen else
               ": --from trains its head in one" if from_models(args) else
               ": --quick trains one" if getattr(args, "quick", False) else "")
        run = f"the run in {resumed!r}" if resumed else "this run"
        raise flags_do_not_apply(["--lr-decay"], "to a run of two or more stages",
                                 f"{run} has one stage{why}",
                                 "" if resumed else "give --num-stages 2 or more")
    if check_pretrained(args, chosen):
        return
    for name, flags in SCHEDULE_FLAGS.items():
        wrong = [flag(d) for d in flags if d in chosen and name != schedule]
        if wrong:
            raise flags_do_not_apply(wrong, f"to the {name} schedule",
                                     f"this run uses the {schedule} schedule",
                                     f"pass --schedule {name}")
    if "momentum" in chosen and schedule == "staged" and (optimizer or args.optimizer) == "adam":
        why = (f"the run in {resumed!r} trains with Adam" if optimizer else
               "--quick trains with Adam unless --optimizer sgd is given"
               if getattr(args, "quick", False) and "optimizer" not in chosen else
               "the staged schedule runs --optimizer adam")
        raise flags_do_not_apply(["--momentum"], "to SGD", why, "use --optimizer sgd")
    for dest, owners in sorted(family_flags().items()):
        names = [spec.name for spec, _ in owners]
        if dest in chosen and args.model not in names:
            raise flags_do_not_apply([flag(dest)], f"to --model {' and '.join(names)}",
                                     f"this run uses --model {args.model}")
    if "tpu" in chosen and args.strategy not in ("auto", "tpu"):
        raise flags_do_not_apply(["--tpu"], "to --strategy auto and tpu",
                                 f"this run uses --strategy {args.strategy}",
                                 "use --strategy tpu")


def from_models(args) -> list:
    """The bodies --from names, in order (none without it), a set of bodies
    (`registry.BODY_SETS`) in its place."""
    from tagger.pretrained.registry import BODY_SETS

    names = getattr(args, "from_model", None)
    names = [] if names is None else [names] if isinstance(names, str) else list(names)
    return [body for name in names for body in BODY_SETS.get(name, (name,))]


def check_pretrained(args, chosen) -> bool:
    """Whether the run is --from's (then a UserError for any flag given that
    it would not read); without --from, a UserError for --from's flags."""
    from tagger.errors import flags_do_not_apply

    source = " and ".join(from_models(args)) or None
    if source is None:
        wrong = [flag(d) for d in FROM_FLAGS if d in chosen]
        if wrong:
            raise flags_do_not_apply(wrong, "with --from MODEL",
                                     instead="name the trained model to start from")
        return False
    scratch = NOT_WITH_FROM + tuple(family_flags())
    wrong = [flag(d) for d in scratch if d in chosen]
    if wrong:
        raise flags_do_not_apply(wrong, "to a model trained from scratch",
                                 f"--from trains a head on {source}'s body")
    wrong = [flag(d) for d in SCHEDULE_FLAGS["adam_then_sgd"] if d in chosen]
    if wrong:
        raise flags_do_not_apply(wrong, "to the adam_then_sgd schedule",
                                 "--from trains its head with the staged schedule")
    if "combine_bodies" in chosen and len(from_models(args)) < 2:
        raise flags_do_not_apply(["--combine-bodies"], "with --from given more than once",
                                 "one body has one head",
                                 "give --from again for each further body")
    if not args.fine_tune:
        wrong = [flag(d) for d in FINE_TUNE_FLAGS if d in chosen]
        if wrong:
            raise flags_do_not_apply(wrong, "with --fine-tune", "without it the head "
                                     "trains on stored embeddings, not on the records' audio",
                                     "add --fine-tune")
    if not (args.fine_tune or getattr(args, "hold_out_val", False)):
        wrong = [flag(d) for d in ("monitor", "patience") if d in chosen]
        if wrong:
            raise flags_do_not_apply(wrong, "with --hold-out-val or --fine-tune",
                                     "without them the val files train the head and its "
                                     "last epoch is kept", "add --hold-out-val")
    if args.fine_tune and "suggest" in chosen:
        raise flags_do_not_apply(["--suggest"], "to a head trained on the stored embeddings",
                                 "--fine-tune changes the body, whose stored embeddings it "
                                 "scores", "leave out --fine-tune")
    optimizer = args.optimizer if "optimizer" in chosen else HEAD_SETTINGS["optimizer"]
    if "momentum" in chosen and optimizer != "sgd":
        raise flags_do_not_apply(["--momentum"], "to SGD", "--from trains with Adam "
                                 "unless --optimizer sgd is given", "use --optimizer sgd")
    if "tpu" in chosen and args.strategy not in ("auto", "tpu"):
        raise flags_do_not_apply(["--tpu"], "to --strategy auto and tpu",
                                 f"this run uses --strategy {args.strategy}",
                                 "use --strategy tpu")
    return True


def pretrained_setting(args) -> None:
    """--from: sets on `args` the head's settings (`config.head_settings`)
    where no flag was given."""
    from tagger.config import PretrainedConfig, head_settings

    chosen = given(args) or frozenset()
    joins_val = PretrainedConfig(join_val=not getattr(args, "hold_out_val", False),
                                 fine_tune=args.fine_tune).joins_val
    for dest, value in head_settings(joins_val).items():
        if dest not in chosen:
            setattr(args, dest, value)


def xla_setting(args):
    """TrainConfig.jit_compile of --xla and its former form --jit-compile
    (True, False or "auto"); the two given with different values is a
    UserError."""
    from tagger.errors import UserError

    if args.jit_compile:
        if "xla" in (given(args) or ()) and args.xla != "on":
            raise UserError(f"--jit-compile is --xla on, but --xla {args.xla} is given too; "
                            "give one of them")
        return True
    return {"auto": "auto", "on": True, "off": False}[args.xla]


def config_from_args(args, check: bool = True):
    """The TrainConfig of the flags; `check`: refuse flags that do not apply
    (a resumed run checks them against its saved schedule instead)."""
    from tagger.config import TrainConfig
    from tagger.errors import UserError
    from tagger.training.model_setup import family_spec

    spec = family_spec(args.model)
    model_args = spec.model_args(args)
    quick = getattr(args, "quick", False)
    source = from_models(args) or None
    # --quick trains as demo.py does: one Adam stage (unless --schedule is given)
    schedule = args.schedule or ("staged" if quick or source else spec.schedule)
    if quick:
        model_args = quick_setting(args, spec, schedule, model_args)
    if source is not None:
        pretrained_setting(args)
    if check:  # on the settings the run uses: --quick's and --from's included
        check_applicable(args, schedule)
    if check and schedule == "staged":
        unused = check_last_rate(args.lr, args.lr_decay, args.num_stages)
        if unused:
            raise UserError(unused)
    try:
        switch = tuple(int(e) for e in args.switch_epochs.split(","))
    except ValueError:
        raise UserError(f"--switch-epochs takes comma-separated integers, got "
                        f"{args.switch_epochs!r}") from None
    if (schedule == "adam_then_sgd" and "switch_epochs" not in (given(args) or ())
            and args.total_epochs != DEFAULTS.total_epochs):
        from tagger.training.schedule import scaled_switch_epochs

        try:  # the paper's switches (80, 100, 120 of 200) scaled to --total-epochs
            switch = scaled_switch_epochs(args.total_epochs, DEFAULTS.switch_epochs,
                                          DEFAULTS.total_epochs)
        except ValueError as error:
            raise UserError(str(error)) from None
    try:
        return TrainConfig(
            data_dir=args.data_dir, train_dir=args.train_dir, run_name=args.run_name,
            model=args.model, model_args=model_args, window_segments=args.window_segments,
            batch_size=args.batch_size, schedule=schedule, optimizer=args.optimizer,
            momentum=args.momentum, lr=args.lr, lr_decay=args.lr_decay,
            num_stages=args.num_stages, initial_stage=args.initial_stage,
            patience=args.patience, monitor=args.monitor,
            max_epochs_per_stage=args.max_epochs_per_stage,
            switch_epochs=switch, total_epochs=args.total_epochs,
            steps_per_epoch=args.steps_per_epoch, validation_steps=args.validation_steps,
            shuffle_segments=args.shuffle_segments, num_read_threads=args.num_read_threads,
            strategy=args.strategy, tpu=args.tpu, mixed_precision=args.mixed_precision,
            jit_compile=xla_setting(args), steps_per_execution=args.steps_per_execution,
            resume=args.resume, seed=args.seed, evaluate_test=not args.no_test,
            drop_damaged_checkpoints=getattr(args, "drop_damaged_checkpoints", False),
            progress=not args.no_progress, augment=args.augment,
            noisy_student=semi_supervised_flags.settings(args),
            distillation=semi_supervised_flags.distillation(args),
            pretrained=pretrained_config(args))
    except ValueError as error:
        raise UserError(str(error)) from None


def pretrained_config(args):
    """The PretrainedConfig of the --from flags."""
    from tagger.config import PretrainedConfig

    names = from_models(args)
    if not names:
        return PretrainedConfig()
    return PretrainedConfig(from_model=names[0], also_from=tuple(names[1:]),
                            combine_bodies=args.combine_bodies,
                            join_val=not getattr(args, "hold_out_val", False),
                            head_units=args.head_units,
                            fine_tune=args.fine_tune, fine_tune_lr=args.fine_tune_lr,
                            fine_tune_epochs=args.fine_tune_epochs)


def quick_setting(args, spec, schedule: str, model_args: dict) -> dict:
    """--quick: sets on `args` the family's demo preset (`spec.demo`, what
    demo.py trains) where no flag was given: batch size; staged (--quick's
    schedule unless --schedule is given): one Adam stage at the preset's lr,
    its epochs the stage's limit and patience; adam_then_sgd: its epochs as
    --total-epochs (the switch epochs scale with them). Returns `model_args`
    with the preset's model arguments in place of those no flag set."""
    preset_args, settings = quick_values(args, spec, schedule)
    for dest, value in settings.items():
        setattr(args, dest, value)
    return {**model_args, **preset_args}


def quick_values(args, spec, schedule: str) -> tuple:
    """What --quick sets where no flag was given: (model arguments, {dest:
    value} of the other flags), the family's demo preset for `schedule`."""
    chosen = given(args) or frozenset()
    preset = spec.demo
    dests = {f.keyword: f.dest for f in spec.flags}
    settings = {"batch_size": preset.batch_size}
    if schedule == "staged":
        settings.update(optimizer="adam", lr=preset.lr, num_stages=1,
                        max_epochs_per_stage=preset.epochs, patience=preset.epochs)
    else:
        settings.update(total_epochs=preset.epochs)
    return ({key: value for key, value in preset.model_args.items()
             if dests.get(key) not in chosen},
            {dest: value for dest, value in settings.items() if dest not in chosen})


def check_quick_resumed(args, config, run_dir: str) -> None:
    """--quick with --resume: what --quick sets where no flag was typed is
    compared with the run continued, as any setting given with --resume is
    (`resume_settings`); a difference is a UserError naming each."""
    import json

    from tagger.errors import UserError
    from tagger.training.model_setup import family_spec
    from tagger.training.run import flag_name

    def text(value):
        return json.dumps(value, sort_keys=True)

    preset_args, settings = quick_values(args, family_spec(config.model), config.schedule)
    differences = [(key, value, config.model_args.get(key))
                   for key, value in preset_args.items()]
    differences += [(flag_name(dest)[2:], value, getattr(config, dest))
                    for dest, value in settings.items()]
    differences = [d for d in differences if text(d[1]) != text(d[2])]
    if differences:
        shown = "; ".join(f"{name} {quick} where it has {saved}"
                          for name, quick, saved in differences[:3])
        raise UserError(f"--quick sets what the run in {run_dir!r} was not started with "
                        f"({shown}); resume with the flags it was started with, or leave "
                        "--quick out (a resumed run keeps its own settings)")


def given_fields(args) -> set | None:
    """The TrainConfig fields and model arguments the user set (None:
    unknown, all count); with --resume, the others come from the saved run."""
    from tagger.training.model_setup import family_spec

    chosen = given(args)
    if chosen is None:
        return None
    arguments = {f.dest: f.keyword for f in family_spec(args.model).flags}
    fields = {CONFIG_FIELDS.get(dest, arguments.get(dest, dest)) for dest in chosen}
    if "from_model" in fields:  # every --from: the first body and the others
        fields.add("also_from")
    return fields


def run(args):
    from tagger.training.rounds import train_rounds
    from tagger.training.run import resume_settings, run_dir_of, saved_config

    config = config_from_args(args, check=not args.resume)
    for note in seed_flag_notes(args):
        print(note, flush=True)
    saved = saved_config(config) if config.resume else None
    if config.resume:
        chosen = given(args) or ()
        check_applicable(args, saved.schedule if saved and "schedule" not in chosen
                         else config.schedule,
                         saved.num_stages if saved and "num_stages" not in chosen else None,
                         run_dir_of(config) if saved else None,
                         saved.optimizer if saved and "optimizer" not in chosen else None)
        config = resume_settings(config, given_fields(args))
    if saved and getattr(args, "quick", False):
        check_quick_resumed(args, config, run_dir_of(config))
    if config.pretrained.from_model:
        settings = config.pretrained
        bodies = (settings.from_model, *settings.also_from)
        averaged = len(bodies) > 1 and settings.combine_bodies == "average"
        print(f"--from {' and '.join(bodies)}: "
              + ("a head on each body's embeddings, their scores averaged, each "
                 if averaged else "")
              + (f"a head of {settings.head_units} hidden units" if settings.head_units
                 else "a linear head")
              + ("" if averaged else " on its embeddings")
              + f", {config.optimizer} lr {config.lr:g}, batch "
              f"{config.batch_size}, "
              + (f"{config.max_epochs_per_stage} epochs on the train and val files, the "
                 "last kept" if settings.joins_val else
                 f"up to {config.max_epochs_per_stage} epochs (patience {config.patience})")
              + (f"; then every layer, Adam lr {settings.fine_tune_lr:g}, up to "
                 f"{settings.fine_tune_epochs} epochs" if settings.fine_tune else ""),
              flush=True)
    if getattr(args, "quick", False) and not saved:  # a resumed run's are its own
        print(f"--quick: {config.model} {config.model_args}, batch {config.batch_size}, "
              + (f"Adam lr {config.lr:g}, up to {config.max_epochs_per_stage} epochs"
                 if config.schedule == "staged" else
                 f"adam_then_sgd schedule, {config.total_epochs} epochs")
              + " (the family's demo setting; flags given beside --quick override it)",
              flush=True)
    if (config.schedule == "adam_then_sgd" and "switch_epochs" not in (given(args) or ())
            and config.total_epochs != DEFAULTS.total_epochs):
        switches = ",".join(map(str, config.switch_epochs))
        print(f"adam_then_sgd schedule: switch epochs {switches} of {config.total_epochs} "
              "(the paper's 80,100,120 of 200, scaled; --switch-epochs sets them)", flush=True)
    if getattr(args, "suggest", None):
        from tagger.records.info import load_info
        from tagger.training.suggest import require_unlabelled

        require_unlabelled(config.data_dir, load_info(config.data_dir))
    metrics = train_rounds(config, semi_supervised_flags.rounds(args),
                           log=lambda line: print(line, flush=True))
    print(f"run folder: {metrics['run_dir']}")
    if getattr(args, "suggest", None) and chief_worker(config):
        suggest(config, metrics["run_dir"], args.suggest)


def chief_worker(config) -> bool:
    """Whether this process is the run's chief, the worker that saved its
    model (every process but the other workers of a multiworker run), as
    the run's backend says (`for_run` gives the one the run made)."""
    from tagger.training.backend import for_run

    return for_run(config.strategy, config.tpu).chief


def suggest(config, run_dir: str, count: int) -> None:
    """--suggest N: the files to label next, one a line, and where they are."""
    from tagger import fileio
    from tagger.config import join_path
    from tagger.training.suggest import SUGGESTED_FILE, suggest_files

    paths = suggest_files(run_dir, config, count, log=lambda line: print(line, flush=True))
    more = f" (all the {len(paths)} unlabelled)" if len(paths) < count else ""
    print(f"{len(paths)} file(s) to label next{more}, the most useful first; their tags go "
          f"in {join_path(run_dir, SUGGESTED_FILE)}, then its rows in the labels CSV:")
    for path in paths:
        print(fileio.path_text(path))


if __name__ == "__main__":
    raise SystemExit(main())
