"""The course's trained reference networks, shipped with the package so that a learner without a GPU (or
without the data) still sees what a well-trained network learned.

Each reference is two files in ``course_lib/reference_nets/``: the weights (``NAME.pt``, a state dict for
``torch.load(weights_only=True)``) and a record (``NAME.json``): what was trained (model, layers shipped),
the command that made it, its settings, the commit, the data's checksums, the measured accuracy and
the SHA-256 of the weights, which :func:`load` checks. One command re-creates each one::

    python -m course_lib.references build lenet1-mnist                    # all of MNIST, 10 epochs
    python -m course_lib.references build alexnet-imagenette --epochs 16  # Imagenette, the gpu recipe
    python -m course_lib.references list
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import hashlib
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import torch
from torchvision.datasets.utils import calculate_md5

from . import env, models, train
from .files import atomic_write, data_root

REFERENCE_DIR = Path(__file__).resolve().parent / "reference_nets"

# name -> what it is; the AlexNets ship their convolutional layers only (a few MB in half precision:
# fc6-fc8 hold 95 % of AlexNet's weights), and say so in their record.
REFERENCES = {
    "lenet1-mnist": {"about": "LeNet-1 as published (2,578 parameters), trained on all of MNIST",
                     "model": "LeNet1", "layers": None},
    "alexnet-imagenette": {"about": "the course's two-stream AlexNet, trained on Imagenette (conv1-conv5)",
                           "model": "AlexNet", "streams": 2,
                           "layers": ("conv1", "conv2", "conv3", "conv4", "conv5")},
    "alexnet-imagenette-one-stream": {"about": "the single-stream AlexNet (lesson 05's control), trained on "
                                               "Imagenette the same way (conv1-conv5)",
                                      "model": "AlexNet", "streams": 1,
                                      "layers": ("conv1", "conv2", "conv3", "conv4", "conv5")},
}


def names() -> list[str]:
    """The references the course knows."""
    return list(REFERENCES)


def _check_name(name: str) -> dict:
    if name not in REFERENCES:
        raise KeyError(f"Unknown reference network {name!r}: expected one of {', '.join(REFERENCES)}.")
    return REFERENCES[name]


def sha256(path: str | os.PathLike) -> str:
    """The SHA-256 of a file, as 64 hex digits."""
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


def _build_model(record: dict) -> torch.nn.Module:
    kwargs = dict(record["model"]["kwargs"])
    return {"LeNet1": models.LeNet1, "AlexNet": models.AlexNet}[record["model"]["class"]](**kwargs)


def load(name: str, folder: str | os.PathLike | None = None) -> tuple[torch.nn.Module, dict]:
    """A trained reference network: ``(model in eval mode on the CPU, record)``.

    ``name``: ``"lenet1-mnist"``, ``"alexnet-imagenette"`` or ``"alexnet-imagenette-one-stream"``;
    ``folder`` overrides where the files are read (default: the package's ``reference_nets/``). The
    weights' SHA-256 is checked against the record first. The record (a dict) says what the network is
    (``about``), which layers were shipped (``layers``; the others, e.g. AlexNet's fc6-fc8, keep their
    random initial weights: ``untrained``), how it was made (``command``, ``settings``, ``commit``,
    ``data``) and how well it does (``accuracy``). Raises ``KeyError`` for an unknown name and
    ``RuntimeError`` for a missing file or a checksum that does not match, saying how to rebuild it.
    """
    _check_name(name)
    folder = Path(folder) if folder is not None else REFERENCE_DIR
    record_path, weights_path = folder / f"{name}.json", folder / f"{name}.pt"
    rebuild = f"reinstall course_lib, or rebuild it with `python -m course_lib.references build {name}`"
    if not record_path.exists() or not weights_path.exists():
        raise RuntimeError(f"The reference network {name!r} is not in {folder} (expected {record_path.name} and "
                           f"{weights_path.name}): {rebuild}.")
    record = json.loads(record_path.read_text())
    got = sha256(weights_path)
    if got != record["sha256"]:
        raise RuntimeError(f"{weights_path} is not the file its record describes (SHA-256 {got[:16]}..., expected "
                           f"{record['sha256'][:16]}...): it is damaged or was replaced; {rebuild}.")
    state = torch.load(weights_path, map_location="cpu", weights_only=True)
    model = _build_model(record)
    missing, unexpected = model.load_state_dict({k: v.float() for k, v in state.items()}, strict=False)
    shipped = record["layers"]
    if unexpected or (shipped is None and missing) or any(k.split(".")[0] in shipped for k in missing):
        raise RuntimeError(f"{weights_path} does not fit {record['model']['class']}: missing {missing[:4]}, "
                           f"unexpected {unexpected[:4]}; {rebuild}.")
    return model.eval(), record


def results(name: str, folder: str | os.PathLike | None = None) -> dict:
    """The benchmark figures shipped beside a reference (``NAME.results.json``), e.g. for
    ``"lenet1-mnist"`` what ``benchmarks/lenet1_mnist.py --thirty-years --save`` measured on all of MNIST:
    ``{"command", "machine", "date", "epochs", "seeds", "lenet": [{"network", "parameters", "errors",
    "seconds"}], "thirty_years": [rows of recipes.thirty_years]}``. Raises ``RuntimeError`` when missing."""
    _check_name(name)
    path = (Path(folder) if folder is not None else REFERENCE_DIR) / f"{name}.results.json"
    if not path.exists():
        raise RuntimeError(f"No benchmark figures for {name!r} in {path.parent} ({path.name}).")
    return json.loads(path.read_text())


# --- building ------------------------------------------------------------------------------------------

def _commit() -> str:
    """The git commit of the course checkout this runs from ("+changes" when it has uncommitted ones)."""
    repo = Path(__file__).resolve().parent.parent
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
    from . import digits

    if prof.dataset == "mnist":
        train_set, test_set = digits.mnist("train"), digits.mnist("test")
        raw = data_root() / "MNIST" / "raw"
        data = {"name": "MNIST", "md5": {n: calculate_md5(str(raw / n)) for n in digits.MNIST_RAW_MD5}}
    else:
        train_set, test_set = digits.mnist_sample("train"), digits.mnist_sample("test")
        data = {"name": "the shipped MNIST sample", "md5": {n: m for n, m in digits.MNIST_SAMPLE_FILES.values()}}
    data.update(train=len(train_set[1]), test=len(test_set[1]))
    return train_set, test_set, data


def _alexnet_data(prof: env.Profile):
    from . import imagenette, recipes

    d = recipes.imagenette_data(prof)
    if d.offline:
        source = data_root() / "offline"
        data = {"name": "scikit-image photos in Imagenette's layout (offline stand-in)"}
    else:
        setting = imagenette.FOLDER_SETTINGS["imagenette"]
        folder = os.environ.get(setting)
        source = Path(folder) if folder else data_root() / imagenette.archive_name("imagenette", 160)
        data = {"name": f"Imagenette ({source.name}, " + (f"a folder given in ${setting})" if folder else
                                                           "the published archive)")}
    files = [f for f in sorted(source.rglob("*")) if f.is_file() and f.suffix.lower() in imagenette.IMAGE_SUFFIXES]
    data.update(train=len(d.train_labels), val=len(d.val_labels), **_folder_checksum(files, source))
    return d, data


def build(name: str, *, profile: str | None = None, epochs: int | None = None, seed: int = 0,
          out: str | os.PathLike | None = None, progress: bool = True) -> Path:
    """Train the reference ``name`` and write its weights and record into ``out`` (default: the package's
    ``reference_nets/``), atomically. Returns the record's path.

    LeNet-1: ``fit``'s defaults (SGD with Nesterov momentum, lr 0.1 with warm-up and cosine, batch 64)
    for ``epochs`` (default 10) on all of MNIST (``profile`` ``cpu`` or ``gpu``; ``smoke``: the shipped
    sample). AlexNet: :func:`recipes.train_alexnet` with profile ``profile``'s recipe (default ``gpu``:
    Imagenette, 128 px crops), ``epochs`` overriding its length; ``smoke`` trains on the offline photos.
    Training writes a resumable checkpoint into the data folder, so an interrupted build continues.
    """
    from . import recipes

    spec = _check_name(name)
    out = Path(out) if out is not None else REFERENCE_DIR
    start = time.perf_counter()
    argv = [f"--profile {profile}"] * (profile is not None) + [f"--epochs {epochs}"] * (epochs is not None)
    argv += [f"--seed {seed}"] * (seed != 0)
    if spec["model"] == "LeNet1":
        prof = env.profile(profile or "cpu")
        epochs = epochs or 10
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
        if epochs is not None:
            prof = dataclasses.replace(prof, alexnet_epochs=epochs)
        d, data = _alexnet_data(prof)
        model, history = recipes.train_alexnet(prof, d, streams=spec["streams"], seed=seed, progress=progress,
                                               resumable=True)
        accuracy = {"val_top1": history.last["val_accuracy"]}
        settings = {"profile": prof.name, "epochs": prof.alexnet_epochs, "seed": seed, "image_size": prof.image_size,
                    **{k: history.config[k] for k in ("lr", "batch_size", "momentum", "weight_decay",
                                                      "label_smoothing", "warmup_epochs")}}
        kwargs = {"num_classes": len(d.classes), "streams": spec["streams"]}
        state = {k: v.half() for k, v in model.state_dict().items() if k.split(".")[0] in spec["layers"]}
        dtype = "float16"
        data["classes"] = list(d.classes)
    out.mkdir(parents=True, exist_ok=True)
    weights = out / f"{name}.pt"
    atomic_write(weights, lambda f: torch.save({k: v.cpu().contiguous() for k, v in state.items()}, f))
    record = {
        "name": name, "about": spec["about"],
        "model": {"class": spec["model"], "kwargs": kwargs},
        "layers": list(spec["layers"]) if spec["layers"] else None,
        "untrained": None if not spec["layers"] else
        "only these layers are shipped; the fully connected layers fc6-fc8 keep their random initial weights, "
        "so the network's answers are meaningless: use it for its filters and feature maps",
        "dtype": dtype, "parameters_shipped": sum(v.numel() for v in state.values()),
        "command": " ".join(["python -m course_lib.references build", name, *argv]),
        "settings": settings, "commit": _commit(), "data": data, "accuracy": accuracy,
        "val_accuracy_per_epoch": history.column("val_accuracy"),
        "seconds": round(time.perf_counter() - start), "torch": torch.__version__,
        "device": str(next(model.parameters()).device), "threads": torch.get_num_threads(),
        "date": datetime.date.today().isoformat(),
        "sha256": sha256(weights),
    }
    path = out / f"{name}.json"
    atomic_write(path, lambda f: f.write(json.dumps(record, indent=1) + "\n"), mode="w")
    return path


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m course_lib.references",
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
    b.add_argument("--threads", type=int, default=None, help="torch threads on the CPU")
    args = parser.parse_args(argv)
    if args.command == "list":
        for name in REFERENCES:
            try:
                _, record = load(name)
            except RuntimeError as err:
                print(f"{name}: {err}")
                continue
            print(f"{name}: {record['about']}; {record['accuracy']}; made by `{record['command']}` at "
                  f"{record['commit'][:12]} on {record['date']}")
        return 0
    if args.epochs is not None and args.epochs < 1:
        parser.error(f"--epochs must be at least 1, got {args.epochs}")
    if args.threads:
        torch.set_num_threads(args.threads)
    path = build(args.name, profile=args.profile, epochs=args.epochs, seed=args.seed, out=args.out,
                 progress=sys.stderr.isatty())
    record = json.loads(path.read_text())
    print(f"wrote {path} and {path.with_suffix('.pt').name}: {record['accuracy']}, {record['seconds']} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
