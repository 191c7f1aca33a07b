"""Real datasets as uint8 tensors, and a batch loader that keeps them on the training device.

Images are always ``uint8`` tensors of shape ``N x C x H x W`` with ``int64`` labels of shape
``N``. They become floats only inside :class:`TensorLoader`, batch by batch, on the device,
so a whole dataset that fits is moved once and never touched by per-sample Python code.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tarfile
import tempfile
from pathlib import Path
from typing import Callable, Iterator, NamedTuple, Sequence

import numpy as np
import torch
import torch.nn.functional as F

from . import env

# Mean and std of MNIST's training pixels (in [0, 1]) and of ImageNet's, per channel.
MNIST_MEAN, MNIST_STD = (0.1307,), (0.3081,)
IMAGENET_MEAN, IMAGENET_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)


def data_root(root: str | os.PathLike | None = None) -> Path:
    """The dataset cache folder: ``root``, else ``$COURSE_DATA``, else ``data/`` beside the repo.

    The folder is created if needed.
    """
    if root is None:
        root = os.environ.get("COURSE_DATA") or Path(__file__).resolve().parent.parent / "data"
    path = Path(root).expanduser()
    path.mkdir(parents=True, exist_ok=True)
    return path


def atomic_write(path: str | os.PathLike, write: Callable[[object], None], mode: str = "wb") -> Path:
    """Write a file through a temporary file in the same folder and a rename.

    ``write`` gets the open file. An interrupted write never leaves a half-written ``path`` and
    never a stray temporary file. Returns the path.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name + ".", suffix=".tmp")
    try:
        with os.fdopen(fd, mode, **({} if "b" in mode else {"encoding": "utf-8"})) as f:
            write(f)
        os.chmod(tmp, 0o644)  # mkstemp makes 0600 files; course files are readable by all
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def default_normalization(channels: int) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """``(mean, std)`` per channel used when a caller gives none: MNIST's for 1 channel,
    ImageNet's for 3."""
    if channels == 1:
        return MNIST_MEAN, MNIST_STD
    if channels == 3:
        return IMAGENET_MEAN, IMAGENET_STD
    raise ValueError(f"No default normalization for {channels} channels: expected 1 or 3, or pass mean/std.")


def normalize(images: torch.Tensor, mean: Sequence[float] | None = None,
              std: Sequence[float] | None = None) -> torch.Tensor:
    """uint8 ``N x C x H x W`` (or float in [0, 1]) -> float32 ``(x/255 - mean)/std``, same device."""
    if images.dim() != 4:
        raise ValueError(f"Expected images of shape N x C x H x W, got shape {tuple(images.shape)}.")
    if mean is None or std is None:
        mean, std = default_normalization(images.shape[1])
    x = images.float()
    if images.dtype == torch.uint8:
        x = x / 255.0
    m = torch.as_tensor(mean, dtype=torch.float32, device=x.device).view(1, -1, 1, 1)
    s = torch.as_tensor(std, dtype=torch.float32, device=x.device).view(1, -1, 1, 1)
    return (x - m) / s


# ----------------------------------------------------------------------------------------------
# MNIST, and the 5,000 real MNIST digits shipped for offline work


