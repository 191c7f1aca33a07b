"""Handwritten digits: MNIST through torchvision, and the 5,000 real MNIST digits shipped with the
course (``mnist_sample/``) for the ``smoke`` profile and for working offline.

Every function returns ``(images uint8 N x 1 x 28 x 28, labels int64 N)``.
"""

from __future__ import annotations

import gzip
import os
import zlib
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
    ``(images uint8 N x 1 x 28 x 28, labels int64 N)``. A folder named in ``$COURSE_MNIST`` (when ``root``
    is not given) that holds the four files, ``.gz`` or unpacked, is read in place, each file checked
    against its MD5. Files put by hand into ``<root>/MNIST/raw/`` are used as they are: the four ``.gz`` files
    (checked against torchvision's MD5s, then unpacked)
    or the four unpacked files (checked against :data:`MNIST_RAW_MD5`). A file there that fails its
    check raises ``RuntimeError`` naming it. When the files are missing and cannot be downloaded,
    raises :class:`MNISTUnavailable` naming exactly the files, where they go, and :func:`mnist_sample`,
    the offline fallback. Files whose image and label counts differ, or with labels outside 0-9, raise
    ``ValueError`` naming them.
    """
    from torchvision.datasets import MNIST

    _check_split(split)
    given = os.environ.get(MNIST_SETTING) if root is None else None
    if given:
        return _checked_pair(_from_folder(Path(given).expanduser(), split, MNIST.resources))
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
    prefix = "train" if split == "train" else "t10k"
    files = f"{raw / f'{prefix}-images-idx3-ubyte'} and {raw / f'{prefix}-labels-idx1-ubyte'}"
    return _checked_pair((ds.data.unsqueeze(1).contiguous(), ds.targets.long(), files))


def _checked_pair(found: tuple) -> tuple[torch.Tensor, torch.Tensor]:
    """``(images N x 1 x 28 x 28 uint8, labels int64)`` from ``(images, labels, the files' names)``, after
    checking that the counts agree and the labels are digits."""
    images, labels, files = found
    if len(images) != len(labels):
        raise ValueError(f"{files} hold {len(images)} images but {len(labels)} labels: expected as many of "
                         "each. Replace them with MNIST's own files.")
    if len(labels) and (labels.min() < 0 or labels.max() > 9):
        raise ValueError(f"{files}: labels run from {int(labels.min())} to {int(labels.max())}, expected digits "
                         "0-9. Replace them with MNIST's own files.")
    return images, labels


# A folder that holds MNIST's four files (.gz or unpacked), e.g. a shared copy: read in place, never written.
MNIST_SETTING = "COURSE_MNIST"


def _from_folder(folder: Path, split: str, resources) -> tuple[torch.Tensor, torch.Tensor, str]:
    """The split's two files from ``folder`` ($COURSE_MNIST), each checked against its MD5 (the .gz file's
    as torchvision publishes it, or the unpacked file's), read where they are."""
    from torchvision.datasets.utils import check_integrity

    prefix = "train" if split == "train" else "t10k"
    out = []
    for kind, dims in (("images-idx3", 3), ("labels-idx1", 1)):
        unpacked = folder / f"{prefix}-{kind}-ubyte"
        gz = unpacked.with_name(unpacked.name + ".gz")
        if unpacked.exists():
            path, md5 = unpacked, MNIST_RAW_MD5[unpacked.name]
        elif gz.exists():
            path, md5 = gz, dict(resources)[gz.name]
        else:
            raise MNISTUnavailable(f"${MNIST_SETTING} is {folder}, which holds neither {unpacked.name} nor {gz.name}: "
                                   "put MNIST's four files there (.gz or unpacked), or unset it.")
        key = (str(path), path.stat().st_size, path.stat().st_mtime_ns)
        if key not in _CHECKED and not check_integrity(str(path), md5):
            raise RuntimeError(f"{path} is not MNIST's file (its MD5 is not {md5}): it is truncated or another file. "
                               f"Replace it, or unset ${MNIST_SETTING}.")
        _CHECKED.add(key)
        out.append(read_idx(path, dims))
    return out[0].unsqueeze(1).contiguous(), out[1].long(), f"{folder}/{prefix}-*-ubyte"


# (path, size, modification time) of unpacked files already checked in this process: hashing 47 MB
# once per session is enough.
_CHECKED: set = set()


def _check_hand_placed(raw: Path, resources) -> None:
    """Check the MNIST files a learner put in ``raw`` by hand: each ``.gz`` against torchvision's MD5
    (then unpacked, atomically), each unpacked file against :data:`MNIST_RAW_MD5`. A file that fails
    raises ``RuntimeError`` naming it and what to do."""
    from torchvision.datasets.utils import check_integrity

    from .files import atomic_write

    for name, md5 in resources:
        gz, unpacked = raw / name, raw / name[:-3]
        if gz.exists() and not unpacked.exists():
            if not check_integrity(str(gz), md5):
                raise RuntimeError(f"{gz} is not MNIST's file (its MD5 is not {md5}): it is truncated or another "
                                   "file. Download it again, or remove it to let torchvision download it.")
            # the bytes are read now, not when the writer runs: a writer must not read the loop's variables
            data = gzip.decompress(gz.read_bytes())
            atomic_write(unpacked, lambda f, data=data: f.write(data))
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
    naming the file when it is a broken gzip file, when its header is not an unsigned-byte IDX header of
    that many dimensions, or when its size does not match the header.
    """
    path = Path(path)
    try:
        with (gzip.open if path.suffix == ".gz" else open)(path, "rb") as f:
            raw = f.read()
    except (gzip.BadGzipFile, EOFError, zlib.error) as err:
        raise ValueError(f"{path} is not a whole gzip file ({type(err).__name__}: {err}): it is truncated or was "
                         "not compressed with gzip. Download it again.") from None
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


# Set (to 1) where a run must be on real data, e.g. the published solutions: a missing MNIST is then an
# error, never the shipped sample in its place.
REQUIRE_SETTING = "COURSE_REQUIRE_DATA"


def for_profile(split: str, prof: env.Profile | None = None,
                root: str | os.PathLike | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """The digits a lesson uses in the active profile, cut to the profile's size.

    MNIST for ``cpu`` and ``gpu``; the shipped 5,000-digit MNIST sample (:func:`mnist_sample`) for
    ``smoke``, and as the fallback, with a warning that says so, when MNIST cannot be found or downloaded
    (unless ``$COURSE_REQUIRE_DATA`` is set: then :class:`MNISTUnavailable` is raised).
    Returns ``(images uint8 N x 1 x 28 x 28, labels int64 N)``.
    """
    import warnings

    prof = prof or env.profile()
    if prof.dataset == "mnist":
        try:
            images, labels = mnist(split, root=root)
        except (MNISTUnavailable, DataFolderError) as err:
            if os.environ.get(REQUIRE_SETTING):
                raise MNISTUnavailable(f"{err}\n(${REQUIRE_SETTING} is set: this run must be on all of MNIST, so "
                                       "the shipped sample is not used in its place.)") from None
            warnings.warn(f"{err}\n→ Using the 5,000-digit MNIST sample shipped with the course instead "
                          "(4,000 train / 1,000 test): results are not comparable with full MNIST.",
                          stacklevel=2)
            images, labels = mnist_sample(split)
    else:
        images, labels = mnist_sample(split)
    n = prof.train_size if split == "train" else prof.test_size
    return take(images, labels, n)


def describe(prof: env.Profile | None = None) -> str:
    """One line saying which digits the profile's lessons read, e.g. ``"MNIST: 60,000 training / 10,000 test
    digits"`` (every lesson prints it first)."""
    train, test = len(for_profile("train", prof)[1]), len(for_profile("test", prof)[1])
    name = "MNIST" if train + test > 5000 else "the shipped 5,000-digit MNIST sample"
    return f"{name}: {train:,} training / {test:,} test digits"


def _check_split(split: str) -> None:
    if split not in ("train", "test"):
        raise ValueError(f"Unknown split {split!r}: expected 'train' or 'test'.")
