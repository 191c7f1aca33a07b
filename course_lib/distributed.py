"""Training on several processes, GPUs and machines with PyTorch's own engine (``torch.distributed``).

    python -m course_lib.distributed --model lenet1 --data mnist-sample --epochs 2 --batch-size 64 \\
        --lr 0.3 --seed 0 --out runs/lenet1
    torchrun --standalone --nproc_per_node=4 -m course_lib.distributed ...      # 4 processes, one machine
    torchrun --nnodes=2 --nproc_per_node=8 --rdzv-backend=c10d \\
        --rdzv-endpoint=HOST:29400 --rdzv-id=run1 -m course_lib.distributed ...  # on each of 2 machines

Data parallelism: every process (rank) holds the whole model; ``--batch-size`` is the *global* batch,
and each of the N ranks takes its 1/N share of every global batch (ranks ``r, r + N, ...`` of it),
so the data order does not depend on N. ``DistributedDataParallel`` averages the gradients (NCCL on
GPUs, gloo on CPUs), so 1, 2 or 4 processes take the same steps and end with the same weights, up to
the order of float additions. Only full global batches are used (the remainder of an epoch is left
out), so that every step averages the same number of images whatever N is. AlexNet's random crops are
drawn for the global batch too; its dropout masks are drawn by each process, so with dropout the runs
on different N are equivalent in distribution, not equal.

Rank 0 writes, in ``--out``: ``checkpoint.pt`` after every epoch (atomically: model, optimizer, epoch,
settings, history), ``history.json``, and ``final.pt`` (the model's state dict; it loads with
``torch.load(..., weights_only=True)``). With ``--resume`` a run continues from ``checkpoint.pt`` when
there is one, which is what makes ``torchrun --max-restarts=K`` recover from a crashed rank.

``--data folder:PATH`` reads an ImageFolder tree (``PATH/train/<class>/<image>``, ImageNet-1k's layout):
decoded once at the training resolution into a uint8 cache on disk (every rank of a machine decodes its
share of the files), then memory-mapped, so that each rank reads only the images of its share.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import sys
from datetime import timedelta
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
import torch.nn as nn

from . import augment, files, loader, models, train
from .checkpoints import check_resumable, load_checkpoint, save_checkpoint
from .image_folders import cache

MODELS = {"lenet1": models.LeNet1, "lenet5": models.LeNet5, "alexnet": models.AlexNet}
NAMED_DATA = ("mnist-sample", "mnist", "imagenette", "imagewoof")
SETTINGS = ("model", "data", "batch_size", "lr", "seed", "image_size", "weight_decay", "dropout", "float64")


class DistributedError(RuntimeError):
    """A run that cannot start or go on, with a message that says what to do."""


# --- the process group ---------------------------------------------------------------------------

def start(timeout_s: float = 300, cpu: bool = False, threads: int | None = None) -> tuple[int, int, torch.device]:
    """Join the process group that ``torchrun`` (or the ``RANK``/``WORLD_SIZE``/``MASTER_ADDR``/
    ``MASTER_PORT`` variables) describes; a plain ``python -m`` run is one process and needs no group.
    Returns ``(rank, world size, device)``: ``cuda:LOCAL_RANK`` when there are GPUs (and not ``cpu``),
    else the CPU."""
    world, rank, local = (_from_environment(n, d) for n, d in (("WORLD_SIZE", 1), ("RANK", 0), ("LOCAL_RANK", 0)))
    gpus = 0 if cpu else torch.cuda.device_count()
    if world > 1 and 0 < gpus <= local:
        raise DistributedError(f"Local rank {local} has no GPU of its own ({gpus} here): start at most {gpus} "
                               "processes per machine (--nproc_per_node), or add --cpu to train on the CPUs.")
    device = torch.device(f"cuda:{local}") if gpus else torch.device("cpu")
    if device.type == "cuda":
        torch.cuda.set_device(device)
    else:
        # several processes on one machine's cores: share them instead of each taking all (or ``threads`` each)
        per_machine = _from_environment("LOCAL_WORLD_SIZE", 1)
        torch.set_num_threads(threads or max(1, (os.cpu_count() or 1) // per_machine))
    if world > 1:
        where = f"{os.environ.get('MASTER_ADDR', '?')}:{os.environ.get('MASTER_PORT', '?')}"
        try:
            timeout = timedelta(seconds=timeout_s)
            # torchrun's agent keeps its store across restarts: without a fresh prefix per attempt the
            # restarted ranks read the dead ranks' addresses (pytorch/pytorch#167288) and cannot connect.
            agent = os.environ.get("TORCHELASTIC_USE_AGENT_STORE") == "True"
            store = dist.TCPStore(os.environ["MASTER_ADDR"], int(os.environ["MASTER_PORT"]), world,
                                  is_master=rank == 0 and not agent, timeout=timeout)
            store = dist.PrefixStore(f"course_lib/attempt_{os.environ.get('TORCHELASTIC_RESTART_COUNT', '0')}", store)
            dist.init_process_group("nccl" if device.type == "cuda" else "gloo", store=store, rank=rank,
                                    world_size=world, timeout=timeout)
        except (RuntimeError, ValueError, OSError, KeyError) as err:  # DistNetworkError and friends
            raise DistributedError(
                f"Rank {rank} of {world} could not join the process group at {where} within {timeout_s:.0f} s "
                f"({type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''}). Check that rank 0 "
                "(or the rendezvous host) is running, that the address and port are right and reachable "
                "through the firewall, and that every machine runs the same command.") from None
    return rank, world, device


def _from_environment(name: str, default: int) -> int:
    """A whole number from the environment variable ``name`` (``default`` when unset), or a
    :class:`DistributedError` naming the variable."""
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    try:
        number = int(value)
    except ValueError:
        number = -1
    if number < 0 or (name.endswith("SIZE") and number < 1):
        raise DistributedError(f"the environment variable {name}={value!r} is not a whole number"
                               f"{' >= 1' if name.endswith('SIZE') else ' >= 0'}: torchrun sets it; unset it to run "
                               "one process.")
    return number


def stop() -> None:
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def barrier(world: int) -> None:
    if world > 1:
        dist.barrier()


# --- data ----------------------------------------------------------------------------------------

def parse_data(text: str) -> str:
    """``--data``'s value, checked: one of :data:`NAMED_DATA` or ``folder:PATH`` with an existing folder."""
    if text in NAMED_DATA:
        return text
    if text.startswith("folder:"):
        given = text[len("folder:"):].strip()
        if not given:
            raise argparse.ArgumentTypeError("folder: names no folder: give folder:PATH, an ImageFolder tree "
                                             "with train/<class>/<image> inside.")
        path = Path(given).expanduser()
        if not path.is_dir():
            raise argparse.ArgumentTypeError(f"folder:{path}: no such folder (expected an ImageFolder tree "
                                             "with train/<class>/<image> inside).")
        return f"folder:{path.resolve()}"
    raise argparse.ArgumentTypeError(f"unknown data {text!r}: expected one of {', '.join(NAMED_DATA)} or folder:PATH.")


