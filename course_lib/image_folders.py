"""Image folders in ImageNet's layout (``<folder>/<class>/<image>``), decoded once at a training resolution
into one uint8 cache on disk: the one image cache of the course, used by Imagenette and Imagewoof and by the
distributed command line's ``--data folder:PATH``.

The cache is three files beside each other: ``STEM.npy`` (the images, ``N x 3 x R x R`` uint8, read as a
memory map), ``STEM.labels.npy`` and ``STEM.json``, the fingerprint of the folder it was made from (each
image's class, name, size, modification and change time), written last. A cache whose fingerprint or
files do not match is rebuilt, never trusted; an interrupted build leaves nothing behind.
"""

from __future__ import annotations

import json
import os
import warnings
from pathlib import Path
from typing import Callable

import numpy as np

from .files import atomic_write

# Every format PIL reads that image datasets are published in.
IMAGE_SUFFIXES = {".jpeg", ".jpg", ".png", ".webp", ".bmp", ".tif", ".tiff"}
CACHE_VERSION = 3


def visible(path: Path) -> bool:
    """False for hidden entries, whose names start with a dot (Jupyter's .ipynb_checkpoints, macOS's ._ files,
    .DS_Store): never data. A folder such as ``_background`` is a class, as in torchvision's ``ImageFolder``."""
    return not path.name.startswith(".")


def image_files(folder: Path) -> tuple[list[str], list[tuple[Path, int]]]:
    """The class folders of ``folder`` (the visible ones, sorted) and every image in them as ``(path,
    class index)``. Raises ``RuntimeError`` when there is no class folder, and ``ValueError`` naming a class
    folder that holds no image (it would shift every later class's label)."""
    folder = Path(folder)
    class_dirs = sorted(d for d in folder.iterdir() if d.is_dir() and visible(d))
    if not class_dirs:
        raise RuntimeError(f"{folder} has no class folders with images: expected {folder}/<class>/<image>.JPEG.")
    files = []
    for label, d in enumerate(class_dirs):
        images = sorted(f for f in d.iterdir() if f.is_file() and visible(f) and f.suffix.lower() in IMAGE_SUFFIXES)
        if not images:
            raise ValueError(f"{d} holds no image ({', '.join(sorted(IMAGE_SUFFIXES))}): every class folder needs at "
                             "least one (an empty one would shift the labels of the classes after it). Add its "
                             "images, or remove the folder.")
        files += [(f, label) for f in images]
    return [d.name for d in class_dirs], files


def fingerprint(files: list[tuple[Path, int]]) -> list:
    """What a cache must match: every image's class, name, size, and modification and change times (a file
    replaced by another of the same size and modification time still changes its change time)."""
    out = []
    for f, label in files:
        st = f.stat()
        out.append([label, f.parent.name, f.name, st.st_size, st.st_mtime_ns, st.st_ctime_ns])
    return out


def decode(path: Path, resolution: int) -> np.ndarray:
    """Decode an image, resize its shorter side to ``resolution`` and centre-crop a square. Returns uint8
    ``resolution x resolution x 3``. 16-bit and 32-bit images are scaled to 8 bits (a float image in [0, 1]
    is multiplied by 255), never clipped to black or white. Raises ``ValueError`` for an image larger than
    PIL's safety limit (a decompression bomb), ``OSError`` for one PIL cannot read."""
    from PIL import Image, ImageOps

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path) as img:
                # JPEG: decode at a reduced scale (1/2, 1/4, 1/8) when that still covers the resolution.
                # draft() acts only before the pixels are loaded, so it comes before anything that reads them.
                img.draft("RGB", (resolution, resolution))
                if img.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
                    img = Image.fromarray(_to_bytes(np.asarray(img, dtype=np.float64), img.mode))
                img = img.convert("RGB")
                return np.asarray(ImageOps.fit(img, (resolution, resolution), Image.BILINEAR))
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as err:
        raise ValueError(f"it is larger than PIL's limit of {Image.MAX_IMAGE_PIXELS:,} pixels ({err})") from None


def _to_bytes(pixels: np.ndarray, mode: str) -> np.ndarray:
    if mode == "F":     # 32-bit float: [0, 1] or [0, 255] as they are, any other range stretched
        lo, hi = float(pixels.min()), float(pixels.max())
        if lo >= 0 and hi <= 1:
            pixels = pixels * 255
        elif lo < 0 or hi > 255:
            pixels = (pixels - lo) / max(hi - lo, 1e-12) * 255
    else:               # 16-bit (and 32-bit integer) gray: 0-65535, not 0-255
        pixels = pixels / 257
    return pixels.round().clip(0, 255).astype(np.uint8)


def _paths(stem: Path) -> dict[str, Path]:
    return {"images": stem.with_name(stem.name + ".npy"), "labels": stem.with_name(stem.name + ".labels.npy"),
            "ready": stem.with_name(stem.name + ".json")}


def _valid(stem: Path, meta: str, resolution: int) -> bool:
    p = _paths(stem)
    try:
        if p["ready"].read_text() != meta:
            return False
        images = np.load(p["images"], mmap_mode="r")
        labels = np.load(p["labels"])
    except (OSError, ValueError):
        return False     # a part deleted or damaged: rebuild
    return images.shape[1:] == (3, resolution, resolution) and len(images) == len(labels)


