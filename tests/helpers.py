"""Test helpers: files in the real formats, and a kernel that runs lessons as the tests do."""

import gzip
import hashlib
import struct
from pathlib import Path

import numpy as np


def write_idx(path: Path, array: np.ndarray) -> None:
    """Write a uint8 array in the IDX format MNIST uses (magic 0x0803 images, 0x0801 labels), gzipped."""
    array = np.ascontiguousarray(array, dtype=np.uint8)
    header = struct.pack(">HBB", 0, 0x08, array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
    with gzip.open(path, "wb") as f:
        f.write(header + array.tobytes())


def md5(path: Path) -> str:
    return hashlib.md5(Path(path).read_bytes()).hexdigest()


def lesson_client(nb):
    """An nbclient kernel that runs lesson ``nb`` in the ``smoke`` profile, from the lessons' folder."""
    import os

    from nbclient import NotebookClient

    from course_lib.instructor import course

    os.environ["COURSE_PROFILE"] = "smoke"
    os.environ["MPLBACKEND"] = "agg"
    return NotebookClient(nb, timeout=600, kernel_name="python3",
                          resources={"metadata": {"path": str(course.ROOT / "notebooks")}})


def edge_detectors():
    """A network of two 5 x 5 edge filters, vertical (channel 0) and horizontal (channel 1), no bias: a unit whose
    best image is known."""
    import torch
    import torch.nn as nn

    conv = nn.Conv2d(1, 2, 5, bias=False)
    edge = torch.tensor([-1.0, -1.0, 0.0, 1.0, 1.0]).expand(5, 5)
    with torch.no_grad():
        conv.weight.copy_(torch.stack([edge, edge.T])[:, None])
    return nn.Sequential(conv)