def folder_cache(path: Path, resolution: int, split: str = "train", world: int = 1, local_rank: int = 0,
                 local_world: int = 1) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """The images of ``path/split`` (or ``path`` itself) decoded once at ``resolution`` into
    ``path/.course-cache/`` (the course's one image cache, :func:`image_folders.cache`), then memory-mapped:
    every process of a machine decodes every ``local_world``-th file. A file that cannot be decoded stops
    every process with the same message. Returns ``(images N x 3 x R x R uint8, labels N int64, classes)``."""
    folder = path / split if (path / split).is_dir() else path
    try:
        return cache(folder, path / ".course-cache" / f"{split}-{resolution}px", resolution, progress=False,
                     share=(local_rank, local_world), barrier=lambda: barrier(world))
    except (RuntimeError, ValueError) as err:
        raise DistributedError(str(err).splitlines()[0]) from None


def load_data(data: str, image_size: int, rank: int, world: int) -> tuple[object, torch.Tensor, list[str]]:
    """Training images (a uint8 tensor, or a memory map for ``folder:``), labels and class names.
    Rank 0 downloads first; the others wait for it, then read the same files."""
    from . import digits, imagenette

    cache_side = round(image_size * 8 / 7)
    if data.startswith("folder:"):
        images, labels, classes = folder_cache(
            Path(data[len("folder:"):]), cache_side, world=world, local_rank=_from_environment("LOCAL_RANK", 0),
            local_world=_from_environment("LOCAL_WORLD_SIZE", 1))
        return images, torch.from_numpy(labels), classes
    for turn in ("first", "others"):
        if (rank == 0) == (turn == "first"):
            if data == "mnist-sample":
                images, labels = digits.mnist_sample("train")
                classes = [str(d) for d in range(10)]
            elif data == "mnist":
                images, labels = digits.mnist("train")
                classes = [str(d) for d in range(10)]
            else:
                split = imagenette.load_split("train", variant=data, size=160, resolution=cache_side,
                                              progress=rank == 0)
                images, labels, classes = split.images, split.labels, list(split.classes)
        barrier(world)
    return images, labels, classes


