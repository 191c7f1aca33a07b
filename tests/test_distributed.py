"""course_lib.distributed on this machine's CPUs with gloo: the same weights on 1, 2 and 4 processes,
on two torchrun "nodes" on the loopback address, and after a rank is killed and torchrun restarts it.
Every run is the real command line, in its own processes."""

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

TORCHRUN = [sys.executable, "-m", "torch.distributed.run"]
RUN = ["-m", "course_lib.distributed"]
LENET = ["--model", "lenet1", "--data", "mnist-sample", "--batch-size", "64", "--lr", "0.3", "--seed", "0"]

pytestmark = pytest.mark.slow


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _env():
    # one thread per process: 4 processes on 2 cores must not fight over them; float32 even on a CPU with native
    # bf16 (fit's autocast there): these tests compare 1 and 2 processes to float32's rounding
    return dict(os.environ, OMP_NUM_THREADS="1", PYTHONUNBUFFERED="1", COURSE_BF16_CPU="0")


def _run(cmd, timeout=300, **kw):
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=_env(), **kw)
    assert done.returncode == 0, f"{' '.join(cmd)} failed:\n{done.stdout[-2000:]}\n{done.stderr[-3000:]}"
    return done


def _weights(out: Path) -> dict:
    return torch.load(out / "final.pt", weights_only=True)


def _same(a: dict, b: dict, atol=1e-4) -> float:
    assert list(a) == list(b)
    gap = max((a[k] - b[k]).abs().max().item() for k in a)
    assert gap < atol, f"the weights differ by up to {gap:.3g}"
    return gap


@pytest.fixture(scope="module")
def one_process(tmp_path_factory):
    out = tmp_path_factory.mktemp("dist") / "n1"
    _run([sys.executable, *RUN, *LENET, "--epochs", "1", "--out", str(out)])
    return out


@pytest.mark.parametrize("n", [2, 4])
def test_same_weights_on_any_number_of_processes(one_process, tmp_path, n):
    out = tmp_path / f"n{n}"
    _run([*TORCHRUN, "--standalone", f"--nproc_per_node={n}", *RUN, *LENET, "--epochs", "1", "--out", str(out)])
    _same(_weights(one_process), _weights(out))
    history = (out / "history.json").read_text()
    assert f'"processes": {n}' in history


def test_a_different_seed_gives_different_weights(one_process, tmp_path):
    """The control of the equivalence test: its tolerance is far below what another run changes."""
    out = tmp_path / "seed1"
    _run([sys.executable, *RUN, *LENET[:-1], "1", "--epochs", "1", "--out", str(out)])
    with pytest.raises(AssertionError, match="differ"):
        _same(_weights(one_process), _weights(out))


def _two_nodes(outs: list, port: int, extra: list) -> None:
    """Two torchrun "machines" on the loopback address, one process each, each with its own --out folder
    (nothing shared on disk, as on two real machines)."""
    nodes = [subprocess.Popen([*TORCHRUN, "--nnodes=2", "--nproc_per_node=1", "--rdzv-backend=c10d",
                               f"--rdzv-endpoint=127.0.0.1:{port}", f"--rdzv-id=test-{port}", *RUN, *LENET, *extra,
                               "--out", str(out)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                              env=_env()) for out in outs]
    logs = [p.communicate(timeout=300)[0] for p in nodes]
    assert all(p.returncode == 0 for p in nodes), "\n".join(log[-2000:] for log in logs)


def test_two_nodes_on_the_loopback_address_train_and_resume_without_a_shared_folder(one_process, tmp_path):
    """Only rank 0 writes the checkpoint, into its own machine's --out: resuming on two machines that share
    no folder must start every rank from rank 0's checkpoint (rank 1's folder holds none; before, it started
    from fresh weights and the ranks disagreed), and end where one process doing the same ends: one epoch,
    then resumed to two."""
    outs = [tmp_path / "node_a", tmp_path / "node_b"]
    _two_nodes(outs, _free_port(), ["--epochs", "1"])
    written = [o for o in outs if (o / "final.pt").exists()]
    assert len(written) == 1, "rank 0 writes, on its own machine"
    _same(_weights(one_process), _weights(written[0]))
    _two_nodes(outs, _free_port(), ["--epochs", "2", "--resume"])
    straight = tmp_path / "one_process"
    shutil.copytree(one_process, straight)      # one epoch in one process, as the fixture ran it
    _run([sys.executable, *RUN, *LENET, "--epochs", "2", "--resume", "--out", str(straight)])
    resumed = [o for o in outs if (o / "final.pt").exists() and json_epochs(o) == 2]
    assert resumed, "a resumed run wrote its final weights"
    _same(_weights(straight), _weights(resumed[0]))


def json_epochs(out: Path) -> int:
    import json
    return len(json.loads((out / "history.json").read_text())) if (out / "history.json").exists() else 0


def _children(pid: int) -> list[int]:
    found = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True).stdout.split()
    return [int(p) for p in found]


