"""Building the course's reference networks (``course_lib/reference_nets/``): train one, write its weights and
its record (how it was made, its data's checksums, its accuracy, the SHA-256 of the bytes written).

    python -m course_lib.instructor references build lenet1-mnist                    # all of MNIST, 10 epochs
    python -m course_lib.instructor references build alexnet-imagenette --epochs 10  # Imagenette, the gpu recipe
    python -m course_lib.instructor references list
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import hashlib
import io
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import torch
from torchvision.datasets.utils import calculate_md5

from .. import digits, env, imagenette, models, references, train
from ..checks import whole_number
from ..files import atomic_write, data_root
from ..image_folders import IMAGE_SUFFIXES
from ..references import REFERENCE_DIR, REFERENCES
from . import alexnet_recipe
from .course import ROOT


def _commit() -> str:
    """The git commit of the course checkout this runs from ("+changes" when it has uncommitted ones)."""
    repo = ROOT
    try:
        head = subprocess.run(["git", "-C", str(repo), "rev-parse", "HEAD"], capture_output=True, text=True,
                              check=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(repo), "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown (not a git checkout)"
    return head + ("+changes" if dirty else "")


def _folder_checksum(files: list[Path], base: Path) -> dict:
    """One SHA-256 over the sorted lines ``<md5>  <path relative to base>`` of ``files`` (the format of
    an ``MD5SUMS`` file), and their count."""
    lines = sorted(f"{calculate_md5(str(f))}  {f.relative_to(base).as_posix()}" for f in files)
    return {"files": len(lines), "sha256_of_md5sums": hashlib.sha256("\n".join(lines).encode()).hexdigest()}


def _lenet_data(prof: env.Profile) -> tuple[tuple, tuple, dict]:
    if prof.dataset == "mnist":
        train_set, test_set = digits.mnist("train"), digits.mnist("test")
        given = os.environ.get(digits.MNIST_SETTING)
        raw = Path(given).expanduser() if given else data_root() / "MNIST" / "raw"
        data = {"name": "MNIST", "md5": {n: calculate_md5(str(raw / n)) for n in digits.MNIST_RAW_MD5
                                         if (raw / n).exists()}}
    else:
        train_set, test_set = digits.mnist_sample("train"), digits.mnist_sample("test")
        data = {"name": "the shipped MNIST sample", "md5": {n: m for n, m in digits.MNIST_SAMPLE_FILES.values()}}
    data.update(train=len(train_set[1]), test=len(test_set[1]))
    return train_set, test_set, data


def _alexnet_data(prof: env.Profile):
    d = imagenette.for_profile(prof)
    if d.offline:
        source = data_root() / "offline"
        data = {"name": "scikit-image photos in Imagenette's layout (offline stand-in)"}
    else:
        setting = imagenette.FOLDER_SETTINGS["imagenette"]
        folder = os.environ.get(setting)
        source = Path(folder) if folder else data_root() / imagenette.archive_name("imagenette", 160)
        data = {"name": f"Imagenette ({source.name}, " + (f"a folder given in ${setting})" if folder else
                                                           "the published archive)")}
    files = [f for f in sorted(source.rglob("*")) if f.is_file() and f.suffix.lower() in IMAGE_SUFFIXES]
    data.update(train=len(d.train_labels), val=len(d.val_labels), **_folder_checksum(files, source))
    return d, data


def _check_out(out: Path) -> Path:
    """``out`` as a folder files can be written to (created when missing), checked before any training."""
    out = Path(out).expanduser()
    if out.exists() and not out.is_dir():
        raise ValueError(f"out {out} is a file: give a folder to write the reference into.")
    try:
        out.mkdir(parents=True, exist_ok=True)
        probe = out / f".write-test-{os.getpid()}"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as err:
        raise ValueError(f"cannot write into out {out} ({err.strerror or err}): give a folder you may "
                         "write to.") from None
    return out


def build(name: str, *, profile: str | None = None, epochs: int | None = None, seed: int = 0,
          out: str | os.PathLike | None = None, progress: bool = True) -> Path:
    """Train the reference ``name`` and write its weights and record into ``out`` (default: the package's
    ``reference_nets/``), atomically. Returns the record's path.

    LeNet-1: ``fit``'s defaults (SGD with Nesterov momentum, lr 0.1 with warm-up and cosine, batch 64)
    for ``epochs`` (default 10) on all of MNIST (``profile`` ``cpu`` or ``gpu``; ``smoke``: the shipped
    sample). AlexNet: :func:`trained.train_alexnet` with profile ``profile``'s recipe (default ``gpu``:
    Imagenette, 128 px crops), ``epochs`` overriding its length; ``smoke`` trains on the offline photos.
    Training writes a resumable checkpoint into the data folder, so an interrupted build continues.
    ``out`` is checked before training; the record's SHA-256 is that of the very bytes written, so two
    builds at once can never pair one's record with the other's weights. Raises ``KeyError`` for an
    unknown name and ``ValueError`` for a bad setting.
    """
    spec = references.spec(name)
    out = _check_out(Path(out) if out is not None else REFERENCE_DIR)
    if epochs is not None:
        epochs = whole_number(epochs, "epochs")
    seed = whole_number(seed, "seed", low=0)
    start = time.perf_counter()
    argv = [f"--profile {profile}"] * (profile is not None) + [f"--epochs {epochs}"] * (epochs is not None)
    argv += [f"--seed {seed}"] * (seed != 0)
    if spec["model"] == "LeNet1":
        prof = env.profile(profile or "cpu")
        epochs = 10 if epochs is None else epochs
        train_set, test_set, data = _lenet_data(prof)
        env.seed_everything(seed)
        model = models.LeNet1()
        run = data_root() / "checkpoints" / "runs" / f"lenet1-{prof.dataset}-{epochs}ep-seed{seed}.pt"
        history = train.fit(model, train_set, test_set, epochs=epochs, seed=seed, progress=progress, checkpoint=run)
        accuracy = {"test_error": 1 - history.last["val_accuracy"]}
        settings = {"profile": prof.name, "epochs": epochs, "seed": seed, **{k: history.config[k] for k in
                    ("lr", "batch_size", "momentum", "weight_decay", "warmup_epochs", "optimizer")}}
        kwargs, state, dtype = {}, model.state_dict(), "float32"
    else:
        prof = env.profile(profile or "gpu")
        prof = dataclasses.replace(prof, alexnet_epochs=alexnet_recipe.RECIPE["epochs"] if epochs is None else epochs)
        d, data = _alexnet_data(prof)
        model, history = alexnet_recipe.train_reference(name, spec["streams"], d, data, epochs=prof.alexnet_epochs,
                                                        seed=seed, image_size=prof.image_size, progress=progress)
        accuracy = {"val_top1": history.last["val_accuracy"]}
        settings = {"profile": prof.name, "epochs": prof.alexnet_epochs, "seed": seed, "image_size": prof.image_size,
                    **{k: history.config[k] for k in ("lr", "batch_size", "momentum", "weight_decay",
                                                      "label_smoothing", "warmup_epochs")}}
        kwargs = {"num_classes": len(d.classes), "streams": spec["streams"]}
        state = {k: v.half() for k, v in model.state_dict().items() if k.split(".")[0] in spec["layers"]}
        dtype = "float16"
        data["classes"] = list(d.classes)
    buffer = io.BytesIO()
    torch.save({k: v.cpu().contiguous() for k, v in state.items()}, buffer)
    weights_bytes = buffer.getvalue()
    weights = out / f"{name}.pt"
    atomic_write(weights, lambda f: f.write(weights_bytes))
    record = {
        "name": name, "about": spec["about"],
        "model": {"class": spec["model"], "kwargs": kwargs},
        "layers": list(spec["layers"]) if spec["layers"] else None,
        "untrained": None if not spec["layers"] else
        "only these layers are shipped; the fully connected layers fc6-fc8 keep their random initial weights, "
        "so the network's answers are meaningless: use it for its filters and feature maps",
        "dtype": dtype, "parameters_shipped": sum(v.numel() for v in state.values()),
        "command": " ".join(["python -m course_lib.instructor references build", name, *argv]),
        "settings": settings, "commit": _commit(), "data": data, "accuracy": accuracy,
        "val_accuracy_per_epoch": history.column("val_accuracy"),
        "seconds": round(time.perf_counter() - start), "torch": torch.__version__,
        "device": str(next(model.parameters()).device), "threads": torch.get_num_threads(),
        "date": datetime.date.today().isoformat(),
        "sha256": hashlib.sha256(weights_bytes).hexdigest(),
    }
    path = out / f"{name}.json"
    atomic_write(path, lambda f: f.write(json.dumps(record, indent=1) + "\n"), mode="w")
    return path


class _OneLineParser(argparse.ArgumentParser):
    """argparse, with a bad argument reported in one line; exit status 2."""

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message} (--help lists the options)\n")


def main(argv=None) -> int:
    """The command line: 0 when done, 2 for a bad argument, 1 when the build could not run (one line each)."""
    parser = _OneLineParser(prog="python -m course_lib.instructor references",
                            description="The course's trained reference networks.")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("list", help="each reference, its accuracy and how it was made")
    b = sub.add_parser("build", help="train a reference and write its weights and record")
    b.add_argument("name", choices=list(REFERENCES))
    b.add_argument("--profile", choices=env.PROFILE_NAMES, default=None,
                   help="the data and recipe (LeNet-1: cpu; AlexNet: gpu; smoke: the offline data)")
    b.add_argument("--epochs", type=int, default=None)
    b.add_argument("--seed", type=int, default=0)
    b.add_argument("--out", default=None, help="folder to write into (default: the package's reference_nets/)")
    b.add_argument("--threads", type=int, default=None, help="torch threads on the CPU (a whole number >= 1)")
    args = parser.parse_args(argv)
    if args.command == "list":
        for name in REFERENCES:
            try:
                _, record = references.load_network(name)
            except RuntimeError as err:
                print(f"{name}: {err}")
                continue
            print(f"{name}: {record['about']}; {record['accuracy']}; made by `{record.get('command')}` at "
                  f"{str(record.get('commit'))[:12]} on {record.get('date')}")
        return 0
    if args.epochs is not None and args.epochs < 1:
        parser.error(f"--epochs must be at least 1, got {args.epochs}")
    if args.threads is not None and args.threads < 1:
        parser.error(f"--threads must be at least 1, got {args.threads}")
    if args.seed < 0:
        parser.error(f"--seed must be a whole number >= 0, got {args.seed}")
    if args.threads:
        torch.set_num_threads(args.threads)
    try:
        path = build(args.name, profile=args.profile, epochs=args.epochs, seed=args.seed, out=args.out,
                     progress=sys.stderr.isatty())
    except (ValueError, RuntimeError, OSError) as err:     # no data offline, a folder we cannot write, ...
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        print(f"error: {first}", file=sys.stderr)
        return 1
    record = json.loads(path.read_text())
    print(f"wrote {path} and {path.with_suffix('.pt').name}: {record['accuracy']}, {record['seconds']} s")
    return 0