def global_batches(n: int, batch_size: int, seed: int, epoch: int) -> torch.Tensor:
    """The epoch's order of the ``n`` training images as full global batches: ``steps x batch_size``
    indices, the same on every rank and for any number of ranks (seeded by ``seed`` and ``epoch``)."""
    order = torch.randperm(n, generator=torch.Generator().manual_seed(seed * 100_003 + epoch))
    steps = n // batch_size
    return order[:steps * batch_size].view(steps, batch_size)


def shard(batch: torch.Tensor, rank: int, world: int) -> torch.Tensor:
    """This rank's share of one global batch of indices: positions ``rank, rank + world, ...``."""
    return batch[rank::world]


# --- the run -------------------------------------------------------------------------------------

def make_model(name: str, num_classes: int, seed: int, dropout: float = 0.5) -> nn.Module:
    """The model, its weights drawn from ``seed`` (the same on every rank); ``dropout`` for AlexNet. The
    caller's random number generators are left as they were (lesson 07 calls it in the learner's kernel)."""
    extra = {"dropout": dropout} if name == "alexnet" else {}
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return MODELS[name](num_classes=num_classes, **extra)


def run(args: argparse.Namespace) -> None:
    """One training run (see the module's docstring); every rank calls it with the same arguments."""
    threads = torch.get_num_threads()    # start() shares the cores between processes: given back after
    try:
        rank, world, device = start(args.timeout, args.cpu, args.threads)
        _run(args, rank, world, device)
        barrier(world)  # every rank leaves together, once rank 0 has written final.pt
    finally:
        # The DDP model can outlive _run in a reference cycle; freed at exit, after its process group, gloo's
        # threads abort the process ("terminate called without an active exception", seen once in CI).
        gc.collect()
        stop()
        torch.set_num_threads(threads)


def _writable(out: Path) -> None:
    """Create ``out`` and make sure files can be written there, or say so in one line."""
    try:
        out.mkdir(parents=True, exist_ok=True)
        probe = out / ".write-test"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as err:
        raise DistributedError(f"cannot write into --out {out} ({err.strerror or err}): give a folder you may "
                               "write to.") from None


def _rank_batches(images, labels, args, rank: int, world: int, epoch: int, device: torch.device):
    """This rank's share of every full global batch of ``epoch``, normalized on ``device``: ``(x, y)``
    pairs. AlexNet's crops are drawn for the whole global batch and each rank keeps its own, so the crop
    of an image depends on its place in the global batch, not on the number of processes."""
    on_disk = isinstance(images, np.ndarray)
    for step, batch in enumerate(global_batches(len(images), args.batch_size, args.seed, epoch)):
        idx = shard(batch, rank, world)
        if on_disk:    # a memory map reads fastest in file order
            order = idx.sort()
            x = torch.from_numpy(np.ascontiguousarray(images[order.values.numpy()]))[order.indices.argsort()]
        else:
            x = images[idx]
        x, y = x.to(device, non_blocking=True), labels[idx].to(device, non_blocking=True)
        if args.model == "alexnet":
            gen = torch.Generator(device=device).manual_seed(args.seed * 100_003 + epoch * 10_007 + step)
            where = augment.crop_positions(len(batch), *x.shape[-2:], args.image_size, gen)
            x = augment.crop_at(x, *(t[rank::world] for t in where), args.image_size)
        x = loader.normalize(x)
        if args.float64:
            x = x.double()
        if device.type == "cuda":
            x = x.contiguous(memory_format=torch.channels_last)
        yield x, y


