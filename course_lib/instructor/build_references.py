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
from ..models import packed_weights
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


def _top1_float32(model: torch.nn.Module, images: torch.Tensor, labels: torch.Tensor) -> float:
    """Top-1 of ``model`` on uint8 ``images`` (normalized as in training), in float32 on the CPU, whatever
    device and precision it trained in (so that the packing's effect is not mixed with bf16's rounding)."""
    from ..loader import batches_for

    model = model.cpu().float().eval()
    right = 0
    with torch.no_grad():
        for x, y in batches_for((images, labels), 256, shuffle=False, device=torch.device("cpu")):
            right += int((model(x).argmax(1) == y).sum())
    return right / len(labels)


def _alexnet_record(model, history, d, kwargs: dict, weights_bytes: bytes, seed: int) -> dict:
    """What a reference AlexNet's record adds: the shipped weights measured after their round trip
    (:mod:`packed_weights`), conv1's cosine to its initial weights after each epoch and at the end, the
    training time, and the recipe."""
    shipped = models.AlexNet(**kwargs).eval()
    shipped.load_state_dict(packed_weights.unpack(torch.load(io.BytesIO(weights_bytes), weights_only=True)))
    initial = alexnet_recipe.initial_network(kwargs["streams"], seed, kwargs["num_classes"])
    seconds = history.column("seconds")
    return {
        "accuracy": {"val_top1": _top1_float32(shipped, d.val_images, d.val_labels),
                     "val_top1_before_packing": _top1_float32(model, d.val_images, d.val_labels),
                     "measured": "all of the validation images, centre crops, float32 on the CPU "
                                 "(val_accuracy_per_epoch: during training, in the training precision)"},
        "format": "every layer; fc6 folded to pool5's 3 x 3 and fc6, fc7 in int8 with a float32 scale a row, the "
                  "rest float16: course_lib/models/packed_weights.py (unpack, then load into models.AlexNet)",
        "conv1_cosine_to_initial": alexnet_recipe.conv1_cosine(model, initial),
        "conv1_cosine_per_epoch": [row.get("conv1_cosine") for row in history.epochs],
        "training_seconds": round(sum(seconds)), "training_seconds_per_epoch": [round(s, 1) for s in seconds],
        "recipe": alexnet_recipe.RECIPE,
    }


