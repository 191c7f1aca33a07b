"""Handwritten digits: MNIST through torchvision, and the 5,000 real MNIST digits shipped with the
course (``mnist_sample/``) for the ``smoke`` profile and for working offline.

Every function returns ``(images uint8 N x 1 x 28 x 28, labels int64 N)``.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch

from . import env
from .files import DataFolderError, data_root
from .loader import take


class MNISTUnavailable(RuntimeError):
    """MNIST's files are not on disk and could not be downloaded (the lessons then fall back to the
    shipped sample). A file that is there but wrong raises a plain ``RuntimeError`` instead."""


# MD5 of each of MNIST's four files once unpacked (torchvision checks the .gz files; a learner may have
# the unpacked ones). The official .gz files, gunzipped, give exactly these.
MNIST_RAW_MD5 = {
    "train-images-idx3-ubyte": "6bbc9ace898e44ae57da46a324031adb",
    "train-labels-idx1-ubyte": "a25bea736e30d166cdddb491f175f624",
    "t10k-images-idx3-ubyte": "2646ac647ad5339dbf082846283269ea",
    "t10k-labels-idx1-ubyte": "27ae3e4e09519cfbb04c329615203637",
}


def mnist(split: str = "train", root: str | os.PathLike | None = None,
          download: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
    """MNIST through torchvision (its own mirrors and MD5 checks).

    Takes ``split`` ``"train"`` (60,000 images) or ``"test"`` (10,000). Returns
    ``(images uint8 N x 1 x 28 x 28, labels int64 N)``. Files put by hand into ``<root>/MNIST/raw/``
    are used as they are: the four ``.gz`` files (checked against torchvision's MD5s, then unpacked)
    or the four unpacked files (checked against :data:`MNIST_RAW_MD5`). A file there that fails its
    check raises ``RuntimeError`` naming it. When the files are missing and cannot be downloaded,
    raises :class:`MNISTUnavailable` naming exactly the files, where they go, and :func:`mnist_sample`,
    the offline fallback. Files whose image and label counts differ, or with labels outside 0-9, raise
    ``ValueError`` naming them.
    """
    from torchvision.datasets import MNIST

    _check_split(split)
    folder = data_root(root)
    raw = folder / "MNIST" / "raw"
    _check_hand_placed(raw, MNIST.resources)
    try:
        ds = MNIST(str(folder), train=(split == "train"), download=download)
    except Exception as err:  # torchvision raises RuntimeError or URLError depending on the failure
        names = ", ".join(name for name, _ in MNIST.resources)
        raise MNISTUnavailable(
            f"MNIST ({split}) is not in {raw} and could not be downloaded ({type(err).__name__}: {err}). "
            f"Put exactly these four files there by hand: {names} (or the same four unpacked); or work "
            "offline with course_lib.digits.mnist_sample(), 5,000 real MNIST digits shipped with the course "
            "(set COURSE_PROFILE=smoke to make the lessons use it)."
        ) from err
    images, labels = ds.data.unsqueeze(1).contiguous(), ds.targets.long()  # N x 1 x 28 x 28, uint8
    prefix = "train" if split == "train" else "t10k"
    files = f"{raw / f'{prefix}-images-idx3-ubyte'} and {raw / f'{prefix}-labels-idx1-ubyte'}"
    if len(images) != len(labels):
        raise ValueError(f"{files} hold {len(images)} images but {len(labels)} labels: expected as many of "
                         "each. Replace them with MNIST's own files.")
    if len(labels) and (labels.min() < 0 or labels.max() > 9):
        raise ValueError(f"{files}: labels run from {int(labels.min())} to {int(labels.max())}, expected digits "
                         "0-9. Replace them with MNIST's own files.")
    return images, labels


# (path, size, modification time) of unpacked files already checked in this process: hashing 47 MB
# once per session is enough.
_CHECKED: set = set()


def _check_hand_placed(raw: Path, resources) -> None:
    """Check the MNIST files a learner put in ``raw`` by hand: each ``.gz`` against torchvision's MD5
    (then unpacked, atomically), each unpacked file against :data:`MNIST_RAW_MD5`. A file that fails
    raises ``RuntimeError`` naming it and what to do."""
    import gzip

    from torchvision.datasets.utils import check_integrity

    from .files import atomic_write

    for name, md5 in resources:
        gz, unpacked = raw / name, raw / name[:-3]
        if gz.exists() and not unpacked.exists():
            if not check_integrity(str(gz), md5):
                raise RuntimeError(f"{gz} is not MNIST's file (its MD5 is not {md5}): it is truncated or another "
                                   "file. Download it again, or remove it to let torchvision download it.")
            atomic_write(unpacked, lambda f: f.write(gzip.decompress(gz.read_bytes())))
            stat = unpacked.stat()
            _CHECKED.add((str(unpacked), stat.st_size, stat.st_mtime_ns))   # made from a checked file
        elif unpacked.exists():
            stat = unpacked.stat()
            key = (str(unpacked), stat.st_size, stat.st_mtime_ns)
            expected = MNIST_RAW_MD5.get(unpacked.name)
            if key in _CHECKED or expected is None:
                continue
            if not check_integrity(str(unpacked), expected):
                raise RuntimeError(f"{unpacked} is not MNIST's file (its MD5 is not {expected}, the official "
                                   f"{name} unpacked): it is truncated or another file. Replace it, or remove "
                                   "it to let torchvision download MNIST again.")
            _CHECKED.add(key)


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


def load(split: str, prof: env.Profile | None = None,
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
        except (MNISTUnavailable, DataFolderError) as err:
            warnings.warn(f"{err}\n→ Using the 5,000-digit MNIST sample shipped with the course instead "
                          "(4,000 train / 1,000 test): results are not comparable with full MNIST.",
                          stacklevel=2)
            images, labels = mnist_sample(split)
    else:
        images, labels = mnist_sample(split)
    n = prof.train_size if split == "train" else prof.test_size
    return take(images, labels, n)


def _check_split(split: str) -> None:
    if split not in ("train", "test"):
        raise ValueError(f"Unknown split {split!r}: expected 'train' or 'test'.")