def _run(args, rank: int, world: int, device: torch.device) -> None:
    if args.batch_size % world:
        raise DistributedError(f"--batch-size {args.batch_size} is the global batch: it must split evenly over "
                               f"the {world} processes (use a multiple of {world}).")
    images, labels, classes = load_data(args.data, args.image_size, rank, world)
    if len(classes) < 2:
        raise DistributedError(f"--data {args.data} has {len(classes)} class ({', '.join(classes)}): a classifier "
                               "needs at least two class folders.")
    channels = images.shape[1]
    wanted = 3 if args.model == "alexnet" else 1
    if channels != wanted:
        raise DistributedError(f"--model {args.model} reads {wanted}-channel images, but --data {args.data} has "
                               f"{channels}: use alexnet for photos, lenet1 or lenet5 for digits.")
    steps = len(images) // args.batch_size
    if steps == 0:
        raise DistributedError(f"{len(images)} training images make no full batch of {args.batch_size}.")
    out = Path(args.out)
    ckpt = out / "checkpoint.pt"
    model = make_model(args.model, len(classes), args.seed, args.dropout).to(device)
    if args.float64:     # the same run in double precision: rounding differences between N shrink ~1e9-fold
        model = model.double()
    if device.type == "cuda":
        model = model.to(memory_format=torch.channels_last)
    settings = train.Settings(epochs=args.epochs, lr=args.lr, batch_size=args.batch_size,
                              weight_decay=args.weight_decay, seed=args.seed)
    identity = {k: getattr(args, k) for k in SETTINGS}   # what a checkpoint must match to be resumed
    config = {**identity, "classes": classes, "model_repr": repr(model)}
    run = train.TrainingRun(model, settings, steps, device, config)
    if args.resume:
        _resume(run, ckpt, rank, world)
    # after the resume, so that every rank starts from the same weights (DDP also copies rank 0's at build)
    run.step_model = nn.parallel.DistributedDataParallel(
        model, device_ids=[device.index] if device.type == "cuda" else None) if world > 1 else model
    if rank == 0:
        _writable(out)
        if run.epoch >= args.epochs:
            print(f"{ckpt} already holds {run.epoch} epochs of this run: nothing to train for --epochs "
                  f"{args.epochs} (ask for more epochs to go on).", flush=True)
        else:
            print(f"{args.model} on {args.data}: {len(images):,} images, {world} process(es) on {device.type}, "
                  f"global batch {args.batch_size} ({args.batch_size // world} per process), epochs "
                  f"{run.epoch + 1}..{args.epochs}", flush=True)
    reduce = dist.all_reduce if world > 1 else None
    while run.epoch < args.epochs:
        row = run.train_epoch(_rank_batches(images, labels, args, rank, world, run.epoch, device),
                              progress=rank == 0 and sys.stderr.isatty(), reduce=reduce)
        row["processes"] = world
        run.end_epoch(row, ckpt if rank == 0 else None)
        if rank == 0:
            files.atomic_write(out / "history.json", lambda f: json.dump(run.history.epochs, f, indent=1), mode="w")
            print(f"epoch {row['epoch']}: loss {row['train_loss']:.4f}, accuracy {row['train_accuracy']:.4f}, "
                  f"{row['seconds']:.1f} s", flush=True)
        barrier(world)
    if rank == 0:
        save_checkpoint(out / "final.pt", {k: v.detach().cpu() for k, v in model.state_dict().items()})
        print(f"wrote {out / 'final.pt'}", flush=True)


def _resume(run: train.TrainingRun, ckpt: Path, rank: int, world: int) -> None:
    """``--resume``: rank 0 reads the checkpoint (only rank 0 writes one, so only its folder is sure to hold it,
    also when the machines do not share ``--out``) and sends it to every rank, which all resume from it."""
    found, problem = None, None
    if rank == 0 and ckpt.exists():
        try:
            found = load_checkpoint(ckpt)
            check_resumable(ckpt, found, run.model, run.history.config)
        except RuntimeError as err:
            found, problem = None, str(err).splitlines()[0]
    if world > 1:
        box = [found, problem]
        dist.broadcast_object_list(box, src=0)
        found, problem = box
    if problem is not None:
        raise DistributedError(problem)
    if found is not None:
        try:
            run.resume_from(found, ckpt)
        except RuntimeError as err:
            raise DistributedError(str(err).splitlines()[0]) from None


class _OneLineParser(argparse.ArgumentParser):
    """argparse, with a bad argument reported in one line (no usage block above it); exit status 2."""

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message} (--help lists the options)\n")