def build(name: str, *, profile: str | None = None, epochs: int | None = None, seed: int = 0,
          out: str | os.PathLike | None = None, progress: bool = True) -> Path:
    """Train the reference ``name`` and write its weights and record into ``out`` (default: the package's
    ``reference_nets/``), atomically. Returns the record's path.

    LeNet-1: ``fit``'s defaults (SGD with Nesterov momentum, lr 0.1 with warm-up and cosine, batch 64)
    for ``epochs`` (default 10) on all of MNIST (``profile`` ``cpu`` or ``gpu``; ``smoke``: the shipped
    sample). AlexNet: :data:`alexnet_recipe.RECIPE` (its epochs unless ``epochs`` is given) on the data and at
    the image size of profile ``profile`` (default ``gpu``: Imagenette, 128 px crops; ``smoke``: the offline
    photos at 80 px); every layer shipped, packed (:mod:`models.packed_weights`), and measured after the round
    trip. Nothing is written until the record is complete.
    Training writes a resumable checkpoint into the data folder, so an interrupted build continues.
    ``out`` is checked before training; the record's SHA-256 is that of the very bytes written, so two
    builds at once can never pair one's record with the other's weights. Raises ``KeyError`` for an
    unknown name and ``ValueError`` for a bad setting.
    """
    spec = references.spec(name)
    out = _check_out(Path(out if out is not None else REFERENCE_DIR))
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
        pool5 = models.AlexNet(num_classes=10).features(torch.zeros(1, 3, prof.image_size, prof.image_size)).shape[-1]
        if pool5 not in (1, packed_weights.POOL5):
            raise ValueError(f"at {prof.image_size} px pool5 is {pool5} x {pool5}: fc6 folds exactly only where it is "
                             f"1 x 1 or {packed_weights.POOL5} x {packed_weights.POOL5} (63-94 or 127-158 px).")
        d, data = _alexnet_data(prof)
        model, history = alexnet_recipe.train_reference(name, spec["streams"], d, data, epochs=prof.alexnet_epochs,
                                                        seed=seed, image_size=prof.image_size, progress=progress)
        settings = {"profile": prof.name, "epochs": prof.alexnet_epochs, "seed": seed, "image_size": prof.image_size,
                    **{k: history.config[k] for k in ("lr", "batch_size", "momentum", "weight_decay",
                                                      "label_smoothing", "warmup_epochs")}}
        accuracy = None      # measured on the shipped weights: _alexnet_record
        kwargs = {"num_classes": len(d.classes), "streams": spec["streams"]}
        state, dtype = packed_weights.pack(model.state_dict()), "packed"
        data["classes"] = list(d.classes)
    buffer = io.BytesIO()
    torch.save({k: v.cpu().contiguous() for k, v in state.items()}, buffer)
    weights_bytes = buffer.getvalue()
    record = {
        "name": name, "about": spec["about"],
        "model": {"class": spec["model"], "kwargs": kwargs},
        "layers": list(spec["layers"]) if spec["layers"] else None,
        "untrained": None,
        "dtype": dtype, "parameters_shipped": sum(v.numel() for v in state.values()), "bytes": len(weights_bytes),
        "command": " ".join(["python -m course_lib.instructor references build", name, *argv]),
        "settings": settings, "commit": _commit(), "data": data, "accuracy": accuracy,
        "val_accuracy_per_epoch": history.column("val_accuracy"),
        "seconds": round(time.perf_counter() - start), "torch": torch.__version__,
        "device": str(next(model.parameters()).device), "threads": torch.get_num_threads(),
        "machine": env.machine(), "date": datetime.date.today().isoformat(),
        "sha256": hashlib.sha256(weights_bytes).hexdigest(),
    }
    if dtype == "packed":
        record.update(_alexnet_record(model, history, d, kwargs, weights_bytes, seed))
        record["seconds"] = round(time.perf_counter() - start)      # this command's, measuring included
    atomic_write(out / f"{name}.pt", lambda f: f.write(weights_bytes))
    path = out / f"{name}.json"
    atomic_write(path, lambda f: f.write(json.dumps(record, indent=1) + "\n"), mode="w")
    return path


def describe(name: str, folder: str | os.PathLike | None = None) -> str:
    """One line on reference ``name`` in ``folder`` (default: the package's): what it is, its accuracy, what
    was trained and shipped, how it was made; or why it cannot be loaded. The packed AlexNets also say conv1's
    cosine to its initial weights, their size and their training time."""
    try:
        _, record = references.load_network(name, folder)
    except (RuntimeError, ValueError, OSError, KeyError) as err:
        return f"{name}: {err}"
    top1 = {k: round(v, 4) for k, v in record["accuracy"].items() if isinstance(v, float)}
    shipped = "every layer trained" if record.get("layers") is None else f"trained: {', '.join(record['layers'])}"
    extra = (f"; conv1's cosine to its initial weights {record['conv1_cosine_to_initial']:.3f}; "
             f"{record['bytes'] / 1e6:.1f} MB; {record['training_seconds'] / 3600:.1f} h of training on "
             f"{record['machine']}, {record['threads']} thread(s)") if record.get("dtype") == "packed" else ""
    return (f"{name}: {record['about']}; {top1}; {shipped}{extra}; made by `{record.get('command')}` at "
            f"{str(record.get('commit'))[:12]} on {record.get('date')}")


class _OneLineParser(argparse.ArgumentParser):
    """argparse, with a bad argument reported in one line; exit status 2."""

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message} (--help lists the options)\n")


def main(argv=None) -> int:
    """The command line: 0 when done, 2 for a bad argument, 1 when the build could not run (one line each)."""
    parser = _OneLineParser(prog="python -m course_lib.instructor references",
                            description="The course's trained reference networks.")
    sub = parser.add_subparsers(dest="command", required=True)
    listing = sub.add_parser("list", help="each reference, its accuracy and how it was made")
    listing.add_argument("--folder", default=None,
                         help="read the references there (default: the package's)")
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
            print(describe(name, args.folder))
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
