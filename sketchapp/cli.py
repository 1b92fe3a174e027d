"""Command-line front end: drives the same core iterators as the GUI.

Exit codes: 0 success, 1 bad input (one-line message, never a traceback), 2 usage
error, 130 interrupted.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import sys
import time
from pathlib import Path
from typing import Any, TextIO

from sketchapp import __version__
from sketchapp.cli_train import add_parsers as add_training_parsers
from sketchapp.cli_train import run_data, run_evaluate, run_train, run_upscaler

EXIT_OK, EXIT_INPUT, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130
MAX_RESULT_SIDE = 4096  # core.upscale.MAX_SIDE, named here so --help needs no torch


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="sketchapp",
        description="Turn freehand sketches into coloured images with GANs. "
        "Run without arguments to open the desktop app.",
    )
    parser.add_argument("--version", action="version", version=f"sketchapp {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    complete = sub.add_parser(
        "complete",
        help="complete a sketch into a coloured picture with a preset's model",
        description="Complete SKETCH into a coloured picture. Writes the best result to OUT and, when there "
        "are several candidates, each beside it as OUT-1, OUT-2, ... (a missing output folder is made). Several "
        "sketches or a folder are completed in one process with one model load; a file that fails is reported "
        "in one line and the others go on (exit status 1 if any failed).",
    )
    complete.add_argument("sketch", nargs="+", metavar="SKETCH",
                          help="sketch image (PNG, JPEG, WebP, BMP, SVG); several, or a folder of them, make a batch")
    complete.add_argument("-o", "--output", required=True, metavar="OUT",
                          help="result file (.png, .jpg, .webp, or .ora for layers Krita, GIMP and MyPaint open); for a "
                          "batch, a folder (made if missing) that gets NAME.png for each sketch NAME")
    source = complete.add_mutually_exclusive_group()
    source.add_argument("--preset", metavar="NAME", help="style preset (see 'sketchapp presets'; default: the app's default preset)")
    source.add_argument("--model", metavar="FILE", help="model checkpoint (.safetensors)")
    complete.add_argument("--candidates", type=_positive, metavar="K",
                          help="how many results (default: the preset's, 1 for pix2pix and 4 for the Contextual GAN presets; "
                          "8 for a model file of the Contextual GAN)")
    complete.add_argument("--iterations", type=_non_negative, metavar="N", help="optimisation steps at most (default: the preset's; "
                          "with --hints, up to its hint_iterations if that is more)")
    complete.add_argument("--seed", type=_seed, help="random seed (printed and stored in the PNG)")
    complete.add_argument("--start", choices=("auto", "random", "encoder"), help="how candidates start")
    complete.add_argument("--contextual", choices=("kl", "l1"), help="contextual loss on the sketch")
    complete.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N or mps (default auto)")
    complete.add_argument("--threads", type=_threads, help="CPU threads (default: all available)")
    complete.add_argument("--hints", metavar="HINTS.png", help="RGBA colour hints over the sketch")
    complete.add_argument("--size", type=_positive, metavar="PX",
                          help=f"side of the result in pixels, up to {MAX_RESULT_SIDE}: larger than the model's own is "
                          "enlarged by the learned x4 upscaler, the same for every preset (default: the model's own size)")
    complete.add_argument("--ink-lines", action=argparse.BooleanOptionalAction,
                          help="draw the sketch's own lines over the results, at the result's size "
                          "(default: the preset's setting; off for --model)")
    complete.add_argument("--match-line-width", action=argparse.BooleanOptionalAction,
                          help="thicken lines thinner than the model's training sketches' before completing "
                          "(default: on, or the preset's setting)")
    complete.add_argument("--style-reference", metavar="PICTURE",
                          help="a picture whose colours and textures the result should take (Gatys et al.'s style loss)")
    complete.add_argument("--style-strength", type=float, metavar="X", help="style against content (default 1)")
    complete.add_argument("--style-steps", type=_positive, metavar="N", help="optimisation steps of the style (default 150)")
    complete.add_argument("--vgg19", metavar="WEIGHTS",
                          help="style features from a VGG-19 weights file you have (torchvision's vgg19 state dict) "
                          "instead of the preset's own discriminator")
    complete.add_argument("--frames", metavar="DIR", help="save intermediate completions here")
    complete.add_argument("--frame-every", type=_positive, default=10, metavar="N", help="frame interval (default 10)")
    complete.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    complete.set_defaults(usage_error=complete.error)

    sub.add_parser("presets", help="list bundled and user presets")
    desktop = sub.add_parser(
        "desktop",
        help="add SketchApp to the desktop's launcher, with its icon and document type",
        description="install: copy the launcher entry (run as this installation's sketchapp), "
        "icons, AppStream metainfo and the .sketchapp document type into $XDG_DATA_HOME "
        "(default ~/.local/share). uninstall: remove exactly those files.",
    )
    desktop.add_argument("action", choices=("install", "uninstall"))
    add_training_parsers(sub, _positive, _non_negative, _seed, _threads)
    return parser


def _positive(text: str) -> int:
    value = _integer(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def _non_negative(text: str) -> int:
    value = _integer(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more, got {value}")
    return value


def _seed(text: str) -> int:
    value = _non_negative(text)
    if value >= 2**63:
        raise argparse.ArgumentTypeError(f"must be below 2**63, got {value}")
    return value


def _threads(text: str) -> int:
    value = _positive(text)
    if value > 1024:
        raise argparse.ArgumentTypeError(f"at most 1024 threads, got {value}")
    return value


def _integer(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None


def _file_to_open(argv: list[str], parser: argparse.ArgumentParser) -> str | None:
    """``sketchapp FILE`` (a launcher or file manager opening a drawing): the file, else None."""
    if len(argv) != 1 or argv[0].startswith("-"):
        return None
    commands = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction)).choices  # noqa: SLF001
    candidate = argv[0]
    if candidate in commands:
        return None
    return candidate if candidate.lower().endswith(".sketchapp") or Path(candidate).is_file() else None


def main(argv: list[str]) -> int:
    parser = build_parser()
    to_open = _file_to_open(argv, parser)
    if not argv or to_open is not None:
        from sketchapp.display import display_problem

        problem = display_problem()
        if problem is not None:  # Qt would abort with a message that does not say what to install
            print(f"sketchapp: {problem}", file=sys.stderr)
            return EXIT_INPUT
        from sketchapp.app import run

        return run(sys.argv[:1], to_open)
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return EXIT_USAGE
    from sketchapp.core.errors import SketchAppError

    try:
        if args.command == "complete":
            return _complete(args)
        if args.command == "data":
            return run_data(args)
        if args.command == "train":
            return run_train(args)
        if args.command == "evaluate":
            return run_evaluate(args)
        if args.command == "upscaler":
            return run_upscaler(args)
        if args.command == "desktop":
            from sketchapp.identity import desktop_command

            return desktop_command(args.action)
        return _presets()
    except SketchAppError as exc:
        print(f"sketchapp: error: {_one_line(str(exc))}", file=sys.stderr)
        return EXIT_INPUT
    except OSError as exc:  # the machine's, not the input's: still one line, never a traceback
        where = f"{exc.filename}: " if getattr(exc, "filename", None) else ""
        print(f"sketchapp: error: {_one_line(where + (exc.strerror or str(exc)))}", file=sys.stderr)
        return EXIT_INPUT
    except MemoryError:
        print("sketchapp: error: out of memory", file=sys.stderr)
        return EXIT_INPUT
    except KeyboardInterrupt:
        print("\nsketchapp: cancelled", file=sys.stderr)
        return EXIT_INTERRUPTED


def _one_line(text: str) -> str:
    """A message as one printable line: names from files cannot break it or steer the terminal."""
    from sketchapp.core.fileio import printable

    return printable(" ".join(text.splitlines()))[:1000]


def _presets() -> int:
    from sketchapp.core.presets import installed_presets, summarised

    presets, problems = installed_presets()
    if not presets:
        print("No presets installed.")
    for p in presets:
        print(f"{p.id:<20} {p.name:<24} engine={p.engine:<10} style={p.sketch_style:<12} [{p.source}] {p.model}")
    for problem in summarised(problems):
        print(f"sketchapp: warning: {problem}", file=sys.stderr)
    return EXIT_OK


def _complete(args: argparse.Namespace) -> int:
    from sketchapp.core.errors import ImageSaveError
    from sketchapp.core.images import SAVE_FORMATS, load_image

    output = Path(args.output)
    if args.size is not None and args.size > MAX_RESULT_SIDE:
        args.usage_error(f"--size is at most {MAX_RESULT_SIDE} pixels")
    batch = len(args.sketch) > 1 or Path(args.sketch[0]).is_dir()
    if batch:
        if args.frames:
            args.usage_error("--frames takes one sketch, not a batch")
        jobs = _batch_jobs(args.sketch, output)
    else:
        if output.suffix.lower() not in SAVE_FORMATS and output.suffix.lower() != ".ora":
            args.usage_error(f"output {output.name!r} needs an image extension ({', '.join(sorted(SAVE_FORMATS))}) or .ora")
        jobs = [(Path(args.sketch[0]), output)]
    hints = load_image(args.hints, mode="RGBA") if args.hints else None
    if (args.vgg19 or args.style_strength is not None or args.style_steps) and not args.style_reference:
        args.usage_error("--vgg19, --style-strength and --style-steps go with --style-reference")
    reference = load_image(args.style_reference, mode="RGB", max_side=4096) if args.style_reference else None
    folder = output if batch else output.parent
    if not folder.is_dir():
        try:
            folder.mkdir(parents=True)
        except OSError as exc:
            raise ImageSaveError(f"{folder}: cannot make the output folder ({exc.strerror or exc})") from exc
    if not batch:
        sketch = load_image(args.sketch[0], mode="RGB")  # a bad sketch is refused before the model loads
        _check_output(output, [args.sketch[0], args.hints, args.style_reference])

    from sketchapp.core.device import configure_cpu_threads, select_device
    from sketchapp.core.engines import engine_settings, open_engine
    from sketchapp.core.presets import DEFAULT_PRESET, find_preset, installed_presets

    settings = None
    label = args.model
    model_path = args.model
    if not args.model and not args.preset:  # the app's default preset, as the window starts with
        args.preset = DEFAULT_PRESET
    if args.preset:
        preset = find_preset(args.preset, installed_presets()[0])
        settings, model_path, label = preset.settings, preset.model, preset.id
    device = select_device(args.device)
    threads = configure_cpu_threads(args.threads)
    engine = open_engine(model_path, device)
    settings = engine_settings(engine.kind, settings, label)
    seed = args.seed if args.seed is not None else secrets.randbelow(2**31)
    settings = settings.updated(
        candidates=args.candidates,
        iterations=args.iterations,
        hint_iterations=args.iterations,  # a count given here is the count, hints or not
        start=args.start,
        contextual=args.contextual,
        seed=seed,
        ink_lines=args.ink_lines,
        match_line_width=args.match_line_width,
    )
    if engine.capabilities.latents and not batch:
        engine.warm_up(settings)  # a search runs hundreds of passes; one picture is not worth building kernels twice
    side = args.size or engine.model.size
    upscaler = None
    where = f"{device.type}" + (f", {threads} threads" if device.type == "cpu" else "")
    if side > engine.model.size:
        from sketchapp.core.upscale import bundled_upscaler

        upscaler = bundled_upscaler()
    run = _Completion(engine, settings, label, seed, hints, reference, args, side, upscaler)
    if not batch:
        progress = _Progress(sys.stderr, getattr(settings, "iterations", 1), quiet=args.quiet)
        progress.note(f"completing {Path(args.sketch[0]).name} with {label} on {where}, seed {seed}")
        if upscaler is not None or side > engine.model.size:
            progress.note(f"enlarging to {side} px with {'the x4 upscaler' if upscaler else 'Lanczos (no upscaler installed)'}")
        run.one(sketch, output, progress)
        return EXIT_OK
    from sketchapp.core.errors import SketchAppError
    from sketchapp.progress import Bar

    if not args.quiet:
        print(f"completing {len(jobs)} sketches into {output} with {label} on {where}, seed {seed}", file=sys.stderr)
    bar = Bar("completing", len(jobs), unit="sketch", quiet=args.quiet)
    failed = 0
    for index, (sketch_path, target) in enumerate(jobs):
        try:
            _check_output(target, [sketch_path, args.hints, args.style_reference])
            run.one(load_image(sketch_path, mode="RGB"), target, None)
        except SketchAppError as exc:
            failed += 1
            bar.note(f"sketchapp: error: {_one_line(str(exc))}")
        except OSError as exc:
            failed += 1
            bar.note(f"sketchapp: error: {_one_line(f'{sketch_path.name}: ' + (exc.strerror or str(exc)))}")
        bar.to(index + 1, len(jobs), case=sketch_path.name)
    bar.close()
    if not args.quiet or failed:
        print(f"completed {len(jobs) - failed} of {len(jobs)} sketches into {output}", file=sys.stderr)
    return EXIT_INPUT if failed else EXIT_OK


def _batch_jobs(given: list[str], folder: Path) -> list[tuple[Path, Path]]:
    """(sketch, result file) for every sketch named or in a folder named (its pictures, not its subfolders):
    ``folder/NAME.png``, with ``-2``, ``-3`` ... where two sketches share a name."""
    from sketchapp.core.data.datasets import IMAGE_SUFFIXES
    from sketchapp.core.errors import ImageLoadError, ImageSaveError

    if folder.exists() and not folder.is_dir():
        raise ImageSaveError(f"{folder}: a batch is written into a folder, and this is a file")
    sketches: list[Path] = []
    for name in given:
        path = Path(name)
        if path.is_dir():
            found = sorted(p for p in path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file() and not p.name.startswith("."))
            if not found:
                raise ImageLoadError(f"{path}: no pictures in this folder")
            sketches += found
        else:
            sketches.append(path)
    jobs, taken = [], set()
    for sketch in sketches:
        stem, count = sketch.stem, 1
        while f"{stem}.png" in taken:
            count += 1
            stem = f"{sketch.stem}-{count}"
        taken.add(f"{stem}.png")
        jobs.append((sketch, folder / f"{stem}.png"))
    return jobs


def _check_output(output: Path, inputs: list[object]) -> None:
    """Refuse a result path that is a folder or one of the inputs (also through links)."""
    from sketchapp.core.errors import ImageSaveError

    if output.is_dir():
        raise ImageSaveError(f"{output}: is a folder; give a file name for the result")
    for given in inputs:
        if given and output.exists() and os.path.samefile(output, str(given)):
            raise ImageSaveError(f"{output}: is one of the inputs ({Path(str(given)).name}); give another name for the result")


class _Completion:
    """One loaded engine and its settings, completing sketches into result files one by one."""

    def __init__(self, engine, settings, label, seed, hints, reference, args, side, upscaler) -> None:  # noqa: ANN001, PLR0913
        self.engine, self.settings, self.label, self.seed = engine, settings, label, seed
        self.hints, self.reference, self.args, self.side, self.upscaler = hints, reference, args, side, upscaler

    def one(self, sketch: Any, output: Path, progress: Any) -> None:
        """Complete ``sketch`` into ``output`` (and its candidates beside it); ``progress`` shows the run, or None."""
        args, settings, engine = self.args, self.settings, self.engine
        frames = Path(args.frames) if args.frames else None
        if frames:
            from sketchapp.core.errors import ImageSaveError

            try:
                frames.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise ImageSaveError(f"{frames}: cannot create frames folder ({exc.strerror or exc})") from exc
        last = None
        for snapshot in engine.start(sketch, self.hints, settings):
            last = snapshot
            if progress is not None:
                progress.update(snapshot)
            if frames and (snapshot.final or snapshot.iteration % args.frame_every == 0):
                _save_frame(frames, snapshot)
        if progress is not None:
            progress.close()
        assert last is not None and last.final, "an uncancelled run always ends with a final snapshot"
        ran = settings.updated(iterations=last.iterations)  # the count in effect: hints may have raised it
        text = {"model": str(self.label), "seed": str(self.seed), "settings": json.dumps(ran.to_dict())}
        if self.reference is not None:
            from sketchapp.core.style import StyleSettings, discriminator_features, stylised_snapshot, vgg19_features

            style = StyleSettings(**{k: v for k, v in (("strength", args.style_strength), ("steps", args.style_steps)) if v is not None})
            features = vgg19_features(args.vgg19, engine.device) if args.vgg19 else discriminator_features(engine.model)
            if progress is not None:
                progress.note(f"taking the style of {Path(args.style_reference).name} ({style.steps} steps, features of {features.name})")
            last = stylised_snapshot(last, self.reference, features, style)
            text.update(style_reference=Path(args.style_reference).name, style=json.dumps({**style.__dict__, "features": features.name}))
        if output.suffix.lower() == ".ora":
            _write_layers(output, last, sketch, self.hints, self.side, self.upscaler)
        else:
            _write_results(output, last, text, self.side, self.upscaler)
        if progress is None:
            return
        if last.candidates > 1 and "spread" in last.info:
            progress.note(f"candidates differ by {last.info['spread']:.1f} grey levels on average")
        what = f"{last.iteration} iterations" if engine.capabilities.latents else "one pass"
        progress.note(
            f"best candidate {last.best + 1} of {last.candidates}, loss {last.losses['total'][last.best]:.4f}, "
            f"{what}; wrote {output}"
        )


def _save_frame(folder: Path, snapshot) -> None:  # noqa: ANN001 - core type imported lazily
    from sketchapp.core.images import contact_grid, save_image

    name = "final.png" if snapshot.final else f"{snapshot.phase}-{snapshot.iteration:05d}.png"
    if snapshot.phase == "init":
        name = f"init-{snapshot.info.get('init_done', 0):05d}.png"
    save_image(folder / name, contact_grid(snapshot.images("joint" if snapshot.sketches is not None else "image"), columns=4))


def _write_layers(output: Path, snapshot, sketch, hints, side: int, upscaler) -> None:  # noqa: ANN001
    """An OpenRaster file of the sketch's lines, the hints, the best result and the other candidates (hidden)."""
    import cv2

    from sketchapp.core.openraster import Layer, line_layer_rgba, save_openraster
    from sketchapp.core.prepare import fit_square

    grey = fit_square(cv2.cvtColor(sketch, cv2.COLOR_RGB2GRAY), max(sketch.shape[:2]), 255)
    images = snapshot.results(side, upscaler)
    layers = [Layer("Lines", line_layer_rgba(grey, side))]
    if hints is not None:
        square = fit_square(hints, max(hints.shape[:2]), 0)
        layers.append(Layer("Colour hints", cv2.resize(square, (side, side), interpolation=cv2.INTER_NEAREST), visible=False))
    layers.append(Layer("Result", images[snapshot.best]))
    layers += [Layer(f"Candidate {index + 1}", image, visible=False) for index, image in enumerate(images) if index != snapshot.best]
    save_openraster(output, layers)