def parser() -> argparse.ArgumentParser:
    p = _OneLineParser(prog="python -m course_lib.distributed",
                                description="Data-parallel training with torch.distributed (run it under torchrun "
                                            "for several processes, GPUs or machines).")
    p.add_argument("--model", choices=sorted(MODELS), required=True)
    p.add_argument("--data", type=parse_data, required=True,
                   help=f"{', '.join(NAMED_DATA)} or folder:PATH (an ImageFolder tree)")
    p.add_argument("--epochs", type=int, required=True)
    p.add_argument("--batch-size", type=int, default=64, help="the global batch, over all processes")
    p.add_argument("--lr", type=float, default=0.1)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--weight-decay", type=float, default=0.0)
    p.add_argument("--image-size", type=int, default=224, help="AlexNet's crop (the cache is 8/7 of it)")
    p.add_argument("--dropout", type=float, default=0.5,
                   help="AlexNet's dropout (each process draws its own masks: runs on different numbers of "
                        "processes agree exactly only without it)")
    p.add_argument("--out", required=True, help="folder for checkpoint.pt, history.json and final.pt")
    p.add_argument("--resume", action="store_true", help="continue from OUT/checkpoint.pt when there is one")
    p.add_argument("--timeout", type=float, default=300, help="seconds to wait for the other processes")
    p.add_argument("--cpu", action="store_true", help="train on the CPUs (gloo) even where there are GPUs")
    p.add_argument("--threads", type=int, default=None,
                   help="CPU threads per process (default: the machine's cores shared between its processes)")
    p.add_argument("--float64", action="store_true",
                   help="train in double precision (slower; shows how much of a difference between runs is rounding)")
    return p


def speed_up(one_s: float, many_s: float, processes: int, cores: int | None = None) -> str:
    """One line on how much faster ``processes`` processes ran than one (``one_s`` and ``many_s`` seconds), on a
    machine with ``cores`` CPU cores (default: this one's). N processes share the work at best N ways, and no
    more ways than there are cores: a larger ratio is not a speed-up but a sign that something else used the
    machine during one of the timings, and the line says so instead of reporting it as one."""
    cores = cores or os.cpu_count() or 1
    if not (one_s > 0 and many_s > 0) or processes < 1:
        raise ValueError(f"expected positive seconds and processes >= 1, got {one_s}, {many_s}, {processes}.")
    ratio, bound = one_s / many_s, min(processes, cores)
    if ratio <= 1.1 * bound:
        return f"{ratio:.1f}x as fast on {processes} processes ({bound}x is the most {processes} can share)"
    return (f"measured ratio {ratio:.1f}x, above the {bound}x that {processes} processes on {cores} cores can "
            "share: not a speed-up; other work on the machine slowed one of the timings, so they do not compare")


def check_arguments(args: argparse.Namespace) -> None:
    """Every setting's range, before anything starts: raises ``ValueError`` naming the first bad one."""
    train.Settings(epochs=args.epochs, lr=args.lr, batch_size=args.batch_size, weight_decay=args.weight_decay,
                   seed=args.seed)   # the ranges fit() checks
    if not 0 <= args.seed < 2**31:
        raise ValueError(f"--seed must be a whole number from 0 to {2**31 - 1}, got {args.seed}.")
    smallest = models.AlexNet.MIN_SIZE if args.model == "alexnet" else 1
    if args.image_size < smallest:
        raise ValueError(f"--image-size must be at least {smallest} pixels for {args.model}, got {args.image_size}.")
    if not 0 <= args.dropout < 1:
        raise ValueError(f"--dropout must be a number in [0, 1), got {args.dropout}.")
    if args.threads is not None and args.threads < 1:
        raise ValueError(f"--threads must be a whole number >= 1, got {args.threads}.")
    if not args.timeout > 0:
        raise ValueError(f"--timeout must be a positive number of seconds, got {args.timeout}.")
    if not args.out.strip():
        raise ValueError("--out must name a folder for checkpoint.pt, history.json and final.pt, got ''.")
    out = Path(args.out).expanduser()
    if out.exists() and not out.is_dir():
        raise ValueError(f"--out {out} is a file: give a folder (it is created when missing).")
    args.out = str(out)


def main(argv=None) -> int:
    """The command line: exit status 0 when the run finished, 2 for a bad argument, 1 when the run could not
    start or go on; every failure is one line saying what was wrong and what to do."""
    cli = parser()
    args = cli.parse_args(argv)
    try:
        check_arguments(args)
    except ValueError as err:
        cli.error(str(err))
    try:
        run(args)
    except (DistributedError, train.TrainingDiverged, RuntimeError, ValueError, OSError) as err:
        first = " ".join(line.strip() for line in str(err).splitlines() if line.strip()) or type(err).__name__
        print(f"error: {first}", file=sys.stderr, flush=True)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
