"""Where the course runs: device, seeding, Colab detection and the active profile.

Every size a lesson uses comes from :func:`profile`, so that one environment variable,
``COURSE_PROFILE``, scales the whole course from a CI smoke test to the real GPU run.
"""

from __future__ import annotations

import os
import random
import sys
from dataclasses import dataclass

import numpy as np
import torch

PROFILE_NAMES = ("smoke", "cpu", "gpu")


@dataclass(frozen=True)
class Profile:
    """The sizes one profile gives the lessons.

    ``lenet_epochs``, ``batch_size``, ``lenet_lr`` and ``lenet_label_smoothing``: lesson 02's recipe for LeNet-1
    (and the lessons that train it again), the one place it is set (``benchmarks/lenet1_mnist.py
    --recipe-steps`` measures how the ``cpu`` one was found). ``dataset`` is ``"mnist-sample"`` (the 5,000 real
    MNIST digits shipped with the course: 4,000 train, 1,000 test) or ``"mnist"``. Sizes of ``None`` mean the
    whole split. ``seeds`` is how many seeds every claim is measured over.
    """

    name: str
    dataset: str
    train_size: int | None
    test_size: int | None
    lenet_epochs: int
    batch_size: int
    lenet_lr: float
    lenet_label_smoothing: float
    seeds: int
    # lesson 03: training dynamics (snapshots after each epoch and after the steps in dynamics_steps;
    # undertrained_step: the snapshot the smoothness claim calls undertrained)
    dynamics_train_size: int | None
    dynamics_epochs: int
    dynamics_steps: tuple[int, ...]
    undertrained_step: int
    probe_size: int
    sweep_train_size: int | None
    sweep_epochs: int
    lr_sweep: tuple[float, ...]
    overfit_size: int
    overfit_epochs: int
    # lessons 04-05: AlexNet on Imagenette (smoke: the offline folder of scikit-image photos)
    image_size: int
    imagenette_train_size: int | None
    alexnet_epochs: int
    alexnet_batch_size: int
    alexnet_lr: float
    # lesson 09: AlexNet and the next decade's changes on Imagenette. next_width scales every layer;
    # next_lrs: the learning rates each change is tried at (on a held-out quarter of the training images),
    # next_seeds: the seeds of its table; transfer: next_pretrain_epochs on five classes, then each few-label
    # run gets at least next_transfer_steps steps, at the best of next_transfer_lrs for its way
    next_image_size: int
    next_width: float
    next_train_size: int | None
    next_epochs: int
    next_batch_size: int
    next_lrs: tuple[float, ...]
    next_seeds: int
    next_pretrain_epochs: int
    next_transfer_steps: int
    next_transfer_lrs: tuple[float, ...]

    @property
    def lenet_recipe(self) -> dict:
        """Lesson 02's LeNet-1 recipe as ``train.fit``'s keyword arguments: ``{"epochs", "lr", "batch_size",
        "label_smoothing"}``, for the lessons and claims that train LeNet-1 again."""
        return {"epochs": self.lenet_epochs, "lr": self.lenet_lr, "batch_size": self.batch_size,
                "label_smoothing": self.lenet_label_smoothing}


_PROFILES = {
    "smoke": Profile(
        name="smoke", dataset="mnist-sample", train_size=None, test_size=None, lenet_epochs=5,
        batch_size=64, lenet_lr=0.3, lenet_label_smoothing=0.03, seeds=3, dynamics_train_size=1000,
        dynamics_epochs=10, dynamics_steps=(4, 8),
        undertrained_step=16, probe_size=200, sweep_train_size=1500, sweep_epochs=4,
        lr_sweep=(0.03, 0.1, 0.3, 1.0, 3.0, 10.0),
        overfit_size=300, overfit_epochs=40,
        image_size=80, imagenette_train_size=None, alexnet_epochs=3, alexnet_batch_size=16, alexnet_lr=0.03,
        next_image_size=64, next_width=0.25, next_train_size=None, next_epochs=2, next_batch_size=16,
        next_lrs=(0.02,), next_seeds=2, next_pretrain_epochs=2, next_transfer_steps=8, next_transfer_lrs=(0.02,),
    ),
    "cpu": Profile(
        name="cpu", dataset="mnist", train_size=None, test_size=None, lenet_epochs=4,
        batch_size=128, lenet_lr=0.3, lenet_label_smoothing=0.03, seeds=3, dynamics_train_size=None,
        dynamics_epochs=2, dynamics_steps=(25, 50, 100, 200, 400),
        undertrained_step=50, probe_size=500, sweep_train_size=None, sweep_epochs=1,
        lr_sweep=(0.03, 0.1, 0.3, 1.0, 3.0, 10.0),
        overfit_size=500, overfit_epochs=60,
        image_size=112, imagenette_train_size=None, alexnet_epochs=4, alexnet_batch_size=64, alexnet_lr=0.02,
        next_image_size=96, next_width=0.25, next_train_size=4000, next_epochs=6, next_batch_size=64,
        next_lrs=(0.025, 0.06, 0.15), next_seeds=5, next_pretrain_epochs=8, next_transfer_steps=200,
        next_transfer_lrs=(0.005, 0.02, 0.08),
    ),
    "gpu": Profile(
        name="gpu", dataset="mnist", train_size=None, test_size=None, lenet_epochs=20,
        batch_size=64, lenet_lr=0.3, lenet_label_smoothing=0.03, seeds=5, dynamics_train_size=None,
        dynamics_epochs=4, dynamics_steps=(25, 50, 100, 200, 400),
        undertrained_step=50, probe_size=1000, sweep_train_size=None, sweep_epochs=2,
        lr_sweep=(0.01, 0.03, 0.1, 0.3, 1.0, 3.0, 10.0),
        overfit_size=1000, overfit_epochs=100,
        image_size=128, imagenette_train_size=None, alexnet_epochs=30, alexnet_batch_size=128, alexnet_lr=0.02,
        next_image_size=128, next_width=1.0, next_train_size=None, next_epochs=30, next_batch_size=128,
        next_lrs=(0.01, 0.02, 0.05, 0.1, 0.2), next_seeds=5, next_pretrain_epochs=30, next_transfer_steps=1000,
        next_transfer_lrs=(0.002, 0.005, 0.02, 0.05, 0.1),
    ),
}


