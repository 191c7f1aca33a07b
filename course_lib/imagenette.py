"""Imagenette and Imagewoof (10-class subsets of ImageNet published by the fast.ai project): one table
of archives and checksums, download, safe extraction, and a uint8 cache at the training resolution.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tarfile
import tempfile
from pathlib import Path
from typing import NamedTuple

import numpy as np
import torch

from . import env
from .augment import center_crop
from .checks import whole_number
from .files import data_root
from .image_folders import IMAGE_SUFFIXES, cache, visible
from .loader import take


# Every archive the course can download: (variant, size) -> (URL, MD5). Imagenette's are torchvision's
# own (datasets.Imagenette); Imagewoof's come from catalyst's definitions of the same fast.ai release.
FASTAI = "https://s3.amazonaws.com/fast-ai-imageclas"
ARCHIVES = {
    ("imagenette", 160): (f"{FASTAI}/imagenette2-160.tgz", "e793b78cc4c9e9a4ccc0c1155377a412"),
    ("imagenette", 320): (f"{FASTAI}/imagenette2-320.tgz", "3df6f0d01a2c9592104656642f5e78a3"),
    ("imagewoof", 160): (f"{FASTAI}/imagewoof2-160.tgz", "3d200a7be99704a0d7509be2a9fbfe15"),
    ("imagewoof", 320): (f"{FASTAI}/imagewoof2-320.tgz", "0f46d997ec2264e97609196c95897a44"),
}
WNID_NAMES = {
    # Imagenette
    "n01440764": "tench", "n02102040": "English springer", "n02979186": "cassette player",
    "n03000684": "chain saw", "n03028079": "church", "n03394916": "French horn",
    "n03417042": "garbage truck", "n03425413": "gas pump", "n03445777": "golf ball",
    "n03888605": "parachute", "n03888257": "parachute",
    # Imagewoof
    "n02086240": "Shih-Tzu", "n02087394": "Rhodesian ridgeback", "n02088364": "beagle",
    "n02089973": "English foxhound", "n02093754": "Border terrier", "n02096294": "Australian terrier",
    "n02099601": "golden retriever", "n02105641": "Old English sheepdog", "n02111889": "Samoyed",
    "n02115641": "dingo",
}


# The ten classes of each variant, by ImageNet wnid (Imagenette v2; v1 used n03888605 for parachute).
WNIDS = {
    "imagenette": ("n01440764", "n02102040", "n02979186", "n03000684", "n03028079", "n03394916", "n03417042",
                   "n03425413", "n03445777", "n03888257"),
    "imagewoof": ("n02086240", "n02087394", "n02088364", "n02089973", "n02093754", "n02096294", "n02099601",
                  "n02105641", "n02111889", "n02115641"),
}


# A folder the learner already has, in ImageNet's layout (PATH/train/<wnid>/<image>, PATH/val/...): set
# COURSE_IMAGENETTE (or COURSE_IMAGEWOOF) to PATH, or pass folder=PATH to load().
FOLDER_SETTINGS = {"imagenette": "COURSE_IMAGENETTE", "imagewoof": "COURSE_IMAGEWOOF"}


class ImageSplit(NamedTuple):
    """One split of an image dataset: uint8 ``images`` N x 3 x S x S, int64 ``labels`` N and the
    readable ``classes`` (index -> name)."""

    images: torch.Tensor
    labels: torch.Tensor
    classes: list


def archive_name(variant: str, size: int) -> str:
    """``"imagenette2-160"`` and the like; raises ValueError for an unknown variant or size."""
    if variant not in {v for v, _ in ARCHIVES}:
        raise ValueError(f"Unknown variant {variant!r}: expected 'imagenette' or 'imagewoof'.")
    if (variant, size) not in ARCHIVES:
        raise ValueError(f"Unknown archive size {size}: expected 160 or 320 (pixels, shorter side).")
    return f"{variant}2-{size}"


def safe_extract(archive: str | os.PathLike, target: str | os.PathLike) -> None:
    """Extract a tar archive into ``target``, safely on every Python the course admits.

    Only regular files and folders are extracted: a member that is a link (symbolic or hard), a device
    or a FIFO, or whose path would land outside ``target`` (absolute, ``..``, through a link already on
    disk), is refused with a ``RuntimeError`` naming it, before anything is written. (Imagenette's
    archives hold only files and folders; refusing links rules out every link trick, also on Pythons
    without ``tarfile``'s data filter, which is applied on top where it exists.) A truncated or
    unreadable archive raises ``RuntimeError`` too.
    """
    target = Path(target).resolve()
    try:
        with tarfile.open(archive) as tar:
            members = tar.getmembers()
            for m in members:
                if not (m.isfile() or m.isdir()):
                    kind = "link" if (m.issym() or m.islnk()) else "device or special file"
                    raise RuntimeError(f"Refusing to extract {archive}: member {m.name!r} is a {kind}; "
                                       "only files and folders are extracted.")
                if not (target / m.name).resolve().is_relative_to(target):
                    raise RuntimeError(f"Refusing to extract {archive}: member {m.name!r} would escape {target}.")
            if hasattr(tarfile, "data_filter"):
                tar.extractall(target, members=members, filter="data")
            else:
                tar.extractall(target, members=members)
    except (tarfile.TarError, EOFError, OSError) as err:
        raise RuntimeError(f"{archive} is truncated or not a valid tar archive ({err}). "
                           "Delete it and download it again.") from err


def _download_archive(name: str, url: str, root: Path, md5: str | None, download: bool) -> Path:
    archive = root / f"{name}.tgz"
    if not archive.exists():
        if not download:
            raise FileNotFoundError(
                f"{name} is not in {root}: neither the folder {root / name} nor the archive {archive} exists. "
                f"Download {url} (MD5 {md5}) and put it at {archive}, or call with download=True.")
        from torchvision.datasets.utils import download_url

        # a name of this download's own: two first downloads into one data folder never share a file
        part = f"{name}.tgz.{os.getpid()}-{os.urandom(4).hex()}.part"
        try:
            download_url(url, str(root), filename=part, md5=md5)  # verifies the MD5 of the .part file
        except Exception as err:
            (root / part).unlink(missing_ok=True)
            raise RuntimeError(f"Could not download {url} into {root} ({type(err).__name__}: {err}). "
                               f"Download it by hand and put it at {archive}.") from err
        os.replace(root / part, archive)
    if md5 is not None:
        from torchvision.datasets.utils import calculate_md5

        got = calculate_md5(str(archive))
        if got != md5:
            raise RuntimeError(
                f"{archive} has MD5 {got}, expected {md5}: it is truncated or corrupted (or was "
                "re-published). Delete it and download it again; if you verified the file yourself, "
                "pass md5=None.")
    return archive


def _extract(archive: Path, name: str, root: Path) -> Path:
    work = Path(tempfile.mkdtemp(dir=root, prefix=f".{name}-extract-"))
    try:
        safe_extract(archive, work)
        if not (work / name).is_dir():
            raise RuntimeError(f"{archive} does not contain the folder {name}/ that was expected.")
        _move_in(work / name, root / name)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return root / name


def _move_in(made: Path, target: Path) -> None:
    """Rename the finished folder ``made`` to ``target``. When another process (a second notebook opening
    the same data) got there first with the same folder, keep theirs: both built it from the same source."""
    try:
        os.replace(made, target)
    except OSError:
        if not target.is_dir():
            raise


def load_split(split: str = "train", *, variant: str = "imagenette", size: int = 160,
               root: str | os.PathLike | None = None, download: bool = True,
               resolution: int | None = None, md5: str | None = "published",
               progress: bool = True, skip_bad: bool = False,
               folder: str | os.PathLike | None = None) -> ImageSplit:
    """One split of Imagenette or Imagewoof as one uint8 tensor, cached at the training resolution.

    ``split`` is ``"train"`` or ``"val"``; ``resolution`` is the square side of the cached images
    (default ``size``). The images come from, in this order:

    * ``folder`` (or the folder in ``$COURSE_IMAGENETTE`` / ``$COURSE_IMAGEWOOF``): a copy the learner
      already has, in ImageNet's layout ``folder/<split>/<wnid>/<image>`` at any image size and in any
      format PIL reads (see :func:`check_folder`);
    * else the published archive ``<root>/<variant>2-<size>.tgz`` (``size`` 160 or 320 px): downloaded
      when missing, checked against its published MD5, extracted safely into ``<root>/<variant>2-<size>/``.

    Every image is decoded once (progress bar) into a cache in ``root`` (:func:`image_folders.cache`); later
    calls load it in seconds. A cache that does not match the folder (an image added, removed or replaced,
    another resolution or format version) is rebuilt, not trusted. A file that cannot be decoded raises
    ``RuntimeError`` naming it; with ``skip_bad=True`` it is left out with a warning instead. Returns an
    :class:`ImageSplit` ``(images uint8 N x 3 x res x res, labels int64 N, classes)``.
    """
    if split not in ("train", "val"):
        raise ValueError(f"Unknown split {split!r}: expected 'train' or 'val'.")
    if resolution is not None:
        resolution = whole_number(resolution, "resolution",
                                  expected=f"a whole number of pixels >= 1 (or None for {size})")
    name = archive_name(variant, size)
    root = data_root(root)
    folder = folder or os.environ.get(FOLDER_SETTINGS[variant]) or None
    if folder is not None:
        source = check_folder(folder, variant, split)
        # the cache is named after the folder's name and its absolute path: two copies never share one
        tag = hashlib.sha1(str(source.resolve()).encode()).hexdigest()[:8]
        return _read(source / split, root / f"{source.name}-{tag}-{split}-{resolution or size}px", resolution or size,
                     progress, skip_bad, announce=True)
    if not (root / name / split).is_dir():
        url, published = ARCHIVES[variant, size]
        archive = _download_archive(name, url, root, published if md5 == "published" else md5, download)
        _extract(archive, name, root)
    return _read(root / name / split, root / f"{name}-{split}-{resolution or size}px", resolution or size,
                 progress, skip_bad)


def _read(split_dir: Path, stem: Path, resolution: int, progress: bool, skip_bad: bool,
          announce: bool = False) -> ImageSplit:
    """The split's images from the course's one image cache, in memory (a read-only data folder: decoded
    into a temporary cache, with a warning)."""
    import warnings

    if not os.access(data_root(stem.parent), os.W_OK):
        warnings.warn(f"{stem.parent} is read-only: the images of {split_dir} are decoded now and kept in memory "
                      "only, so the next run decodes them again. Set COURSE_DATA to a folder you may write to, "
                      "to cache them.", stacklevel=3)
        with tempfile.TemporaryDirectory() as scratch:
            images, labels, classes = cache(split_dir, Path(scratch) / stem.name, resolution, progress=progress,
                                            skip_bad=skip_bad, announce=announce, readable=_readable_name)
            images = torch.from_numpy(np.array(images))
    else:
        images, labels, classes = cache(split_dir, stem, resolution, progress=progress, skip_bad=skip_bad,
                                        announce=announce, readable=_readable_name)
        images = torch.from_numpy(np.array(images))     # into memory: the lessons move it to the device
    return ImageSplit(images, torch.from_numpy(labels), _readable(classes))


def check_folder(folder: str | os.PathLike, variant: str = "imagenette", split: str | None = None) -> Path:
    """Check that ``folder`` holds ``variant`` in ImageNet's layout: ``folder/train/<wnid>/`` and
    ``folder/val/<wnid>/`` (or only ``split``), whose class folders are exactly the variant's ten wnids
    (:data:`WNIDS`; Imagenette v1's parachute wnid is accepted too). Returns the folder as a ``Path``;
    raises ``FileNotFoundError`` or ``ValueError`` saying what is missing or extra, and what was expected."""
    if variant not in WNIDS:
        raise ValueError(f"Unknown variant {variant!r}: expected 'imagenette' or 'imagewoof'.")
    source = Path(folder).expanduser()
    expected = (f"{source}/train/<wnid>/<image> and {source}/val/<wnid>/<image> with {variant}'s wnids "
                f"{', '.join(WNIDS[variant])} (the folder comes from ${FOLDER_SETTINGS[variant]} or folder=...)")
    for part in (split,) if split else ("train", "val"):
        where = source / part
        if not where.is_dir():
            raise FileNotFoundError(f"{source} has no {part}/ folder: expected {expected}.")
        found = {d.name for d in where.iterdir() if d.is_dir() and visible(d)}
        wanted = set(WNIDS[variant])
        if variant == "imagenette" and "n03888605" in found:   # Imagenette v1
            wanted = wanted - {"n03888257"} | {"n03888605"}
        missing, extra = sorted(wanted - found), sorted(found - wanted)
        if missing or extra:
            said = ([f"missing {', '.join(missing)}"] * bool(missing)
                    + [f"not {variant} classes: {', '.join(extra)}"] * bool(extra))
            raise ValueError(f"{where} does not hold {variant}'s ten classes ({'; '.join(said)}): expected {expected}.")
    return source


def _readable_name(folder: str) -> str:
    return WNID_NAMES.get(folder, folder)


def _readable(folders: list[str]) -> list[str]:
    return [WNID_NAMES.get(f, f) for f in folders]


# Real photos shipped inside scikit-image, used to build an offline folder in Imagenette's layout.
OFFLINE_PHOTOS = ("astronaut", "chelsea", "coffee", "rocket", "hubble_deep_field", "immunohistochemistry",
                  "retina", "camera", "coins", "clock")


def offline_folder(root: str | os.PathLike | None = None, name: str = "imagenette2-160",
                       train_per_class: int = 12, val_per_class: int = 4, size: int = 160,
                       seed: int = 0) -> Path:
    """Write (once) a small folder ``<root>/offline/<name>/{train,val}/<photo>/*.JPEG`` in the
    Imagenette layout from scikit-image's real photos: one class per photo, random crops and flips.

    Used by the ``smoke`` profile and the tests, where there is no internet. Returns the root to
    pass to :func:`load` (``<root>/offline``).
    """
    from PIL import Image
    from skimage import data as photos

    base = data_root(root) / "offline"
    if (base / name / "val").is_dir():
        return base
    rng = np.random.default_rng(seed)
    work = Path(tempfile.mkdtemp(dir=data_root(root), prefix=".offline-"))
    try:
        for photo in OFFLINE_PHOTOS:
            img = getattr(photos, photo)()
            if img.ndim == 2:
                img = np.repeat(img[..., None], 3, axis=2)
            h, w = img.shape[:2]
            for split, count in (("train", train_per_class), ("val", val_per_class)):
                out = work / name / split / photo
                out.mkdir(parents=True)
                for i in range(count):
                    side = int(min(h, w) * rng.uniform(0.45, 1.0))
                    y, x = rng.integers(0, h - side + 1), rng.integers(0, w - side + 1)
                    crop = img[y:y + side, x:x + side]
                    if rng.random() < 0.5:
                        crop = crop[:, ::-1]
                    Image.fromarray(np.ascontiguousarray(crop)).resize((size, size), Image.BILINEAR).save(
                        out / f"{photo}_{i:03d}.JPEG", quality=90)
        base.mkdir(exist_ok=True)
        _move_in(work / name, base / name)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return base


class ImagenetteData(NamedTuple):
    """The data of lessons 04, 05 and 09: ``train_images`` uint8 ``N x 3 x C x C`` (C = the cache side, 8/7
    of the crop, as 256 is to 224) with ``train_labels``; ``val_images`` centre crops ``M x 3 x S x S``
    (S = the profile's image size) with ``val_labels``; the class names; ``offline``: True when the images
    are scikit-image's photos standing in for Imagenette (the ``smoke`` profile); and ``sizes``: the whole
    split's sizes before the profile's cut, ``(train, val)``."""

    train_images: torch.Tensor
    train_labels: torch.Tensor
    val_images: torch.Tensor
    val_labels: torch.Tensor
    classes: list[str]
    offline: bool
    sizes: tuple[int, int] = (0, 0)

    def describe(self) -> str:
        """One line: which images, how many of each split, at what size (every lesson prints it)."""
        name = "scikit-image's photos in Imagenette's layout (offline)" if self.offline else "Imagenette"
        train = f"{len(self.train_labels):,}" + (f" of {self.sizes[0]:,}" if self.sizes[0] > len(self.train_labels)
                                                 else "")
        return (f"{name}: {train} training / {len(self.val_labels):,} validation images at "
                f"{self.val_images.shape[-1]} px, {len(self.classes)} classes")


def for_profile(prof: env.Profile, variant: str = "imagenette") -> ImagenetteData:
    """Load (downloading once) Imagenette or Imagewoof at the sizes of profile ``prof``; in ``smoke``, the
    offline folder of real photos in Imagenette's layout. Training images are cut to the profile's
    ``imagenette_train_size`` (a seeded subset)."""
    side = round(prof.image_size * 8 / 7)
    if prof.name == "smoke":
        root = offline_folder()
        train_set = load_split("train", root=root, download=False, resolution=side)
        val_set = load_split("val", root=root, download=False, resolution=side)
    else:
        train_set = load_split("train", variant=variant, size=160, resolution=side)
        val_set = load_split("val", variant=variant, size=160, resolution=side)
    x, y = take(train_set.images, train_set.labels, prof.imagenette_train_size)
    return ImagenetteData(x, y, center_crop(val_set.images, prof.image_size), val_set.labels,
                          list(train_set.classes), prof.name == "smoke", (len(train_set.labels), len(val_set.labels)))


def describe(prof: env.Profile, variant: str = "imagenette") -> str:
    """One line saying which photos the profile's lessons read and how many, counted in the folder without
    decoding them, e.g. ``"Imagenette (imagenette2-128, a folder given in $COURSE_IMAGENETTE): 2,000 of 9,469
    training / 3,925 validation images at 112 px"``."""
    if prof.name == "smoke":
        source, where = offline_folder() / "imagenette2-160", "scikit-image's photos in Imagenette's layout (offline)"
    else:
        given = os.environ.get(FOLDER_SETTINGS[variant])
        source = Path(given).expanduser() if given else data_root() / archive_name(variant, 160)
        where = (f"{variant.capitalize()} ({source.name}, " +
                 (f"a folder given in ${FOLDER_SETTINGS[variant]})" if given else "the published archive)"))
    count = lambda split: sum(1 for f in (source / split).rglob("*") if f.suffix.lower() in IMAGE_SUFFIXES
                              and visible(f) and visible(f.parent)) if (source / split).is_dir() else 0
    train, val = count("train"), count("val")
    if train + val == 0:
        return f"{where}: not there yet (downloaded on first use)"
    used = min(train, prof.imagenette_train_size or train)
    return (f"{where}: {used:,}" + (f" of {train:,}" if used < train else "") +
            f" training / {val:,} validation images at {prof.image_size} px")