def cache(folder: str | os.PathLike, stem: str | os.PathLike, resolution: int, *, progress: bool = True,
          skip_bad: bool = False, share: tuple[int, int] = (0, 1), barrier: Callable[[], None] | None = None,
          announce: bool = False, readable: Callable[[str], str] = str) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """The images of ``folder/<class>/*`` at ``resolution``: ``(images N x 3 x R x R uint8, a read-only
    memory map; labels N int64; class folder names)``, from the cache at ``stem`` when it matches the folder,
    else decoded once (progress bar) and cached.

    Several processes of one machine build one cache together: ``share=(k, n)`` decodes every n-th image
    from the k-th, and ``barrier()`` (e.g. ``torch.distributed.barrier``) is called where they must wait for
    each other; process 0 of the machine creates and finishes the files. A file that cannot be decoded
    raises ``RuntimeError`` naming it, in every process (none is left waiting); with ``skip_bad=True``
    (one process only) it is left out with a warning. ``announce``: print the images per class when it decodes
    them (each class named by ``readable``)."""
    from tqdm.auto import tqdm

    folder, stem = Path(folder), Path(stem)
    rank, world = share
    wait = barrier or (lambda: None)
    if skip_bad and world > 1:
        raise ValueError("skip_bad=True needs one process: several processes share the cache's rows.")
    classes, files = image_files(folder)
    meta = json.dumps({"version": CACHE_VERSION, "resolution": resolution, "classes": classes,
                       "files": fingerprint(files), "skip_bad": skip_bad})
    p = _paths(stem)
    if not _valid(stem, meta, resolution):
        if announce and rank == 0:
            counts = np.bincount([label for _, label in files], minlength=len(classes))
            # the data folder's own name, not its path: published notebooks must not name this machine's folders
            print(f"{folder.parent.name}/{folder.name}: {len(files):,} images; "
                  + ", ".join(f"{readable(n)} {c}" for n, c in zip(classes, counts)))
        # this build's own temporary files, shared by the processes of one run on this machine: two runs
        # building the same cache at once each write their own, and each rename is atomic
        token = os.environ.get("TORCHELASTIC_RUN_ID") or str(os.getpid() if world == 1 else os.getppid())
        tmp, failed = stem.with_name(f"{stem.name}.{token}.tmp.npy"), stem.with_name(f"{stem.name}.{token}.failed")
        try:
            if rank == 0:
                stem.parent.mkdir(parents=True, exist_ok=True)
                np.lib.format.open_memmap(tmp, mode="w+", dtype=np.uint8,
                                          shape=(len(files), 3, resolution, resolution)).flush()
            wait()
            good = _decode_share(files, tmp, failed, resolution, rank, world, skip_bad, progress and rank == 0,
                                 f"caching {folder.parent.name}/{folder.name} at {resolution}px", tqdm)
            wait()
            if failed.exists():
                message = failed.read_text()
                wait()
                raise RuntimeError(message)
            if rank == 0:
                labels = np.array([label for _, label in files], dtype=np.int64)
                if good is not None and not good.all():
                    if not good.any():
                        raise RuntimeError(f"No image in {folder} could be decoded.")
                    kept = np.load(tmp, mmap_mode="r")[good]
                    atomic_write(p["images"], lambda f: np.save(f, kept))
                    labels = labels[good]
                    tmp.unlink()
                else:
                    os.replace(tmp, p["images"])
                atomic_write(p["labels"], lambda f: np.save(f, labels))
                atomic_write(p["ready"], lambda f: f.write(meta), mode="w")
            wait()
        finally:
            if rank == 0:
                tmp.unlink(missing_ok=True)
                failed.unlink(missing_ok=True)
    return np.load(p["images"], mmap_mode="r"), np.load(p["labels"]), classes


def _decode_share(files, tmp: Path, failed: Path, resolution: int, rank: int, world: int, skip_bad: bool,
                  progress: bool, desc: str, tqdm) -> np.ndarray | None:
    """Decode this process's share of ``files`` into the memory map ``tmp``. Returns which rows hold an
    image (with ``skip_bad``; else None). A file that cannot be decoded is written to ``failed`` (so that
    every process raises after the next barrier) unless it is skipped."""
    from PIL import UnidentifiedImageError

    out = np.load(tmp, mmap_mode="r+")
    good = np.ones(len(files), dtype=bool) if skip_bad else None
    try:
        for i in tqdm(range(rank, len(files), world), desc=desc, disable=not progress):
            path = files[i][0]
            try:
                out[i] = decode(path, resolution).transpose(2, 0, 1)
            except (OSError, UnidentifiedImageError, ValueError, SyntaxError) as err:
                message = f"{path} could not be decoded as an image ({type(err).__name__}: {err})"
                if skip_bad:
                    warnings.warn(f"{message}: left out (skip_bad=True).", stacklevel=4)
                    good[i] = False
                    continue
                text = (f"{message}. Delete or replace it, or pass skip_bad=True to leave out the files that cannot "
                        "be read.")
                atomic_write(failed, lambda f, text=text: f.write(text), mode="w")
                break
        out.flush()
    finally:
        del out
    return good