def profile(name: str | None = None) -> Profile:
    """Return the active :class:`Profile`.

    Takes an explicit ``name``, else ``$COURSE_PROFILE``, else ``"gpu"`` when CUDA is
    available and ``"cpu"`` otherwise. Raises ``ValueError`` listing the valid names for an
    unknown one.
    """
    chosen = name or os.environ.get("COURSE_PROFILE") or ("gpu" if torch.cuda.is_available() else "cpu")
    chosen = chosen.strip().lower()
    if chosen not in _PROFILES:
        raise ValueError(
            f"Unknown course profile {chosen!r}: expected one of {', '.join(PROFILE_NAMES)} "
            "(set COURSE_PROFILE, or leave it unset to choose automatically)."
        )
    return _PROFILES[chosen]


def device() -> torch.device:
    """The best device here: CUDA, then Apple's MPS, then the CPU."""
    if torch.cuda.is_available():
        return torch.device("cuda")
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def resolve_device(value=None) -> torch.device:
    """The device a learner means: ``None`` or ``"auto"`` the best one here (:func:`device`); ``"gpu"`` the
    best accelerator (CUDA, then MPS); ``"cpu"``, ``"cuda"``, ``"cuda:1"``, ``"mps"`` in any case, or a
    ``torch.device``. Raises ``ValueError`` naming the devices this machine has when the one asked for
    is not here (e.g. ``"cuda"`` on a laptop, copied from a Colab cell), or the name is unknown."""
    if value is None:
        return device()
    if isinstance(value, torch.device):
        chosen = value
    elif isinstance(value, str):
        name = value.strip().lower()
        if name == "auto":
            return device()
        if name == "gpu":
            chosen = device()
            if chosen.type == "cpu":
                raise ValueError(f"device={value!r} asks for a GPU, but this machine has none: use device='cpu', or "
                                 "leave device unset to use the best device here.")
            return chosen
        try:
            chosen = torch.device(name)
        except RuntimeError:
            raise ValueError(f"Unknown device {value!r}: expected 'cpu', 'cuda', 'cuda:N', 'mps', 'gpu' or "
                             "'auto'.") from None
    else:
        raise TypeError("device must be a name such as 'cpu' or 'cuda', or a torch.device, got "
                        f"{type(value).__name__}.")
    here = ["cpu"] + [f"cuda:{i}" for i in range(torch.cuda.device_count())]
    mps = getattr(torch.backends, "mps", None)
    here += ["mps"] if mps is not None and mps.is_available() else []
    if chosen.type == "cuda" and (not torch.cuda.is_available() or (chosen.index or 0) >= torch.cuda.device_count()):
        raise ValueError(f"device={value!r}: this machine has no such CUDA GPU (devices here: {', '.join(here)}). "
                         "Use device='cpu', or leave device unset to use the best device here.")
    if chosen.type == "mps" and "mps" not in here:
        raise ValueError(f"device={value!r}: this machine has no Apple GPU (devices here: {', '.join(here)}).")
    if chosen.type not in ("cpu", "cuda", "mps", "meta"):
        raise ValueError(f"Unknown device {value!r}: expected 'cpu', 'cuda', 'cuda:N', 'mps', 'gpu' or 'auto'.")
    return chosen


def seed_everything(seed: int = 0) -> torch.Generator:
    """Seed Python, NumPy and torch (all devices); return a CPU ``torch.Generator`` seeded alike."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    return torch.Generator().manual_seed(seed)


def in_colab() -> bool:
    """True when running inside Google Colab."""
    return "google.colab" in sys.modules or "COLAB_RELEASE_TAG" in os.environ


def machine() -> str:
    """The machine in words: its processor and cores, and its GPU when there is one (e.g. ``"AMD EPYC 7B13,
    2 cores"``)."""
    import platform

    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next((line.split(":", 1)[1].strip() for line in f if line.startswith("model name")), cpu)
    except OSError:
        pass
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    gpu = f", GPU {torch.cuda.get_device_name(0)}" if torch.cuda.is_available() else ""
    return f"{cpu}, {cores} cores{gpu}"


def describe() -> str:
    """Two lines naming the profile, device and library versions, then the machine and the date: every
    lesson prints them first (with the data it reads)."""
    import datetime

    import torchvision

    p = profile()
    dev = device()
    gpu = f" ({torch.cuda.get_device_name(0)})" if dev.type == "cuda" else ""
    return (
        f"profile={p.name} device={dev.type}{gpu} torch={torch.__version__} "
        f"torchvision={torchvision.__version__} colab={in_colab()}\n"
        f"run on {machine()}, {datetime.date.today().isoformat()}"
    )
