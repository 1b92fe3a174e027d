"""Training data: sketch/image pairs read from the folders a user has, held in memory.

Every loader reads any image file ``load_image`` can (RGBA is composited on white,
palette, greyscale, 16-bit, EXIF rotation, SVG, any size), fits it to a white square
of the model's size, and skips files it cannot read, listing them with the reason.
Pairs are small at model resolution (a 64 px pair is 16 KB), so a data set of
thousands fits in memory and an epoch never touches the disk.

A *built* data set is a folder of side-by-side ``sketch|image`` PNGs with a
``dataset.json`` that records where it came from, its licence and its split into
train / val / test, so that the held-out images stay held out.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from sketchapp.core.data.styles import STYLES, apply_style, make_params, to_grey
from sketchapp.core.engine import CancelToken
from sketchapp.core.errors import SketchAppError
from sketchapp.core.fileio import read_json, write_bytes_atomic
from sketchapp.core.images import load_image, save_image
from sketchapp.core.prepare import fit_square

IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".webp", ".bmp", ".tif", ".tiff", ".gif", ".svg", ".svgz"})
SPLITS = ("train", "val", "test")
MAX_STEM_BYTES = 200  # a pair's file name, less ".png" and a "~N" for a clash, within the usual 255
MANIFEST = "dataset.json"
PAIRS_DIR = "pairs"
DATASET_FORMAT = "sketchapp.dataset"
SKETCH_SIDES = ("left", "right")

#: Styles are drawn at this many times the model size, then reduced, so lines come
#: out smooth and as thin as a pen stroke on the canvas reduced the same way.
STYLE_OVERSAMPLE = 4

Progress = Callable[[int, int], None]


class DataError(SketchAppError):
    """A data set cannot be used (empty folder, nothing readable, bad manifest)."""


@dataclass(frozen=True)
class Skipped:
    path: str
    reason: str


@dataclass
class PairSet:
    """Sketch/image pairs at one size: sketches (N, S, S) grey, images (N, S, S, 3) RGB, uint8."""

    sketches: np.ndarray
    images: np.ndarray
    names: list[str]
    skipped: list[Skipped] = field(default_factory=list)
    info: dict[str, Any] = field(default_factory=dict)
    splits: dict[str, list[str]] | None = None

    def __post_init__(self) -> None:
        n = len(self.names)
        if self.sketches.shape[:1] != (n,) or self.images.shape[:1] != (n,):
            raise ValueError("sketches, images and names must have the same length")

    def __len__(self) -> int:
        return len(self.names)

    @property
    def size(self) -> int:
        return int(self.images.shape[1])

    def subset(self, names: Iterable[str]) -> PairSet:
        index = {name: i for i, name in enumerate(self.names)}
        chosen = [index[name] for name in names if name in index]
        return PairSet(
            self.sketches[chosen], self.images[chosen], [self.names[i] for i in chosen], [], dict(self.info)
        )

    def split(self, part: str) -> PairSet:
        """One split; a data set without recorded splits is split now by ``split_names``."""
        if part not in SPLITS:
            raise ValueError(f"unknown split {part!r}")
        splits = self.splits or split_names(self.names)
        return self.subset(splits[part])

    def joint(self) -> np.ndarray:
        """(N, S, 2S, 3) uint8 side-by-side pictures, sketch on the left."""
        sketches = np.repeat(self.sketches[..., None], 3, axis=3)
        return np.concatenate([sketches, self.images], axis=2)


@dataclass
class UnpairedSet:
    """Two unrelated collections (domain A, e.g. sketches, and domain B, e.g. paintings), each (N, S, S, 3) uint8 RGB.

    It has the shape of a PairSet where the training loop looks: ``names`` (every
    picture's, ``A/`` or ``B/`` in front), ``subset``, ``splits``, ``size``, ``info`` and
    ``sketches`` (domain A in grey). Its length is the larger collection's, as in
    CycleGAN's code: an epoch visits every picture of the larger one once.
    """

    a: np.ndarray
    b: np.ndarray
    names_a: list[str]
    names_b: list[str]
    skipped: list[Skipped] = field(default_factory=list)
    info: dict[str, Any] = field(default_factory=dict)
    splits: dict[str, list[str]] | None = None

    def __post_init__(self) -> None:
        if self.a.shape[:1] != (len(self.names_a),) or self.b.shape[:1] != (len(self.names_b),):
            raise ValueError("each collection needs one name per picture")

    def __len__(self) -> int:
        return max(len(self.names_a), len(self.names_b)) if self.names_a and self.names_b else 0

    @property
    def size(self) -> int:
        return int(self.a.shape[1])

    @property
    def names(self) -> list[str]:
        return [f"A/{n}" for n in self.names_a] + [f"B/{n}" for n in self.names_b]

    @property
    def sketches(self) -> np.ndarray:
        """Domain A in grey (N, S, S): what a sketch of this data looks like."""
        if not len(self.a):
            return np.zeros((0, self.size, self.size), np.uint8)
        return np.stack([to_grey(picture) for picture in self.a])

    def subset(self, names: Iterable[str]) -> UnpairedSet:
        wanted = set(names)
        keep_a = [i for i, n in enumerate(self.names_a) if f"A/{n}" in wanted]
        keep_b = [i for i, n in enumerate(self.names_b) if f"B/{n}" in wanted]
        return UnpairedSet(
            self.a[keep_a], self.b[keep_b], [self.names_a[i] for i in keep_a], [self.names_b[i] for i in keep_b],
            [], dict(self.info),
        )

    def warnings(self) -> list[str]:
        """What a user should know before training on it: a collection under ``FEW_UNPAIRED`` pictures."""
        return [
            f"domain {label} has only {count} pictures; CycleGAN wants a few hundred (under {FEW_UNPAIRED} it learns little)"
            for label, count in (("A", len(self.names_a)), ("B", len(self.names_b))) if count < FEW_UNPAIRED
        ]


#: fewer unpaired pictures than this in a collection gets a warning
FEW_UNPAIRED = 100
#: what 'sketchapp data unpaired' writes beside the two folders: source, licence, sketch style
UNPAIRED_RECORD = "unpaired.json"


def as_unpaired(pairs: PairSet) -> UnpairedSet:
    """Paired data as two collections (sketches as A, pictures as B), the pairing ignored: unpaired training on it."""
    sketches = np.repeat(pairs.sketches[..., None], 3, axis=3)
    names = list(pairs.names)
    unpaired = UnpairedSet(sketches, pairs.images, names, names, list(pairs.skipped), dict(pairs.info))
    if pairs.splits:
        unpaired.splits = {part: [f"{d}/{n}" for d in "AB" for n in pairs.splits.get(part, [])] for part in SPLITS}
    return unpaired


def list_images(folder: str | os.PathLike[str]) -> list[Path]:
    """Image files under ``folder`` (recursively, hidden files excluded), in a stable order."""
    root = Path(folder)
    if not root.exists():
        raise DataError(f"{root}: folder does not exist")
    if not root.is_dir():
        raise DataError(f"{root}: not a folder")
    files = [path for path in _walk(root) if path.suffix.lower() in IMAGE_SUFFIXES]
    if not files:
        raise DataError(f"{root}: no image files found (looked for {', '.join(sorted(IMAGE_SUFFIXES))})")
    return sorted(files, key=lambda p: p.relative_to(root).as_posix())


def _walk(root: Path) -> list[Path]:
    """Regular files under ``root``, hidden ones and hidden folders left out, walked with a list of
    folders still to read instead of recursion (a tree a thousand folders deep is walked, not a
    RecursionError) and without following links to folders (a link to a parent would loop)."""
    found, waiting = [], [root]
    while waiting:
        folder = waiting.pop()
        try:
            with os.scandir(folder) as entries:
                listed = list(entries)
        except OSError:  # unreadable, vanished or a path too long: its files are not there to read
            continue
        for entry in listed:
            if entry.name.startswith("."):
                continue
            try:
                if entry.is_dir(follow_symlinks=False):
                    waiting.append(Path(entry.path))
                elif entry.is_file():
                    found.append(Path(entry.path))
            except OSError:
                continue
    return found


def _name(path: Path, root: Path) -> str:
    return path.relative_to(root).with_suffix("").as_posix()


def _read(path: Path, skipped: list[Skipped]) -> np.ndarray | None:
    """The picture as RGB, or None with the reason added to ``skipped``."""
    try:
        return load_image(path, "RGB")
    except SketchAppError as exc:
        skipped.append(Skipped(str(path), reason(exc)))
        return None


def reason(exc: Exception) -> str:
    """A one-line error without the file name in front (the listing shows the file)."""
    return str(exc).split(": ", 1)[-1]


def _unique(files: list[Path], root: Path, skipped: list[Skipped]) -> list[Path]:
    """One file per name: "cat.png" and "cat.jpg" would be the same pair; the first is kept."""
    seen: dict[str, Path] = {}
    kept = []
    for path in files:
        name = _name(path, root)
        if name in seen:
            skipped.append(Skipped(str(path), f"same name as {seen[name].name}"))
            continue
        seen[name] = path
        kept.append(path)
    return kept


def fit_image(picture: np.ndarray, size: int) -> np.ndarray:
    """Any uint8 RGB picture -> size x size RGB, centred on white."""
    return fit_square(picture, size, (255, 255, 255))


def sketch_from_image(image: np.ndarray, size: int, style: str, params: dict[str, Any] | None = None) -> np.ndarray:
    """An automatic sketch of ``image`` (RGB, any size) at size x size, grey uint8."""
    work = fit_image(image, size * STYLE_OVERSAMPLE)
    lines = apply_style(style, work, **(params or {}))
    return cv2.resize(lines, (size, size), interpolation=cv2.INTER_AREA)


def fit_sketch(sketch: np.ndarray, size: int) -> np.ndarray:
    """A drawn sketch (grey, RGB or RGBA) -> size x size grey on white."""
    return fit_square(to_grey(sketch), size, 255)


def _check_size(size: int) -> None:
    if not isinstance(size, int) or size < 8 or size > 1024:
        raise DataError(f"image size must be between 8 and 1024 pixels, got {size!r}")


def _finish(
    sketches: list[np.ndarray], images: list[np.ndarray], names: list[str], skipped: list[Skipped],
    size: int, info: dict[str, Any], what: str,
) -> PairSet:
    if not names:
        reasons = "; ".join(f"{Path(s.path).name}: {s.reason}" for s in skipped[:3])
        raise DataError(f"{what}: no usable image pairs" + (f" ({reasons})" if reasons else ""))
    return PairSet(
        np.stack(sketches), np.stack(images), names, skipped, {**info, "size": size, "count": len(names)}
    )


def _tick(progress: Progress | None, cancel: CancelToken | None, done: int, total: int) -> None:
    if cancel is not None and cancel.cancelled:
        raise DataError("loading the data set was cancelled")
    if progress is not None:
        progress(done, total)


def load_folder(
    folder: str | os.PathLike[str],
    size: int,
    style: str = "xdog",
    style_params: dict[str, Any] | None = None,
    progress: Progress | None = None,
    cancel: CancelToken | None = None,
) -> PairSet:
    """A folder of pictures -> pairs (automatic sketch in ``style``, picture)."""
    _check_size(size)
    if style not in STYLES:
        raise DataError(f"unknown sketch style {style!r} (choose from {', '.join(STYLES)})")
    make_params(style, **(style_params or {}))
    root = Path(folder)
    sketches, images, names, skipped = [], [], [], []
    files = _unique(list_images(root), root, skipped)
    for i, path in enumerate(files):
        _tick(progress, cancel, i, len(files))
        picture = _read(path, skipped)
        if picture is None:
            continue
        sketches.append(sketch_from_image(picture, size, style, style_params))
        images.append(fit_image(picture, size))
        names.append(_name(path, root))
    _tick(progress, cancel, len(files), len(files))
    info = {"kind": "folder", "source": str(root), "sketch_style": style, "style_params": dict(style_params or {})}
    return _finish(sketches, images, names, skipped, size, info, str(root))


def sample_pictures(folder: str | os.PathLike[str], count: int = 8, side: int = 512) -> list[np.ndarray]:
    """Up to ``count`` readable pictures spread over the folder, each fitted to a white side x side square.

    For previews: what the automatic sketches of this folder will look like.
    """
    root = Path(folder)
    files = _unique(list_images(root), root, [])
    stride = max(1, len(files) // max(1, count))
    order = files[::stride] + [f for i, f in enumerate(files) if i % stride]
    pictures: list[np.ndarray] = []
    for path in order:
        picture = _read(path, [])
        if picture is not None:
            pictures.append(fit_image(picture, side))
            if len(pictures) == count:
                break
    if not pictures:
        raise DataError(f"{root}: none of its image files could be read")
    return pictures


def load_paired(
    sketch_folder: str | os.PathLike[str],
    image_folder: str | os.PathLike[str],
    size: int,
    progress: Progress | None = None,
    cancel: CancelToken | None = None,
) -> PairSet:
    """Two folders whose files are matched by name (stem and sub-folder, any extension)."""
    _check_size(size)
    sketch_root, image_root = Path(sketch_folder), Path(image_folder)
    duplicates: list[Skipped] = []
    sketch_files = {_name(p, sketch_root): p for p in _unique(list_images(sketch_root), sketch_root, duplicates)}
    image_files = {_name(p, image_root): p for p in _unique(list_images(image_root), image_root, duplicates)}
    skipped = duplicates + [Skipped(str(sketch_files[n]), "no image with the same name") for n in sorted(set(sketch_files) - set(image_files))]
    skipped += [Skipped(str(image_files[n]), "no sketch with the same name") for n in sorted(set(image_files) - set(sketch_files))]
    common = sorted(set(sketch_files) & set(image_files))
    sketches, images, names = [], [], []
    for i, name in enumerate(common):
        _tick(progress, cancel, i, len(common))
        sketch = _read(sketch_files[name], skipped)
        image = _read(image_files[name], skipped) if sketch is not None else None
        if sketch is None or image is None:
            continue
        sketches.append(fit_sketch(sketch, size))
        images.append(fit_image(image, size))
        names.append(name)
    _tick(progress, cancel, len(common), len(common))
    info = {"kind": "paired", "sketches": str(sketch_root), "images": str(image_root), "sketch_style": "paired"}
    return _finish(sketches, images, names, skipped, size, info, f"{sketch_root} + {image_root}")


def load_side_by_side(
    folder: str | os.PathLike[str],
    size: int,
    sketch_side: str = "left",
    progress: Progress | None = None,
    cancel: CancelToken | None = None,
) -> PairSet:
    """Pictures holding a pair side by side (pix2pix layout); ``sketch_side`` says which half is the sketch."""
    _check_size(size)
    if sketch_side not in SKETCH_SIDES:
        raise DataError(f"sketch side must be 'left' or 'right', got {sketch_side!r}")
    root = Path(folder)
    sketches, images, names, skipped = [], [], [], []
    files = _unique(list_images(root), root, skipped)
    for i, path in enumerate(files):
        _tick(progress, cancel, i, len(files))
        picture = _read(path, skipped)
        if picture is None:
            continue
        width = picture.shape[1]
        if width < 2 or width % 2:
            skipped.append(Skipped(str(path), f"not two halves side by side ({width} px wide, an odd width)"))
            continue
        left, right = picture[:, : width // 2], picture[:, width // 2 :]
        sketch, image = (left, right) if sketch_side == "left" else (right, left)
        sketches.append(fit_sketch(sketch, size))
        images.append(fit_image(image, size))
        names.append(_name(path, root))
    _tick(progress, cancel, len(files), len(files))
    info = {"kind": "side-by-side", "source": str(root), "sketch_side": sketch_side, "sketch_style": "paired"}
    return _finish(sketches, images, names, skipped, size, info, str(root))


def load_unpaired(
    folder_a: str | os.PathLike[str],
    folder_b: str | os.PathLike[str],
    size: int,
    progress: Progress | None = None,
    cancel: CancelToken | None = None,
) -> UnpairedSet:
    """Two unrelated folders (e.g. sketches and paintings) for unpaired translation."""
    _check_size(size)
    roots = (Path(folder_a), Path(folder_b))
    lists = [list_images(root) for root in roots]
    total = sum(len(files) for files in lists)
    loaded: list[tuple[list[np.ndarray], list[str]]] = []
    skipped: list[Skipped] = []
    done = 0
    for root, files in zip(roots, lists):
        pictures, names = [], []
        for path in files:
            _tick(progress, cancel, done, total)
            done += 1
            picture = _read(path, skipped)
            if picture is not None:
                pictures.append(fit_image(picture, size))
                names.append(_name(path, root))
        if not pictures:
            raise DataError(f"{root}: none of its {len(files)} image files could be read")
        loaded.append((pictures, names))
    _tick(progress, cancel, total, total)
    (a, names_a), (b, names_b) = loaded
    info = {"kind": "unpaired", "source": f"{roots[0]} + {roots[1]}", "sketch_style": "unpaired", "count": len(a) + len(b)}
    record = roots[0].resolve().parent / UNPAIRED_RECORD
    if roots[1].resolve().parent == record.parent and record.is_file():  # made by 'sketchapp data unpaired'
        made = read_json(record, DataError, "unpaired data record")
        if isinstance(made, dict):
            info.update({k: str(made[k]) for k in ("name", "licence", "attribution", "sketch_style") if k in made})
    return UnpairedSet(np.stack(a), np.stack(b), names_a, names_b, skipped, info)


def split_names(
    names: Sequence[str],
    seed: int = 0,
    val: float = 0.05,
    test: float = 0.05,
    group: Callable[[str], str] | None = None,
) -> dict[str, list[str]]:
    """Deterministic train/val/test split. Names sharing a ``group`` key stay together.

    With at least 3 groups, val and test each get at least one; the rest is training data.
    """
    if not (0 <= val < 1 and 0 <= test < 1 and val + test < 1):
        raise DataError(f"validation and test fractions must be in [0, 1) and sum below 1, got {val} and {test}")
    key = group or (lambda name: name)
    groups: dict[str, list[str]] = {}
    for name in sorted(names):
        groups.setdefault(key(name), []).append(name)
    order = sorted(groups)
    rng = np.random.default_rng(seed)
    order = [order[i] for i in rng.permutation(len(order))]
    n = len(order)
    n_test = max(1, round(n * test)) if test > 0 and n >= 3 else 0
    n_val = max(1, round(n * val)) if val > 0 and n >= 3 else 0
    parts = {
        "test": order[:n_test],
        "val": order[n_test : n_test + n_val],
        "train": order[n_test + n_val :],
    }
    return {part: sorted(name for g in parts[part] for name in groups[g]) for part in SPLITS}


def write_dataset(
    folder: str | os.PathLike[str],
    pairs: PairSet,
    splits: dict[str, list[str]],
    info: dict[str, Any],
    progress: Progress | None = None,
) -> Path:
    """Write a built data set into the new or empty folder ``folder``: side-by-side PNGs (sketch left)
    and a manifest. It is built in a hidden folder beside it and renamed into place when complete, so an
    interrupted build (Ctrl-C, SIGTERM, a full disk) leaves nothing that looks like data."""
    root = Path(folder)
    if root.exists() and (not root.is_dir() or any(root.iterdir())):
        raise DataError(f"{root}: not an empty folder; a data set is built into a new or empty one")
    root.parent.mkdir(parents=True, exist_ok=True)
    building = Path(tempfile.mkdtemp(prefix=f".{root.name}.building-", dir=root.parent))
    try:
        _write_pairs(building, pairs, splits, info, progress)
        if root.exists():
            root.rmdir()
        os.rename(building, root)
    except BaseException:
        shutil.rmtree(building, ignore_errors=True)
        raise
    return root


def _write_pairs(
    root: Path, pairs: PairSet, splits: dict[str, list[str]], info: dict[str, Any], progress: Progress | None,
) -> None:
    (root / PAIRS_DIR).mkdir()
    joint = pairs.joint()
    files = []
    taken: set[str] = set()
    for i, name in enumerate(pairs.names):
        if progress is not None:
            progress(i, len(pairs))
        stem = name.replace("/", "__")
        if len(stem.encode("utf-8")) > MAX_STEM_BYTES:  # a picture deep in folders: its name fits no file system
            digest = hashlib.sha256(name.encode("utf-8", "surrogatepass")).hexdigest()[:12]
            stem = f"{stem.encode('utf-8')[-MAX_STEM_BYTES + 13:].decode('utf-8', 'ignore')}-{digest}"
        file_name, count = f"{stem}.png", 1
        while file_name in taken:  # "a/b" and "a__b" must not share a file
            count += 1
            file_name = f"{stem}~{count}.png"
        taken.add(file_name)
        save_image(root / PAIRS_DIR / file_name, joint[i])
        files.append(file_name)
    manifest = {
        "format": DATASET_FORMAT,
        "format_version": 1,
        **info,
        "size": pairs.size,
        "count": len(pairs),
        "files": dict(zip(pairs.names, files)),
        "splits": {part: list(splits.get(part, [])) for part in SPLITS},
        "skipped": [{"path": s.path, "reason": s.reason} for s in pairs.skipped],
    }
    write_bytes_atomic(root / MANIFEST, json.dumps(manifest, indent=1, ensure_ascii=False).encode("utf-8"))


def is_built_dataset(folder: str | os.PathLike[str]) -> bool:
    return (Path(folder) / MANIFEST).is_file()


def load_dataset(folder: str | os.PathLike[str], progress: Progress | None = None, cancel: CancelToken | None = None) -> PairSet:
    """Read a data set written by ``write_dataset``, with its recorded splits."""
    root = Path(folder)
    manifest = read_json(root / MANIFEST, DataError, "data set manifest")
    if not isinstance(manifest, dict) or manifest.get("format") != DATASET_FORMAT:
        raise DataError(f"{root / MANIFEST}: not a SketchApp data set manifest")
    files = manifest.get("files")
    size = manifest.get("size")
    if not isinstance(files, dict) or not isinstance(size, int):
        raise DataError(f"{root / MANIFEST}: manifest lacks its file list or size")
    sketches, images, names, skipped = [], [], [], []
    for i, (name, file_name) in enumerate(files.items()):
        _tick(progress, cancel, i, len(files))
        path = root / PAIRS_DIR / str(file_name)
        picture = _read(path, skipped)
        if picture is None:
            continue
        if picture.shape[:2] != (size, 2 * size):
            skipped.append(Skipped(str(path), f"is {picture.shape[1]}x{picture.shape[0]}, expected {2 * size}x{size}"))
            continue
        sketches.append(to_grey(picture[:, :size]))
        images.append(picture[:, size:])
        names.append(name)
    info = {k: v for k, v in manifest.items() if k not in ("files", "splits", "skipped", "format", "format_version")}
    pairs = _finish(sketches, images, names, skipped, size, info, str(root))
    recorded = manifest.get("splits") or {}
    present = set(names)
    pairs.splits = {part: [n for n in recorded.get(part, []) if n in present] for part in SPLITS}
    if not any(pairs.splits.values()):
        pairs.splits = None
    return pairs


def load_any(
    folder: str | os.PathLike[str],
    size: int,
    style: str = "xdog",
    style_params: dict[str, Any] | None = None,
    progress: Progress | None = None,
    cancel: CancelToken | None = None,
) -> PairSet:
    """A built data set as recorded, or a plain folder of pictures with automatic sketches."""
    if is_built_dataset(folder):
        pairs = load_dataset(folder, progress, cancel)
        if pairs.size != size:
            pairs = _resize(pairs, size)
        return pairs
    return load_folder(folder, size, style, style_params, progress, cancel)


def _resize(pairs: PairSet, size: int) -> PairSet:
    sketches = np.stack([cv2.resize(s, (size, size), interpolation=cv2.INTER_AREA) for s in pairs.sketches])
    images = np.stack([cv2.resize(im, (size, size), interpolation=cv2.INTER_AREA) for im in pairs.images])
    return PairSet(sketches, images, list(pairs.names), pairs.skipped, {**pairs.info, "size": size}, pairs.splits)


def load_spec(
    spec: dict[str, Any], size: int, progress: Progress | None = None, cancel: CancelToken | None = None
) -> PairSet | UnpairedSet:
    """Load what a data ``spec`` names; specs are recorded with a training run so it can resume.

    {"kind": "folder", "folder", "style", "style_params"} (a built data set is recognised
    there too), {"kind": "paired", "sketches", "images"}, {"kind": "side-by-side",
    "folder", "sketch_side"}, {"kind": "unpaired", "sketches", "pictures"} (an UnpairedSet).
    """
    kind = spec.get("kind")
    if kind == "folder":
        return load_any(spec["folder"], size, spec.get("style", "xdog"), spec.get("style_params"), progress, cancel)
    if kind == "paired":
        return load_paired(spec["sketches"], spec["images"], size, progress, cancel)
    if kind == "side-by-side":
        return load_side_by_side(spec["folder"], size, spec.get("sketch_side", "left"), progress, cancel)
    if kind == "unpaired":
        return load_unpaired(spec["sketches"], spec["pictures"], size, progress, cancel)
    raise DataError(f"unknown data kind {kind!r}")