def mnist(split: str = "train", root: str | os.PathLike | None = None,
          download: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
    """MNIST through torchvision (its own mirrors and MD5 checks).

    Takes ``split`` ``"train"`` (60,000 images) or ``"test"`` (10,000). Returns
    ``(images uint8 N x 1 x 28 x 28, labels int64 N)``. When the files are missing and cannot be
    downloaded, raises ``RuntimeError`` saying where the files go and naming :func:`mnist_sample`,
    the offline fallback.
    """
    from torchvision.datasets import MNIST

    _check_split(split)
    folder = data_root(root)
    try:
        ds = MNIST(str(folder), train=(split == "train"), download=download)
    except Exception as err:  # torchvision raises RuntimeError or URLError depending on the failure
        raise RuntimeError(
            f"MNIST ({split}) is not in {folder / 'MNIST' / 'raw'} and could not be downloaded "
            f"({type(err).__name__}: {err}). Put the four IDX files (train-images-idx3-ubyte.gz, ...) "
            "there by hand, or work offline with course_lib.data.mnist_sample(), 5,000 real MNIST "
            "digits shipped with the course (set COURSE_PROFILE=smoke to make the lessons use it)."
        ) from err
    images = ds.data.unsqueeze(1).contiguous()  # N x 1 x 28 x 28, uint8
    return images, ds.targets.long()


# The 5,000 MNIST digits shipped inside the package (see mnist_sample/README.md for source and licence).
MNIST_SAMPLE_DIR = Path(__file__).resolve().parent / "mnist_sample"
MNIST_SAMPLE_FILES = {
    "images": ("mnist-sample-images-idx3-ubyte.gz", "88bcafbbca583f807c9e53e4f875cc2d"),
    "labels": ("mnist-sample-labels-idx1-ubyte.gz", "2c3dd952d69559d568ec7e8d244f1145"),
}
MNIST_SAMPLE_TEST_SIZE = 1000  # of the 5,000: always the same 1,000 (a permutation seeded with 0)


def read_idx(path: str | os.PathLike, expected_dims: int) -> torch.Tensor:
    """Read a (gzipped) IDX file of unsigned bytes, MNIST's format, as a uint8 tensor.

    ``expected_dims`` is 3 for images (``N x H x W``) and 1 for labels (``N``). Raises ``ValueError``
    naming the file when its header is not an unsigned-byte IDX header of that many dimensions or its
    size does not match the header.
    """
    import gzip

    path = Path(path)
    raw = (gzip.open if path.suffix == ".gz" else open)(path, "rb").read()
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] != 0x08 or raw[3] != expected_dims:
        raise ValueError(f"{path} is not an IDX file of unsigned bytes with {expected_dims} dimension(s).")
    shape = tuple(int.from_bytes(raw[4 + 4 * i: 8 + 4 * i], "big") for i in range(expected_dims))
    body = raw[4 + 4 * expected_dims:]
    if len(body) != int(np.prod(shape)):
        raise ValueError(f"{path}: the header announces shape {shape} ({int(np.prod(shape))} bytes) "
                         f"but the file holds {len(body)} bytes.")
    return torch.frombuffer(bytearray(body), dtype=torch.uint8).reshape(shape)