def _write_results(output: Path, snapshot, text: dict[str, str], side: int, upscaler) -> None:  # noqa: ANN001
    """The best picture and, where there are several, every candidate, ``side`` px, all written or none
    (a full disk or Ctrl-C half way leaves nothing new)."""
    from sketchapp.core.images import save_images

    images = snapshot.results(side, upscaler)
    losses = snapshot.losses["total"]
    items = [(output, images[snapshot.best], {**text, "candidate": str(snapshot.best + 1)})]
    for index, image in enumerate(images if len(images) > 1 else []):
        path = output.with_name(f"{output.stem}-{index + 1}{output.suffix}")
        items.append((path, image, {**text, "candidate": str(index + 1), "loss": f"{losses[index]:.6f}"}))
    save_images(items)


class _Progress:
    """A completion's snapshots on the command line's progress bar (sketchapp.progress)."""

    def __init__(self, stream: TextIO, total: int, quiet: bool = False) -> None:
        from sketchapp.progress import Bar

        self.bar = Bar("completing", max(total, 1), quiet=quiet, stream=stream)
        self.started = time.perf_counter()

    def note(self, message: str) -> None:
        self.bar.note(message)

    def update(self, snapshot) -> None:  # noqa: ANN001
        if snapshot.latents is None and snapshot.final:  # a one-pass engine: no iterations to count
            self.bar.to(1, 1, "one pass")
            self.note(f"one pass in {(time.perf_counter() - self.started) * 1000:.0f} ms")
        elif snapshot.phase == "init" and "init_total" in snapshot.info:
            self.bar.to(int(snapshot.info["init_done"]), int(snapshot.info["init_total"]), "choosing starts")
        elif snapshot.phase == "init":
            self.bar.to(0, label=f"starting from the {snapshot.info.get('start', 'given')} codes")
        else:  # a run with hints may run longer than asked: the total follows the snapshot
            self.bar.to(snapshot.iteration, max(snapshot.iterations, 1), "optimising",
                        loss=f"{snapshot.losses['total'][snapshot.best]:.4f}")

    def close(self) -> None:
        self.bar.close()
