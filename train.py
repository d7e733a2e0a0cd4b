"""Trains a music tagger on records written by build_mtt.py.

    python train.py --data-dir dataset/tfrecord --block rese
"""

from __future__ import annotations

from tagger import cli
from tagger.cli import ArgumentParser
from tagger.config import MONITORS
from tagger.training import semi_supervised_cli


def parse_args(argv=None):
    p = ArgumentParser(description=__doc__.splitlines()[0])
    data = p.add_argument_group("data and run folder")
    data.add_argument("--data-dir", default="./dataset/tfrecord", metavar="PATH",
                      help="folder with dataset_info.json and shards")
    data.add_argument("--train-dir", default="./log", metavar="PATH",
                      help="where run folders go (default: ./log)")
    data.add_argument("--run-name", default=None,
                      help="run folder name (default: from the model, e.g. samplecnn-se-multi)")
    data.add_argument("--num-read-threads", type=int, default=8, metavar="N",
                      help="shards read in parallel (default: 8)")
    data.add_argument("--shuffle-segments", type=int, default=1000, metavar="N",
                      help="shuffle buffer in segments (default: 1000)")
    data.add_argument("--window-segments", type=int, default=None, metavar="K",
                      help="segments per input window (default: the family's)")

    model = p.add_argument_group("model")
    model.add_argument("--model", default="samplecnn",
                       choices=["samplecnn", "multiscale", "self_attention", "transformer"],
                       help="model family (default: samplecnn)")
    model.add_argument("--block", default="se", choices=["se", "rese", "res", "basic"],
                       help="samplecnn: block type (default: se)")
    model.add_argument("--no-multi", action="store_true",
                       help="samplecnn: disable multi-level feature aggregation")
    model.add_argument("--alpha", type=int, default=16, metavar="A",
                       help="samplecnn: amplifying ratio of SE blocks (default: 16)")
    model.add_argument("--width", type=float, default=1.0,
                       help="samplecnn: channel width multiplier (default: 1.0 = the paper)")
    model.add_argument("--dropout", type=float, default=None, metavar="DO",
                       help="dropout before the output (default: the family's; "
                            "samplecnn 0.5, multiscale 0.4)")
    model.add_argument("--weight-decay", type=float, default=0.0, metavar="WD",
                       help="samplecnn: L2 weight decay on conv kernels (default: 0)")
    model.add_argument("--conv-channels", type=int, default=None,
                       help="self_attention: front-end channel unit c (default: 16)")
    model.add_argument("--attention-channels", type=int, default=None,
                       help="self_attention: encoder width (default: 512)")
    model.add_argument("--attention-layers", type=int, default=None,
                       help="self_attention / transformer: encoder layers (default: 2 / 4)")
    model.add_argument("--attention-heads", type=int, default=None,
                       help="self_attention / transformer: heads (default: 8)")
    model.add_argument("--size", choices=["teacher", "student"], default=None,
                       help="transformer: teacher (attention width 256) or student (64)")
    model.add_argument("--conv-ndim", type=int, default=None,
                       help="transformer: front-end channels (default: 128)")
    model.add_argument("--attention-ndim", type=int, default=None,
                       help="transformer: encoder width (overrides --size)")

    opt = p.add_argument_group("optimisation")
    opt.add_argument("--batch-size", type=int, default=23, metavar="N",
                     help="global mini-batch size (default: 23)")
    opt.add_argument("--schedule", choices=["staged", "won"], default=None,
                     help="staged SGD decay (Kim 2018; samplecnn's default) or "
                          "Adam->SGD (Won 2019; the spectrogram families' default)")
    opt.add_argument("--optimizer", choices=["sgd", "adam"], default="sgd",
                     help="optimizer of the staged schedule (default: sgd, Nesterov)")
    opt.add_argument("--momentum", type=float, default=0.9, metavar="M")
    opt.add_argument("--lr", type=float, default=0.01, metavar="LR",
                     help="learning rate of stage 0 (default: 0.01)")
    opt.add_argument("--lr-decay", type=float, default=0.2, metavar="DC",
                     help="learning rate factor per stage (default: 0.2)")
    opt.add_argument("--num-lr-decays", type=int, default=5, metavar="N",
                     help="number of stages (default: 5)")
    opt.add_argument("--initial-stage", type=int, default=0, metavar="N",
                     help="stage to start at, from the run's best model so far")
    opt.add_argument("--patience", type=int, default=2, metavar="N",
                     help="epochs without val-loss improvement that end a stage")
    opt.add_argument("--monitor", choices=MONITORS, default="val_loss",
                     help="what early stopping and the best model follow (default: val_loss)")
    opt.add_argument("--max-epochs-per-stage", type=int, default=100, metavar="N")
    opt.add_argument("--switch-epochs", default="80,100,120",
                     help="won schedule: epochs of the Adam->SGD 1e-3->1e-4->1e-5 switches")
    opt.add_argument("--total-epochs", type=int, default=200,
                     help="won schedule: total epochs (default: 200)")
    opt.add_argument("--steps-per-epoch", type=int, default=None, metavar="N",
                     help="cap on training steps per epoch (default: one pass)")
    opt.add_argument("--validation-steps", type=int, default=None, metavar="N",
                     help="cap on validation batches (default: the whole split)")
    opt.add_argument("--seed", type=int, default=0)

    system = p.add_argument_group("hardware")
    system.add_argument("--strategy", default="auto",
                        choices=["auto", "default", "mirrored", "multiworker", "tpu"],
                        help="tf.distribute strategy (default: auto)")
    system.add_argument("--tpu", default=None, help="TPU name or grpc:// address")
    system.add_argument("--mixed-precision", default="off",
                        choices=["off", "float16", "bfloat16"],
                        help="compute type (default: off; a TPU uses bfloat16)")
    system.add_argument("--jit-compile", action="store_true", help="compile steps with XLA")
    system.add_argument("--steps-per-execution", type=int, default=1, metavar="N",
                        help="training steps per tf.function call (TPUs like 50+)")
    system.add_argument("--resume", action="store_true",
                        help="continue the run in --train-dir/--run-name")
    system.add_argument("--no-test", action="store_true",
                        help="skip the final test-split evaluation")
    system.add_argument("--no-progress", action="store_true", help="no progress bars")
    semi_supervised_cli.add_flags(p)
    return p.parse_args(argv)