def mnist_sample(split: str = "train", folder: str | os.PathLike | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """5,000 real MNIST digits shipped with the course: no download, the same code path as MNIST.

    They are the first 5,000 digits of MNIST's test set (CC BY-SA 3.0, LeCun, Cortes and Burges),
    split always the same way: 4,000 ``"train"`` and 1,000 ``"test"`` digits. Both files' MD5 are
    checked first (``folder`` overrides where they are read from, for tests). Returns
    ``(images uint8 N x 1 x 28 x 28, labels int64 N)``.
    """
    from torchvision.datasets.utils import check_integrity

    _check_split(split)
    folder = Path(folder) if folder is not None else MNIST_SAMPLE_DIR
    paths = {}
    for kind, (name, md5) in MNIST_SAMPLE_FILES.items():
        paths[kind] = folder / name
        if not check_integrity(str(paths[kind]), md5):
            raise RuntimeError(f"{paths[kind]} is missing or corrupted (expected MD5 {md5}): reinstall "
                               "course_lib, or copy the file again from the course repository.")
    images, labels = read_idx(paths["images"], 3), read_idx(paths["labels"], 1).long()
    if len(images) != len(labels) or labels.max() > 9:
        raise ValueError(f"{folder}: {len(images)} images and {len(labels)} labels (max {int(labels.max())}): "
                         "expected as many labels as images, each 0-9.")
    order = torch.randperm(len(labels), generator=torch.Generator().manual_seed(0))
    idx = order[:MNIST_SAMPLE_TEST_SIZE] if split == "test" else order[MNIST_SAMPLE_TEST_SIZE:]
    return images[idx].unsqueeze(1).contiguous(), labels[idx].contiguous()


def handwritten_digits(split: str, prof: env.Profile | None = None,
                       root: str | os.PathLike | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """The digit data a lesson uses in the active profile, cut to the profile's size.

    MNIST for ``cpu`` and ``gpu``; the shipped 5,000-digit MNIST sample (:func:`mnist_sample`) for
    ``smoke``, and as the fallback, with a warning that says so, when MNIST cannot be downloaded.
    Returns ``(images uint8 N x 1 x 28 x 28, labels int64 N)``.
    """
    import warnings

    prof = prof or env.profile()
    if prof.dataset == "mnist":
        try:
            images, labels = mnist(split, root=root)
        except RuntimeError as err:
            warnings.warn(f"{err}\n→ Using the 5,000-digit MNIST sample shipped with the course instead "
                          "(4,000 train / 1,000 test): results are not comparable with full MNIST.",
                          stacklevel=2)
            images, labels = mnist_sample(split)
    else:
        images, labels = mnist_sample(split)
    n = prof.train_size if split == "train" else prof.test_size
    return take(images, labels, n)


def take(images: torch.Tensor, labels: torch.Tensor, n: int | None,
         seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """A seeded random subset of ``n`` examples (all of them when ``n`` is None or too big)."""
    if n is None or n >= len(labels):
        return images, labels
    idx = torch.randperm(len(labels), generator=torch.Generator().manual_seed(seed))[:n]
    return images[idx], labels[idx]


def _check_split(split: str) -> None:
    if split not in ("train", "test"):
        raise ValueError(f"Unknown split {split!r}: expected 'train' or 'test'.")


# ----------------------------------------------------------------------------------------------
# The batch loader


def _generator(device: torch.device, seed: int) -> torch.Generator:
    """A seeded generator on ``device`` when it has one (random numbers drawn there need no copy
    from the host, which would stall a GPU every batch), else on the CPU."""
    try:
        return torch.Generator(device=device).manual_seed(seed)
    except RuntimeError:
        return torch.Generator().manual_seed(seed)


class TensorLoader:
    """Batches from uint8 image tensors that live on the training device.

    Takes ``images`` (uint8 ``N x C x H x W``) and ``labels`` (int64 ``N``); moves them to
    ``device`` once. Each iteration yields ``(x float32 B x C x H x W normalized, y int64 B)``.
    Shuffling uses a seeded generator (``seed + epoch``), so an epoch's order is reproducible
    and a resumed run sees the same batches. ``augment`` is an optional function applied to the
    whole uint8 batch on the device (e.g. random crops and flips), never per sample.
    """

    def __init__(self, images: torch.Tensor, labels: torch.Tensor, batch_size: int = 64, *,
                 shuffle: bool = False, device: torch.device | str | None = None,
                 mean: Sequence[float] | None = None, std: Sequence[float] | None = None,
                 seed: int = 0, drop_last: bool = False, channels_last: bool = False,
                 augment: Callable[[torch.Tensor, torch.Generator], torch.Tensor] | None = None):
        if images.dim() != 4:
            raise ValueError(f"Expected images of shape N x C x H x W, got {tuple(images.shape)}.")
        if len(images) != len(labels):
            raise ValueError(f"{len(images)} images but {len(labels)} labels: expected the same number.")
        if batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, got {batch_size}.")
        self.device = torch.device(device) if device is not None else env.device()
        self.images = images.to(self.device)
        self.labels = labels.to(self.device)
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.drop_last = drop_last
        self.channels_last = channels_last
        self.augment = augment
        self.seed = seed
        self.epoch = 0
        if mean is None or std is None:
            mean, std = default_normalization(images.shape[1])
        mean = torch.tensor(mean, dtype=torch.float32, device=self.device).view(1, -1, 1, 1)
        std = torch.tensor(std, dtype=torch.float32, device=self.device).view(1, -1, 1, 1)
        # (x / 255 - mean) / std as one multiply and one add, done in place on the batch
        self._scale = 1.0 / (255.0 * std)
        self._shift = -mean / std

    def __len__(self) -> int:
        n = len(self.labels)
        return n // self.batch_size if self.drop_last else -(-n // self.batch_size)

    def set_epoch(self, epoch: int) -> None:
        """Choose the shuffling of ``epoch`` (called by ``fit``; resuming sets it too)."""
        self.epoch = epoch

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        n = len(self.labels)
        gen = _generator(self.device, self.seed + self.epoch)
        order = torch.randperm(n, generator=gen, device=gen.device).to(self.device) if self.shuffle else None
        for i in range(len(self)):
            if order is None:
                xb = self.images[i * self.batch_size:(i + 1) * self.batch_size]
                yb = self.labels[i * self.batch_size:(i + 1) * self.batch_size]
            else:
                idx = order[i * self.batch_size:(i + 1) * self.batch_size]
                # index_select copies whole images; it is ~10x faster than images[idx] on a CPU
                xb, yb = self.images.index_select(0, idx), self.labels.index_select(0, idx)
            if self.augment is not None:
                xb = self.augment(xb, gen)
            x = xb.float().mul_(self._scale).add_(self._shift)
            if self.channels_last:
                x = x.contiguous(memory_format=torch.channels_last)
            yield x, yb


# ----------------------------------------------------------------------------------------------
# Imagenette and Imagewoof: 10-class subsets of ImageNet published by the fast.ai project

ARCHIVE_URL = "https://s3.amazonaws.com/fast-ai-imageclas/{name}.tgz"
# Imagewoof's MD5s come from catalyst's dataset definitions of the same release whose Imagenette
# values match torchvision's; Imagenette's are read from torchvision itself (see _archive_md5).
IMAGEWOOF_MD5 = {160: "3d200a7be99704a0d7509be2a9fbfe15", 320: "0f46d997ec2264e97609196c95897a44"}
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
IMAGE_SUFFIXES = {".jpeg", ".jpg", ".png"}
CACHE_VERSION = 1


class ImageSplit(NamedTuple):
    """One split of an image dataset: uint8 ``images`` N x 3 x S x S, int64 ``labels`` N and the
    readable ``classes`` (index -> name)."""

    images: torch.Tensor
    labels: torch.Tensor
    classes: list


def archive_name(variant: str, size: int) -> str:
    """``"imagenette2-160"`` and the like; raises ValueError for an unknown variant or size."""
    if variant not in ("imagenette", "imagewoof"):
        raise ValueError(f"Unknown variant {variant!r}: expected 'imagenette' or 'imagewoof'.")
    if size not in (160, 320):
        raise ValueError(f"Unknown archive size {size}: expected 160 or 320 (pixels, shorter side).")
    return f"{variant}2-{size}"


def _archive_md5(variant: str, size: int) -> str:
    if variant == "imagewoof":
        return IMAGEWOOF_MD5[size]
    from torchvision.datasets import Imagenette

    return Imagenette._ARCHIVES[f"{size}px"][1]


def file_md5(path: str | os.PathLike, chunk: int = 1 << 20) -> str:
    """MD5 hex digest of a file, read in chunks."""
    digest = hashlib.md5()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def safe_extract(archive: str | os.PathLike, target: str | os.PathLike) -> None:
    """Extract a tar archive into ``target`` refusing any member that would land outside it
    (absolute paths, ``..``, links pointing out, devices). Raises RuntimeError for a truncated or
    unreadable archive and for an unsafe member."""
    target = Path(target).resolve()
    try:
        with tarfile.open(archive) as tar:
            members = tar.getmembers()
            for m in members:
                dest = (target / m.name).resolve()
                if not dest.is_relative_to(target) or m.isdev() or (
                        (m.issym() or m.islnk()) and not (dest.parent / m.linkname).resolve().is_relative_to(target)):
                    raise RuntimeError(f"Refusing to extract {archive}: member {m.name!r} would escape {target}.")
            if hasattr(tarfile, "data_filter"):
                tar.extractall(target, members=members, filter="data")
            else:  # Python without extraction filters: the members were checked above
                tar.extractall(target, members=members)
    except (tarfile.TarError, EOFError, OSError) as err:
        raise RuntimeError(f"{archive} is truncated or not a valid tar archive ({err}). "
                           "Delete it and download it again.") from err


def _download_archive(name: str, root: Path, md5: str | None, download: bool) -> Path:
    archive = root / f"{name}.tgz"
    url = ARCHIVE_URL.format(name=name)
    if not archive.exists():
        if not download:
            raise FileNotFoundError(
                f"{name} is not in {root}: neither the folder {root / name} nor the archive {archive} exists. "
                f"Download {url} (MD5 {md5}) and put it at {archive}, or call with download=True.")
        from torchvision.datasets.utils import download_url

        part = f"{name}.tgz.part"
        try:
            download_url(url, str(root), filename=part, md5=md5)  # verifies the MD5 of the .part file
        except Exception as err:
            (root / part).unlink(missing_ok=True)
            raise RuntimeError(f"Could not download {url} into {root} ({type(err).__name__}: {err}). "
                               f"Download it by hand and put it at {archive}.") from err
        os.replace(root / part, archive)
    if md5 is not None:
        got = file_md5(archive)
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
        os.replace(work / name, root / name)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return root / name


def _image_files(folder: Path) -> tuple[list[str], list[tuple[Path, int]]]:
    class_dirs = sorted(d for d in folder.iterdir() if d.is_dir())
    if not class_dirs:
        raise RuntimeError(f"{folder} has no class folders: expected {folder}/<class>/<image>.JPEG.")
    files = [(f, label) for label, d in enumerate(class_dirs)
             for f in sorted(d.iterdir()) if f.suffix.lower() in IMAGE_SUFFIXES]
    return [d.name for d in class_dirs], files


def _load_resized(path: Path, resolution: int) -> np.ndarray:
    """Decode an image, resize its shorter side to ``resolution`` and center-crop a square."""
    from PIL import Image, ImageOps

    with Image.open(path) as img:
        img = img.convert("RGB")
        img.draft("RGB", (resolution, resolution))  # JPEG: decode at a reduced scale when possible
        return np.asarray(ImageOps.fit(img, (resolution, resolution), Image.BILINEAR))


def imagenette(split: str = "train", variant: str = "imagenette", size: int = 160,
               root: str | os.PathLike | None = None, download: bool = True,
               resolution: int | None = None, md5: str | None = "published",
               progress: bool = True) -> ImageSplit:
    """Imagenette or Imagewoof as one uint8 tensor, cached at the training resolution.

    ``split`` is ``"train"`` or ``"val"``; ``size`` picks the published archive (160 or 320 px);
    ``resolution`` (default ``size``) is the square side of the cached images. The first call
    downloads ``<root>/<variant>2-<size>.tgz``, checks its published MD5, extracts it safely and
    decodes every image once (progress bar) into ``<root>/<variant>2-<size>-<split>-<res>px.pt``,
    written atomically; later calls load that cache in seconds. A cache that does not match the
    folder (another resolution, another image count, another format version) is rebuilt, not
    trusted. Returns an :class:`ImageSplit` ``(images N x 3 x res x res, labels N, classes)``.
    """
    from tqdm.auto import tqdm

    if split not in ("train", "val"):
        raise ValueError(f"Unknown split {split!r}: expected 'train' or 'val'.")
    name = archive_name(variant, size)
    resolution = resolution or size
    root = data_root(root)
    folder = root / name
    cache = root / f"{name}-{split}-{resolution}px.pt"

    if not (folder / split).is_dir():
        expected = _archive_md5(variant, size) if md5 == "published" else md5
        archive = _download_archive(name, root, expected, download)
        _extract(archive, name, root)
    classes, files = _image_files(folder / split)
    meta = {"version": CACHE_VERSION, "name": name, "split": split, "resolution": resolution,
            "count": len(files), "classes": classes}
    if cache.exists():
        try:
            stored = torch.load(cache, weights_only=True)
            if stored["meta"] == meta and tuple(stored["images"].shape[1:]) == (3, resolution, resolution):
                return ImageSplit(stored["images"], stored["labels"], _readable(classes))
            print(f"{cache.name} does not match {folder / split} (resolution, image count or version): rebuilding it.")
        except Exception as err:  # unreadable or truncated cache: rebuild it
            print(f"{cache.name} could not be read ({type(err).__name__}): rebuilding it.")
    images = torch.empty(len(files), 3, resolution, resolution, dtype=torch.uint8)
    for i, (path, _) in enumerate(tqdm(files, desc=f"caching {name}/{split} at {resolution}px",
                                       disable=not progress)):
        images[i] = torch.from_numpy(_load_resized(path, resolution).copy()).permute(2, 0, 1)
    labels = torch.tensor([label for _, label in files], dtype=torch.long)
    atomic_write(cache, lambda f: torch.save({"meta": meta, "images": images, "labels": labels}, f))
    return ImageSplit(images, labels, _readable(classes))


def _readable(folders: list[str]) -> list[str]:
    return [WNID_NAMES.get(f, f) for f in folders]


# Real photos shipped inside scikit-image, used to build an offline folder in Imagenette's layout.
OFFLINE_PHOTOS = ("astronaut", "chelsea", "coffee", "rocket", "hubble_deep_field", "immunohistochemistry",
                  "retina", "camera", "coins", "clock")


def offline_imagenette(root: str | os.PathLike | None = None, name: str = "imagenette2-160",
                       train_per_class: int = 12, val_per_class: int = 4, size: int = 160,
                       seed: int = 0) -> Path:
    """Write (once) a small folder ``<root>/offline/<name>/{train,val}/<photo>/*.JPEG`` in the
    Imagenette layout from scikit-image's real photos: one class per photo, random crops and flips.

    Used by the ``smoke`` profile and the tests, where there is no internet. Returns the root to
    pass to :func:`imagenette` (``<root>/offline``).
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
        os.replace(work / name, base / name)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return base


def random_resized_crop_flip(batch: torch.Tensor, generator: torch.Generator,
                             scale: tuple[float, float] = (0.35, 1.0),
                             ratio: tuple[float, float] = (3 / 4, 4 / 3)) -> torch.Tensor:
    """Augment a whole batch on its device: a random crop per image (area share in ``scale``,
    aspect ratio in ``ratio``) resized back to the batch's size, and a horizontal flip half the time.

    Takes uint8 (or float 0..255) ``B x C x H x W``; returns float32 ``B x C x H x W`` in 0..255. One
    ``affine_grid``/``grid_sample`` call does all images: no per-image Python work.
    """
    b, dev = batch.shape[0], generator.device  # random numbers where the generator lives
    area = torch.empty(b, device=dev).uniform_(*scale, generator=generator)
    log_r = torch.empty(b, device=dev).uniform_(float(np.log(ratio[0])), float(np.log(ratio[1])), generator=generator)
    r = log_r.exp()
    w = (area * r).sqrt().clamp(max=1.0)  # crop width and height as shares of the image
    h = (area / r).sqrt().clamp(max=1.0)
    cx = (torch.rand(b, generator=generator, device=dev) * 2 - 1) * (1 - w)
    cy = (torch.rand(b, generator=generator, device=dev) * 2 - 1) * (1 - h)
    flip = torch.where(torch.rand(b, generator=generator, device=dev) < 0.5, -1.0, 1.0)
    theta = torch.zeros(b, 2, 3, device=dev)
    theta[:, 0, 0], theta[:, 0, 2] = w * flip, cx
    theta[:, 1, 1], theta[:, 1, 2] = h, cy
    theta = theta.to(batch.device)
    grid = F.affine_grid(theta, list(batch.shape), align_corners=False)
    return F.grid_sample(batch.float(), grid, mode="bilinear", padding_mode="reflection", align_corners=False)


def random_crop_flip(batch: torch.Tensor, generator: torch.Generator, size: int) -> torch.Tensor:
    """AlexNet's own augmentation (2012): a random ``size x size`` crop of each image (the paper took
    224 x 224 patches of 256 x 256 images) and a horizontal flip half the time.

    Takes uint8 ``B x C x H x W`` with H, W >= ``size``; returns uint8 ``B x C x size x size``. One
    ``index_select`` of rows and one ``gather`` of columns on the bytes: no interpolation and no
    per-image Python work.
    """
    b, c, h, w = batch.shape
    if size > min(h, w):
        raise ValueError(f"Cannot crop {size}x{size} out of {h}x{w} images: cache them larger (e.g. {round(size * 8 / 7)}).")
    dev = generator.device
    steps = torch.arange(size, device=dev)
    y0 = torch.randint(0, h - size + 1, (b, 1), generator=generator, device=dev)
    x0 = torch.randint(0, w - size + 1, (b, 1), generator=generator, device=dev)
    flip = torch.rand(b, 1, generator=generator, device=dev) < 0.5
    rows = (y0 + steps).to(batch.device)                                     # B x size
    cols = (x0 + torch.where(flip, size - 1 - steps, steps)).to(batch.device)  # B x size
    # whole rows first (index_select on a (B*C*H) x W view: fast contiguous copies), then the columns
    planes = torch.arange(b * c, device=batch.device).view(b, c, 1) * h
    picked = batch.contiguous().view(-1, w).index_select(0, (planes + rows[:, None, :]).reshape(-1))
    return picked.view(b, c, size, w).gather(3, cols[:, None, None, :].expand(b, c, size, size))


def center_crop(images: torch.Tensor, size: int) -> torch.Tensor:
    """The central ``size x size`` square of ``N x C x H x W`` images (how AlexNet-style training
    evaluates: train on random crops, test on the center)."""
    h, w = images.shape[-2:]
    if size > min(h, w):
        raise ValueError(f"Cannot crop {size}x{size} out of {h}x{w} images.")
    top, left = (h - size) // 2, (w - size) // 2
    return images[..., top:top + size, left:left + size]


def crop_flip(size: int):
    """``random_crop_flip`` at ``size``, as an ``augment`` function for :class:`TensorLoader` and ``fit``."""
    return lambda batch, generator: random_crop_flip(batch, generator, size)
