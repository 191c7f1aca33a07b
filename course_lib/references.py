"""The course's trained reference networks, shipped with the package so that a learner without a GPU (or
without the data) still sees what a well-trained network learned.

Each reference is two files in ``course_lib/reference_nets/``: the weights (``NAME.pt``, a state dict for
``torch.load(weights_only=True)``) and a record (``NAME.json``): what was trained (model, layers shipped),
the command that made it, its settings, the commit, the data's checksums, the measured accuracy and
the SHA-256 of the weights, which :func:`load_network` checks. The instructor's command re-creates each
one (``course_lib.instructor.build_references``)::

    python -m course_lib.instructor references build lenet1-mnist                    # all of MNIST, 10 epochs
    python -m course_lib.instructor references build alexnet-imagenette              # Imagenette, 48 epochs
    python -m course_lib.instructor references list
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import torch

from . import env, models
from .models import packed_weights

REFERENCE_DIR = Path(__file__).resolve().parent / "reference_nets"

# name -> what it is. Every layer is shipped and trained; the AlexNets in the packed format of
# models/packed_weights.py (31 and 34 MB instead of 114 and 117 in float16), which their record names.
REFERENCES = {
    "lenet1-mnist": {"about": "LeNet-1 as published (2,578 parameters), trained on all of MNIST",
                     "model": "LeNet1", "layers": None},
    "alexnet-imagenette": {"about": "the course's two-stream AlexNet, trained on Imagenette (every layer)",
                           "model": "AlexNet", "streams": 2, "layers": None},
    "alexnet-imagenette-one-stream": {"about": "the single-stream AlexNet (lesson 05's control), trained on "
                                               "Imagenette the same way (every layer)",
                                      "model": "AlexNet", "streams": 1, "layers": None},
}


def names() -> list[str]:
    """The references the course knows."""
    return list(REFERENCES)


def spec(name: str) -> dict:
    """What the course knows of reference ``name`` (``about``, ``model``, ``layers``); ``KeyError`` for an
    unknown name, listing the known ones."""
    if not isinstance(name, str) or name not in REFERENCES:
        raise KeyError(f"Unknown reference network {name!r}: expected one of {', '.join(REFERENCES)}.")
    return REFERENCES[name]


def sha256(path: str | os.PathLike) -> str:
    """The SHA-256 of a file, as 64 hex digits."""
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


# The classes a record may name: nothing else is ever built from a file.
MODEL_CLASSES = {"LeNet1": models.LeNet1, "AlexNet": models.AlexNet}
REBUILD = "reinstall course_lib, or rebuild it with `python -m course_lib.instructor references build {name}`"


def _read_record(name: str, record_path: Path) -> dict:
    """The record of ``name``, checked: valid JSON that names this reference, a known model class with its
    keyword arguments, the shipped layers and a SHA-256. Raises ``RuntimeError`` saying what is wrong."""
    rebuild = REBUILD.format(name=name)
    try:
        record = json.loads(record_path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise RuntimeError(f"{record_path} is not a valid record ({type(err).__name__}: {err}): it is damaged; "
                           f"{rebuild}.") from None
    problems = []
    if not isinstance(record, dict):
        record, problems = {}, ["it is not a JSON object"]
    if record.get("name") != name:
        problems.append(f"it describes {record.get('name')!r}, not {name!r} (a file copied under another name?)")
    model = record.get("model")
    if (not isinstance(model, dict) or model.get("class") not in MODEL_CLASSES
            or not isinstance(model.get("kwargs"), dict)):
        problems.append(f"its model must be one of {', '.join(MODEL_CLASSES)} with its keyword arguments, "
                        f"got {model!r}")
    elif model["class"] != REFERENCES[name]["model"]:
        problems.append(f"it holds a {model['class']}, but {name!r} is a {REFERENCES[name]['model']}")
    if not isinstance(record.get("sha256"), str) or len(record.get("sha256", "")) != 64:
        problems.append("it has no SHA-256 of its weights")
    if "layers" not in record:
        problems.append("it does not say which layers were shipped")
    if problems:
        raise RuntimeError(f"{record_path} is not the record of {name!r}: {'; '.join(problems)}; {rebuild}.")
    return record


def load_network(name: str, folder: str | os.PathLike | None = None) -> tuple[torch.nn.Module, dict]:
    """A trained reference network: ``(model in eval mode on the CPU, record)``.

    ``name``: ``"lenet1-mnist"``, ``"alexnet-imagenette"`` or ``"alexnet-imagenette-one-stream"``;
    ``folder`` overrides where the files are read (default: the package's ``reference_nets/``). The
    record must name this reference and its model, and the weights' SHA-256 is checked against it before
    they are read (as a state dict, ``weights_only``). The record (a dict) says what the network is
    (``about``), which layers were shipped (``layers``: ``None`` when every layer is, as for the course's
    references; a record that ships only some names the rest, which keep their initial weights, in
    ``untrained``), how it was made (``command``, ``settings``, ``commit``,
    ``data``) and how well it does (``accuracy``). Raises ``KeyError`` for an unknown name and
    ``RuntimeError`` for a missing or damaged file, a record of another network, or weights that do not
    fit, saying how to rebuild it. A record whose ``dtype`` is ``"packed"`` holds every layer in the format of
    :mod:`models.packed_weights`: unpacked, then loaded strictly.
    """
    spec(name)
    folder = Path(folder) if folder is not None else REFERENCE_DIR
    record_path, weights_path = folder / f"{name}.json", folder / f"{name}.pt"
    rebuild = REBUILD.format(name=name)
    if not record_path.exists() or not weights_path.exists():
        raise RuntimeError(f"The reference network {name!r} is not in {folder} (expected {record_path.name} and "
                           f"{weights_path.name}): {rebuild}.")
    record = _read_record(name, record_path)
    got = sha256(weights_path)
    if got != record["sha256"]:
        raise RuntimeError(f"{weights_path} is not the file its record describes (SHA-256 {got[:16]}..., expected "
                           f"{record['sha256'][:16]}...): it is damaged or was replaced; {rebuild}.")
    try:
        state = torch.load(weights_path, map_location="cpu", weights_only=True)
        if not isinstance(state, dict) or not all(torch.is_tensor(v) for v in state.values()):
            raise TypeError("not a state dict of tensors")
        model = MODEL_CLASSES[record["model"]["class"]](**record["model"]["kwargs"])
        state = packed_weights.unpack(state) if record.get("dtype") == "packed" else state
        missing, unexpected = model.load_state_dict({k: v.float() for k, v in state.items()}, strict=False)
    except Exception as err:     # a pickled object, wrong shapes, bad keyword arguments: all one message
        first = str(err).strip().splitlines()[0][:200] if str(err).strip() else ""
        raise RuntimeError(f"{weights_path} does not hold {name!r}'s weights ({type(err).__name__}: {first}); "
                           f"{rebuild}.") from None
    shipped = record["layers"]
    if unexpected or (shipped is None and missing) or any(k.split(".")[0] in (shipped or ()) for k in missing):
        raise RuntimeError(f"{weights_path} does not fit {record['model']['class']}: missing {missing[:4]}, "
                           f"unexpected {unexpected[:4]}; {rebuild}.")
    return model.eval(), record


def initial_network(name: str) -> torch.nn.Module:
    """Reference AlexNet ``name`` as it was before training, rebuilt from its record's seed and recipe: the
    weights its training started from (CPU, eval mode), so that what learning changed can be measured. Only
    the record is read. Raises ``KeyError`` for a name that is not an AlexNet, ``RuntimeError`` for a missing
    or damaged record."""
    if spec(name)["model"] != "AlexNet":
        raise KeyError(f"{name!r} is not a reference AlexNet: expected one of "
                       f"{', '.join(n for n, s in REFERENCES.items() if s['model'] == 'AlexNet')}.")
    folder = REFERENCE_DIR
    if not (folder / f"{name}.json").exists():
        raise RuntimeError(f"The reference network {name!r} has no record in {folder} (expected {name}.json): "
                           f"{REBUILD.format(name=name)}.")
    record = _read_record(name, folder / f"{name}.json")    # the record alone: the trained weights are not needed
    return initial_alexnet(record["model"]["kwargs"]["streams"], record["settings"]["seed"],
                           record["recipe"]["conv1_std"], record["model"]["kwargs"]["num_classes"]).eval()


def initial_alexnet(streams: int, seed: int, conv1_std: float, num_classes: int = 10) -> models.AlexNet:
    """``models.AlexNet(num_classes, streams)`` drawn after ``env.seed_everything(seed)``, then conv1 redrawn from
    ``N(0, conv1_std)``: how the reference AlexNets start (``instructor/alexnet_recipe.py``). The same
    arguments give the same weights."""
    env.seed_everything(seed)
    model = models.AlexNet(num_classes=num_classes, streams=streams)
    with torch.no_grad():
        model.conv1.weight.normal_(0.0, conv1_std)
    return model


def results(name: str, folder: str | os.PathLike | None = None) -> dict:
    """The benchmark figures shipped beside a reference (``NAME.results.json``), e.g. for
    ``"lenet1-mnist"`` what ``benchmarks/lenet1_mnist.py --thirty-years --save`` measured on all of MNIST:
    ``{"command", "machine", "date", "epochs", "seeds", "lenet": [{"network", "parameters", "errors",
    "seconds"}], "thirty_years": [rows of claims.thirty_years]}``. Raises ``RuntimeError`` when missing
    or damaged."""
    spec(name)
    path = (Path(folder) if folder is not None else REFERENCE_DIR) / f"{name}.results.json"
    if not path.exists():
        raise RuntimeError(f"No benchmark figures for {name!r} in {path.parent} ({path.name}).")
    try:
        return json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise RuntimeError(f"{path} is damaged ({type(err).__name__}: {err}): reinstall course_lib.") from None