def test_a_killed_rank_restarts_from_the_checkpoint_with_the_same_result(tmp_path):
    args = [*LENET, "--epochs", "4", "--resume"]
    straight = tmp_path / "straight"
    _run([*TORCHRUN, "--standalone", "--nproc_per_node=2", *RUN, *args, "--out", str(straight)])

    out = tmp_path / "killed"
    run = subprocess.Popen([*TORCHRUN, "--standalone", "--nproc_per_node=2", "--max-restarts=1", *RUN, *args,
                            "--out", str(out)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                           env=_env())
    deadline = time.time() + 120
    while not (out / "history.json").exists():            # epoch 1 is saved ...
        assert run.poll() is None and time.time() < deadline, run.communicate()[0][-3000:]
        time.sleep(0.05)
    workers = _children(run.pid)
    assert len(workers) == 2, f"expected torchrun's 2 workers, found {workers}"
    os.kill(workers[1], signal.SIGKILL)                   # ... and rank 1 dies in epoch 2
    log = run.communicate(timeout=300)[0]
    assert run.returncode == 0, log[-3000:]
    assert "epochs 2..4" in log or "epochs 3..4" in log, "the restarted run must resume, not start again"
    _same(_weights(straight), _weights(out), atol=1e-6)


def test_resuming_another_models_checkpoint_is_refused(one_process, tmp_path):
    out = tmp_path / "other"
    _run([sys.executable, *RUN, *LENET, "--epochs", "1", "--out", str(out)])
    done = subprocess.run([sys.executable, *RUN, *LENET[2:], "--model", "lenet5", "--epochs", "2", "--resume",
                           "--out", str(out)], capture_output=True, text=True, timeout=300, env=_env())
    assert done.returncode == 1
    assert "checkpoint of another run (model: 'lenet1' there, 'lenet5' now)" in done.stderr


@pytest.mark.parametrize("data, message", [
    ("cifar", "unknown data 'cifar': expected one of mnist-sample, mnist, imagenette, imagewoof or folder:PATH"),
    ("folder:/no/such/place", "no such folder"),
])
def test_bad_data_is_named(data, message, tmp_path):
    done = subprocess.run([sys.executable, *RUN, "--model", "lenet1", "--data", data, "--epochs", "1",
                           "--out", str(tmp_path)], capture_output=True, text=True, timeout=120, env=_env())
    assert done.returncode == 2 and message in done.stderr


def test_an_unreachable_rendezvous_is_a_clear_error(tmp_path):
    env = dict(_env(), RANK="1", WORLD_SIZE="2", LOCAL_RANK="0", MASTER_ADDR="127.0.0.1",
               MASTER_PORT=str(_free_port()))   # nobody listens there
    started = time.time()
    done = subprocess.run([sys.executable, *RUN, *LENET, "--epochs", "1", "--timeout", "3", "--out", str(tmp_path)],
                          capture_output=True, text=True, timeout=120, env=env)
    assert done.returncode == 1, done.stderr[-2000:]
    assert "Rank 1 of 2 could not join the process group at 127.0.0.1:" in done.stderr
    assert "Traceback" not in done.stderr
    assert time.time() - started < 60


def test_an_image_folder_is_cached_once_and_trained_on_two_processes(tmp_path):
    """folder:PATH with real photos: each rank decodes its share into the memory-mapped cache, then
    AlexNet (random crops and flips, no dropout) trains on 2 processes to the same weights as on 1."""
    from skimage import data as photos
    from PIL import Image

    pictures = {"cat": photos.chelsea(), "astronaut": photos.astronaut(), "coffee": photos.coffee(),
                "rocket": photos.rocket()}
    for split in ("train",):
        for i, (name, img) in enumerate(pictures.items()):
            for j in range(4):
                folder = tmp_path / "photos" / split / ("animal" if name == "cat" else f"thing{i % 2}")
                folder.mkdir(parents=True, exist_ok=True)
                crop = img[j * 10:, j * 15:]
                Image.fromarray(np.ascontiguousarray(crop)).save(folder / f"{name}{j}.jpg")
    args = ["--model", "alexnet", "--data", f"folder:{tmp_path / 'photos'}", "--image-size", "64",
            "--batch-size", "8", "--lr", "0.01", "--epochs", "1", "--dropout", "0"]
    _run([*TORCHRUN, "--standalone", "--nproc_per_node=2", *RUN, *args, "--out", str(tmp_path / "two")])
    cache = tmp_path / "photos" / ".course-cache"
    images = np.load(cache / "train-73px.npy", mmap_mode="r")
    assert images.shape == (16, 3, 73, 73) and images.dtype == np.uint8 and images.max() > 0
    assert not list(cache.glob("*.tmp*")), "nothing half-written is left"
    stamp = (cache / "train-73px.npy").stat().st_mtime_ns
    _run([sys.executable, *RUN, *args, "--out", str(tmp_path / "one")])
    assert (cache / "train-73px.npy").stat().st_mtime_ns == stamp, "the cache is built once"
    _same(_weights(tmp_path / "one"), _weights(tmp_path / "two"), atol=1e-5)


def test_speed_up_never_reports_more_than_the_processes_and_cores_can_share():
    from course_lib.distributed import speed_up

    assert speed_up(2.0, 1.1, 2, cores=2).startswith("1.8x as fast on 2 processes")
    # 27x on 2 processes and 2 cores cannot be sharing: the line says so instead of calling it a speed-up
    line = speed_up(24.3, 0.9, 2, cores=2)
    assert "27.0x" in line and "not a speed-up" in line and "as fast" not in line
    assert "not a speed-up" in speed_up(8.0, 2.0, 4, cores=2)    # 4 processes on 2 cores share at most 2 ways
    with pytest.raises(ValueError):
        speed_up(0.0, 1.0, 2)