def main(argv=None):
    return cli.main(run, parse_args(argv))


def config_from_args(args):
    from tagger.config import TrainConfig
    from tagger.errors import UserError

    from tagger.training.model_setup import family_defaults

    model_args = model_args_from(args)
    schedule = args.schedule or family_defaults(args.model).schedule
    try:
        switch = tuple(int(e) for e in args.switch_epochs.split(","))
    except ValueError:
        raise UserError(f"--switch-epochs takes comma-separated integers, got "
                        f"{args.switch_epochs!r}") from None
    try:
        return TrainConfig(
            data_dir=args.data_dir, train_dir=args.train_dir, run_name=args.run_name,
            model=args.model, model_args=model_args, window_segments=args.window_segments,
            batch_size=args.batch_size, schedule=schedule, optimizer=args.optimizer,
            momentum=args.momentum, lr=args.lr, lr_decay=args.lr_decay,
            num_lr_decays=args.num_lr_decays, initial_stage=args.initial_stage,
            patience=args.patience, monitor=args.monitor,
            max_epochs_per_stage=args.max_epochs_per_stage,
            switch_epochs=switch, total_epochs=args.total_epochs,
            steps_per_epoch=args.steps_per_epoch, validation_steps=args.validation_steps,
            shuffle_segments=args.shuffle_segments, num_read_threads=args.num_read_threads,
            strategy=args.strategy, tpu=args.tpu, mixed_precision=args.mixed_precision,
            jit_compile=args.jit_compile, steps_per_execution=args.steps_per_execution,
            resume=args.resume, seed=args.seed, evaluate_test=not args.no_test,
            progress=not args.no_progress, augment=args.augment,
            noisy_student=semi_supervised_cli.settings(args))
    except ValueError as error:
        raise UserError(str(error)) from None


FAMILY_FLAGS = {
    "samplecnn": ("dropout",),
    "multiscale": ("dropout",),
    "self_attention": ("conv_channels", "attention_channels", "attention_layers",
                       "attention_heads"),
    "transformer": ("size", "conv_ndim", "attention_ndim", "attention_layers",
                    "attention_heads"),
}


def model_args_from(args) -> dict:
    """The factory arguments the user set for the chosen family."""
    model_args = {}
    if args.model == "samplecnn":
        model_args = {"block": args.block, "multi": not args.no_multi,
                      "alpha": args.alpha, "width": args.width,
                      "weight_decay": args.weight_decay}
    for name in FAMILY_FLAGS[args.model]:
        value = getattr(args, name)
        if value is not None:
            model_args[name] = value
    return model_args


def run(args):
    config = config_from_args(args)
    metrics = semi_supervised_cli.train_rounds(config, semi_supervised_cli.rounds(args))
    print(f"run folder: {metrics['run_dir']}")


if __name__ == "__main__":
    raise SystemExit(main())
