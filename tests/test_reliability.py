"""Reliability, round three: each cause a red team or a code read found (issue 30), as a test that failed
before its fix. One section per module; each test names what used to happen."""

import io
import json
import math
import os
import shutil
import threading
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn as nn

from course_lib import (checkpoints, digits, distributed, files, image_folders, imagenette, layers, loader, made_images,
                        measure, models, receptive_fields, references, train, trained, viz)
from course_lib.instructor import build_references, notebooks
from helpers import edge_detectors
from course_lib.instructor.course import NotebookError


@pytest.fixture(scope="module")
def sample():
    return digits.mnist_sample("train")


# --- references --------------------------------------------------------------------------------------------

def _copy_reference(name: str, to: Path, as_name: str | None = None) -> None:
    for suffix in (".pt", ".json"):
        shutil.copy(references.REFERENCE_DIR / f"{name}{suffix}", to / f"{as_name or name}{suffix}")


def test_a_reference_copied_under_another_name_is_refused(tmp_path):
    """lenet1-mnist's files copied to alexnet-imagenette.* used to load silently as a LeNet1."""
    _copy_reference("lenet1-mnist", tmp_path, "alexnet-imagenette")
    with pytest.raises(RuntimeError, match="describes 'lenet1-mnist', not 'alexnet-imagenette'"):
        references.load_network("alexnet-imagenette", tmp_path)


@pytest.mark.parametrize("damage, message", [
    (lambda r: "{\"name\": \"lenet1-mnist\", ", "not a valid record"),              # truncated JSON
    (lambda r: json.dumps({k: v for k, v in r.items() if k != "sha256"}), "has no SHA-256"),
    (lambda r: json.dumps({**r, "model": {"class": "os.system", "kwargs": {}}}),
     "model must be one of LeNet1, AlexNet"),
    (lambda r: json.dumps({**r, "model": {"class": "AlexNet", "kwargs": {}}}),
     "holds a AlexNet, but 'lenet1-mnist' is a LeNet1"),
])
def test_a_damaged_record_is_a_clear_error_not_a_raw_one(tmp_path, damage, message):
    """They used to raise JSONDecodeError, KeyError or build any class the record named."""
    _copy_reference("lenet1-mnist", tmp_path)
    record = json.loads((tmp_path / "lenet1-mnist.json").read_text())
    (tmp_path / "lenet1-mnist.json").write_text(damage(record))
    with pytest.raises(RuntimeError, match=message):
        references.load_network("lenet1-mnist", tmp_path)


@pytest.mark.parametrize("weights", ["wrong shape", "pickled object"])
def test_sealed_weights_that_are_not_the_networks_are_refused(tmp_path, weights):
    """Weights of a wrong shape, or a pickled object, with a record whose SHA-256 matches them, used to
    raise torch's own errors."""
    _copy_reference("lenet1-mnist", tmp_path)
    payload = {"conv1.weight": torch.zeros(3, 3)} if weights == "wrong shape" else {"x": object()}
    buffer = io.BytesIO()
    torch.save(payload, buffer)
    (tmp_path / "lenet1-mnist.pt").write_bytes(buffer.getvalue())
    record = json.loads((tmp_path / "lenet1-mnist.json").read_text())
    record["sha256"] = references.sha256(tmp_path / "lenet1-mnist.pt")
    (tmp_path / "lenet1-mnist.json").write_text(json.dumps(record))
    with pytest.raises(RuntimeError, match="does not hold 'lenet1-mnist''s weights"):
        references.load_network("lenet1-mnist", tmp_path)


def test_listing_damaged_references_prints_lines_not_a_traceback(tmp_path, monkeypatch, capsys):
    _copy_reference("lenet1-mnist", tmp_path)
    (tmp_path / "lenet1-mnist.json").write_text("{")
    monkeypatch.setattr(references, "REFERENCE_DIR", tmp_path)
    assert build_references.main(["list"]) == 0
    out = capsys.readouterr().out
    assert "lenet1-mnist: " in out and "not a valid record" in out and "Traceback" not in out


@pytest.mark.parametrize("argv, message", [
    (["--epochs", "0"], "--epochs must be at least 1, got 0"),
    (["--threads", "-2"], "--threads must be at least 1, got -2"),
    (["--seed", "-1"], "--seed must be a whole number >= 0"),
])
def test_bad_build_settings_are_one_line_before_any_training(argv, message, tmp_path, capsys):
    with pytest.raises(SystemExit) as done:
        build_references.main(["build", "lenet1-mnist", "--out", str(tmp_path), *argv])
    err = capsys.readouterr().err
    assert done.value.code == 2 and message in err and "Traceback" not in err


def test_epochs_zero_is_refused_not_ten(tmp_path):
    """build(epochs=0) used to train 10 epochs (0 read as "not given")."""
    with pytest.raises(ValueError, match="epochs must be a whole number >= 1, got 0"):
        build_references.build("lenet1-mnist", profile="smoke", epochs=0, out=tmp_path)


def test_an_out_that_is_a_file_is_refused_before_training(tmp_path, monkeypatch):
    """It used to fail only after training."""
    monkeypatch.setattr(train, "fit", lambda *a, **k: pytest.fail("trained before checking out"))
    (tmp_path / "afile").write_text("x")
    with pytest.raises(ValueError, match="afile is a file"):
        build_references.build("lenet1-mnist", profile="smoke", epochs=1, out=tmp_path / "afile")


def test_a_build_without_its_data_is_one_line(tmp_path, monkeypatch, capsys):
    """An offline `--profile cpu` build used to end in a traceback."""
    (tmp_path / "empty").mkdir()
    monkeypatch.setenv("COURSE_MNIST", str(tmp_path / "empty"))
    assert build_references.main(["build", "lenet1-mnist", "--profile", "cpu", "--out", str(tmp_path / "o")]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "holds neither" in err and "Traceback" not in err


def test_the_record_hashes_the_bytes_this_build_wrote(tmp_path, monkeypatch):
    """Two interleaved builds used to leave a record hashed from the other build's weights: here the other
    build replaces the weights right after this one wrote them, and the pairing is caught on load."""
    monkeypatch.setenv("COURSE_DATA", str(tmp_path / "data"))
    real = build_references.atomic_write

    def then_another_build(path, write, mode="wb"):
        real(path, write, mode)
        if Path(path).suffix == ".pt":
            Path(path).write_bytes(Path(path).read_bytes() + b"\0")      # the other build's file

    monkeypatch.setattr(build_references, "atomic_write", then_another_build)
    build_references.build("lenet1-mnist", profile="smoke", epochs=1, out=tmp_path, progress=False)
    with pytest.raises(RuntimeError, match="is not the file its record describes"):
        references.load_network("lenet1-mnist", tmp_path)


# --- made images -------------------------------------------------------------------------------------------

PLAIN = {"mean": (0.0,), "std": (1.0,)}


_edges = edge_detectors


def test_made_images_work_inside_no_grad():
    """Under torch.no_grad() fgsm and maximize used to fail with torch's message."""
    model = nn.Sequential(nn.Flatten(), nn.Linear(4, 2))
    with torch.no_grad():
        image, curve = made_images.maximize(_edges(), "0", 0, size=9, steps=3, **PLAIN)
        adv = made_images.fgsm(model, torch.rand(2, 1, 2, 2), [0, 1], 0.1, **PLAIN)
    assert len(curve) == 3 and adv.shape == (2, 1, 2, 2)


@pytest.mark.parametrize("kwargs, message", [
    ({"channel": 1.5}, "channel must be a whole number"), ({"channel": True}, "channel must be a whole number"),
    ({"unit": (30, 30)}, r"unit \(30, 30\) is outside"), ({"unit": "corner"}, "unit must be \"center\""),
    ({"jitter": -2}, "jitter must be"), ({"blur": math.nan}, "blur must be"), ({"decay": math.nan}, "decay must be"),
    ({"steps": 0}, "steps must be a whole number >= 1"), ({"steps": -3}, "steps must be a whole number >= 1"),
    ({"channel": 5}, "channel must be between 0 and 1"),
])
def test_maximize_names_a_bad_setting(kwargs, message):
    settings = {"channel": 0, "size": 9, "steps": 2, **kwargs}
    channel = settings.pop("channel")
    with pytest.raises(ValueError, match=message):
        made_images.maximize(_edges(), "0", channel, **settings, **PLAIN)


@pytest.mark.parametrize("call, message", [
    (lambda m, x: made_images.pgd(m, x, [0, 1], 0.1, step_size=math.nan, **PLAIN), "step_size must be"),
    (lambda m, x: made_images.pgd(m, x, [0, 1], 0.1, steps=0, **PLAIN), "steps must be a whole number >= 1"),
    (lambda m, x: made_images.fgsm(m, x, [0, 10], 0.1, **PLAIN), "labels run up to 10, but the model has 2 outputs"),
    (lambda m, x: made_images.smallest_epsilon(m, x, [0, 1], [0.1], attack="FGSM", **PLAIN), "attack must be one of"),
    (lambda m, x: made_images.answers(m, (x * 255).byte(), **PLAIN), "float pixels in \\[0, 1\\]"),
])
def test_attacks_name_a_bad_setting(call, message):
    """steps=0 used to divide by zero, label 10 raised torch's IndexError, attack="FGSM" ran PGD, uint8
    images were read as if scaled."""
    model = nn.Sequential(nn.Flatten(), nn.Linear(4, 2))
    with pytest.raises(ValueError, match=message):
        call(model, torch.rand(2, 1, 2, 2))


def test_numpy_and_tensor_epsilons_are_numbers():
    model = nn.Sequential(nn.Flatten(), nn.Linear(4, 2))
    x = torch.rand(2, 1, 2, 2)
    for eps in (np.float32(0.1), torch.tensor(0.1)):
        assert made_images.fgsm(model, x, [0, 1], eps, **PLAIN).shape == x.shape


def test_a_model_without_parameters_is_not_a_stop_iteration():
    """A model without parameters used to raise StopIteration (its device was its first parameter's)."""
    x = torch.rand(2, 1, 2, 2)
    assert made_images.answers(nn.Flatten(), x, **PLAIN).tolist() == x.flatten(1).argmax(1).tolist()


def test_maximize_at_its_defaults_finds_a_known_edge_detector():
    """At the old defaults (the channel's mean, lr 0.05) the made image stayed mostly its random start: an
    edge filter's weights sum to zero, so the mean cancels everywhere but at the border. Then (the centre unit,
    a start of strong noise: issue 40) the centre held the edge but the whole image excited its channel only
    1.45 times the other orientation's, and varied 1.07 times more across the edge than along it: the rest
    stayed noise. With a faint start the pixels the unit does not see stay gray (measured 2.6 and 1.7)."""
    vertical = _edges()[0].weight[0, 0].detach()
    image, _ = made_images.maximize(_edges(), "0", 0, size=28, steps=64, **PLAIN)
    centre = image[0, 12:17, 12:17]
    assert torch.corrcoef(torch.stack([centre.flatten(), vertical.flatten()]))[0, 1] > 0.9
    out = _edges()(image[None])[0].detach().abs().mean((1, 2))          # each orientation's response, everywhere
    across, along = image[0].diff(dim=1).abs().mean(), image[0].diff(dim=0).abs().mean()
    assert out[0] > 2.2 * out[1] and across > 1.5 * along


def test_a_digit_already_wrong_needs_no_change():
    model = nn.Sequential(nn.Flatten(), nn.Linear(4, 2))
    x = torch.rand(6, 1, 2, 2)
    answers = made_images.answers(model, x, **PLAIN)
    wrong = 1 - answers                                   # every label wrong
    assert made_images.smallest_epsilon(model, x, wrong, [0.1, 0.5], **PLAIN).tolist() == [0.0] * 6


# --- image folders -----------------------------------------------------------------------------------------

def _photos(root: Path, classes=("a", "b"), per_class=3) -> Path:
    from PIL import Image
    rng = np.random.default_rng(0)
    for c in classes:
        (root / c).mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            Image.fromarray(rng.integers(0, 255, (20, 20, 3), dtype=np.uint8)).save(root / c / f"{i}.png")
    return root


def test_a_decompression_bomb_is_skipped_with_skip_bad(tmp_path):
    """A PNG header announcing 40,000 x 40,000 px raised DecompressionBombError even with skip_bad=True."""
    import struct
    import zlib
    folder = _photos(tmp_path / "photos")
    header = struct.pack(">IIBBBBB", 40_000, 40_000, 8, 2, 0, 0, 0)
    chunk = lambda kind, data: struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    (folder / "a" / "bomb.png").write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IEND", b""))
    with pytest.raises(RuntimeError, match="bomb.png could not be decoded.*larger than PIL's limit"):
        image_folders.cache(folder, tmp_path / "c1", 16, progress=False)
    with pytest.warns(UserWarning, match="bomb.png could not be decoded"):
        images, labels, _ = image_folders.cache(folder, tmp_path / "c2", 16, progress=False, skip_bad=True)
    assert len(images) == 6 and labels.tolist() == [0, 0, 0, 1, 1, 1]


def test_a_float_tiff_keeps_its_gray_levels(tmp_path):
    """A float TIFF (values in [0, 1]) used to decode black."""
    from PIL import Image
    ramp = np.linspace(0, 1, 32 * 32, dtype=np.float32).reshape(32, 32)
    Image.fromarray(ramp, mode="F").save(tmp_path / "ramp.tif")
    pixels = image_folders.decode(tmp_path / "ramp.tif", 32)
    assert abs(pixels.mean() - 127.5) < 3


def test_a_file_replaced_by_one_of_the_same_size_and_time_is_read_again(tmp_path):
    """The cache used to keep the old pixels (its fingerprint was size and modification time)."""
    from PIL import Image
    folder = _photos(tmp_path / "photos")
    first, _, _ = image_folders.cache(folder, tmp_path / "c", 16, progress=False)
    target = folder / "a" / "0.png"
    stat = target.stat()
    Image.new("RGB", (20, 20), (255, 255, 255)).save(tmp_path / "white.png")
    data = (tmp_path / "white.png").read_bytes()
    os.replace(tmp_path / "white.png", target)
    os.utime(target, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert target.stat().st_mtime_ns == stat.st_mtime_ns and len(data) > 0
    again, _, _ = image_folders.cache(folder, tmp_path / "c", 16, progress=False)
    assert again[0].min() == 255 and not np.array_equal(first[0], again[0])


def test_a_cache_whose_images_file_was_deleted_is_rebuilt(tmp_path):
    """A deleted cache .npy whose fingerprint was kept used to be trusted (and fail to load)."""
    folder = _photos(tmp_path / "photos")
    image_folders.cache(folder, tmp_path / "c", 16, progress=False)
    (tmp_path / "c.npy").unlink()
    images, labels, _ = image_folders.cache(folder, tmp_path / "c", 16, progress=False)
    assert len(images) == 6 and (tmp_path / "c.npy").exists()


def test_an_interrupted_cache_leaves_no_full_size_temporary_file(tmp_path, monkeypatch):
    """Ctrl-C during the folder cache used to leave a full-size *.tmp.npy that nothing removed."""
    folder = _photos(tmp_path / "photos")
    calls = []

    def interrupted(path, resolution):
        calls.append(path)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return np.zeros((resolution, resolution, 3), np.uint8)

    monkeypatch.setattr(image_folders, "decode", interrupted)
    with pytest.raises(KeyboardInterrupt):
        image_folders.cache(folder, tmp_path / "cache" / "train-16px", 16, progress=False)
    assert not list((tmp_path / "cache").glob("*tmp*")), "nothing half-built stays"


def test_one_process_s_bad_image_stops_every_process_with_its_message(tmp_path):
    """In the distributed folder cache one rank's bad image used to leave the others waiting at the barrier
    until the time-out."""
    folder = _photos(tmp_path / "photos")
    (folder / "b" / "1.png").write_bytes(b"not an image")
    meeting = threading.Barrier(2, timeout=20)
    errors = {}

    def rank(k):
        try:
            image_folders.cache(folder, tmp_path / "c", 16, progress=False, share=(k, 2), barrier=meeting.wait)
        except Exception as err:   # noqa: BLE001 — what each rank raised
            errors[k] = err

    threads = [threading.Thread(target=rank, args=(k,)) for k in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert not any(t.is_alive() for t in threads), "a rank is still waiting"
    assert all(isinstance(errors.get(k), RuntimeError) and "1.png could not be decoded" in str(errors[k])
               for k in range(2)), errors


def test_the_imagenette_download_writes_a_partial_file_of_its_own(tmp_path, monkeypatch):
    """Two first-time users of one data folder used to share a fixed <name>.tgz.part."""
    import torchvision.datasets.utils as utils
    names = []

    def fake_download(url, root, filename, md5):
        names.append(filename)
        raise OSError("offline")

    monkeypatch.setattr(utils, "download_url", fake_download)
    for _ in range(2):
        with pytest.raises(RuntimeError, match="Could not download"):
            imagenette.load_split("train", root=tmp_path)
    assert len(set(names)) == 2 and all(n.endswith(".part") for n in names)
    assert not list(tmp_path.glob("*.part"))


# --- the distributed command line --------------------------------------------------------------------------

def test_an_empty_folder_data_is_refused(capsys, tmp_path):
    """`--data folder:` used to train on the current folder and write a cache there."""
    with pytest.raises(SystemExit) as done:
        distributed.main(["--model", "lenet1", "--data", "folder:", "--epochs", "1", "--out", str(tmp_path)])
    assert done.value.code == 2 and "folder: names no folder" in capsys.readouterr().err


def test_a_bad_world_size_names_the_variable(monkeypatch, tmp_path, capsys):
    monkeypatch.setenv("WORLD_SIZE", "abc")
    assert distributed.main(["--model", "lenet1", "--data", "mnist-sample", "--epochs", "1",
                             "--out", str(tmp_path / "o")]) == 1
    assert "WORLD_SIZE='abc' is not a whole number" in capsys.readouterr().err


def test_mnist_offline_is_one_whole_line_with_its_fix(monkeypatch, tmp_path, capsys):
    """The message used to be cut at its first line break, before the fix it gives."""
    (tmp_path / "empty").mkdir()
    monkeypatch.setenv("COURSE_MNIST", str(tmp_path / "empty"))
    argv = ["--model", "lenet1", "--data", "mnist", "--epochs", "1", "--out", str(tmp_path / "o")]
    assert distributed.main(argv) == 1
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "holds neither" in err and "put MNIST's four files there" in err


def test_a_run_gives_back_the_threads_and_the_random_state(tmp_path):
    """start() used to set torch's threads for good, and make_model reseeded the caller's generator."""
    threads = torch.get_num_threads()
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    distributed.make_model("lenet1", 10, seed=0)
    assert torch.equal(torch.rand(3), expected)
    torch.set_num_threads(1)
    try:
        assert distributed.main(["--model", "lenet1", "--data", "mnist-sample", "--epochs", "1", "--batch-size", "512",
                                 "--out", str(tmp_path / "o")]) == 0
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(threads)


# --- training ----------------------------------------------------------------------------------------------

@pytest.mark.parametrize("kwargs, message", [
    ({"epochs": 2.0}, "epochs must be a whole number >= 1, got 2.0"),
    ({"epochs": 1, "batch_size": 64.0}, "batch_size must be a whole number >= 1, got 64.0"),
    ({"epochs": 1, "mean": (math.nan,), "std": (1.0,)}, "mean must be a finite number for every channel"),
])
def test_fit_refuses_what_used_to_fail_inside(sample, kwargs, message):
    """epochs=2.0 and batch_size=64.0 used to pass the checks and fail inside; mean=nan ended as a
    TrainingDiverged advising a smaller learning rate."""
    with pytest.raises(ValueError, match=message):
        train.fit(models.LeNet1(), (sample[0][:256], sample[1][:256]), progress=False, device="cpu", **kwargs)


def test_resuming_with_fewer_epochs_than_the_checkpoint_holds_is_an_error(sample, tmp_path):
    """It used to return the longer run silently."""
    ckpt = tmp_path / "run.pt"
    data = (sample[0][:256], sample[1][:256])
    train.fit(models.LeNet1(), data, epochs=2, progress=False, device="cpu", checkpoint=ckpt)
    with pytest.raises(RuntimeError, match="holds 2 epochs of this run, more than the 1 asked for"):
        train.fit(models.LeNet1(), data, epochs=1, progress=False, device="cpu", checkpoint=ckpt)


def test_a_hook_that_adds_numpy_numbers_leaves_a_checkpoint_that_resumes(sample, tmp_path):
    """The checkpoint used to load as "corrupted" (weights_only refuses numpy numbers), with ANSI codes."""
    ckpt = tmp_path / "run.pt"
    data = (sample[0][:256], sample[1][:256])

    def note(model, epoch, history, last):
        if history.epochs:
            history.epochs[-1]["score"] = np.float64(0.5)

    train.fit(models.LeNet1(), data, epochs=1, progress=False, device="cpu", checkpoint=ckpt, on_epoch_end=[note])
    history = train.fit(models.LeNet1(), data, epochs=2, progress=False, device="cpu", checkpoint=ckpt)
    assert history.epochs[0]["score"] == 0.5 and type(history.epochs[0]["score"]) is float


def test_fit_leaves_the_model_in_the_mode_it_was_in_and_moves_the_validation_set_once(sample, monkeypatch):
    """fit used to leave an eval-mode model in train mode, and copied the validation set every epoch."""
    made = []
    real = train.TensorLoader

    class Counted(real):
        def __init__(self, *a, **k):
            made.append(1)
            super().__init__(*a, **k)

    monkeypatch.setattr(train, "TensorLoader", Counted)
    monkeypatch.setattr(loader, "TensorLoader", Counted)      # fit builds its batches with loader.batches_for
    model = models.LeNet1().eval()
    data = (sample[0][:256], sample[1][:256])
    train.fit(model, data, data, epochs=3, progress=False, device="cpu")
    assert not model.training and len(made) == 2      # the training and the validation loader, once each


def test_load_or_train_alexnet_sees_an_older_checkpoint_as_missing(tmp_path):
    """An older checkpoint without image_size used to raise a bare KeyError."""
    path = tmp_path / "old.pt"
    checkpoints.save_checkpoint(path, {"model": {}, "classes": ["a", "b"]})
    d = imagenette.ImagenetteData(torch.zeros(1, 3, 8, 8, dtype=torch.uint8), torch.zeros(1, dtype=torch.long),
                                  torch.zeros(1, 3, 7, 7, dtype=torch.uint8), torch.zeros(1, dtype=torch.long),
                                  ["a", "b"], offline=True)
    from course_lib import env
    assert trained._matching_checkpoint(path, d, env.profile("smoke")) is None


def test_overlay_reads_a_dark_uint8_image_as_uint8():
    """A uint8 image whose values are all 0 or 1 used to be read as floats in [0, 1] (white)."""
    dark = np.array([[0, 1], [1, 0]], dtype=np.uint8)
    shown = viz.overlay(dark, np.zeros((2, 2)), alpha=0.0)
    assert shown.max() <= 1 / 255 + 1e-6


# --- notebooks and files -----------------------------------------------------------------------------------

@pytest.mark.parametrize("marker", ["### BEGIN SOLU\u200bTION", "### B\u0415GIN SOLUTION", "### SOLUTION BEGIN",
                                    "### END SOLUTI\u041eN"])
def test_disguised_markers_never_copy_an_answer(marker):
    """A zero-width space, a Cyrillic letter or the words the other way round used to copy a markdown answer
    into the student notebook."""
    with pytest.raises(NotebookError):
        notebooks.strip_solutions(f"Explain:\n{marker}\nthe answer\n### END SOLUTION", "markdown", "n, cell 1")


def test_an_answer_picture_is_dropped_when_another_name_only_starts_like_it():
    """plot.png survived when another cell named attachment:plot.png.orig."""
    import nbformat
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell(
        "### BEGIN SOLUTION\n![x](attachment:plot.png)\n### END SOLUTION\nsee ![y](attachment:plot.png.orig)",
        attachments={"plot.png": {"image/png": "AAA"}, "plot.png.orig": {"image/png": "BBB"}})])
    nb.metadata["kernelspec"] = {"name": "python3", "language": "python"}
    cell = notebooks.make_student(nb, "01_x.ipynb").cells[0]
    assert set(cell.attachments) == {"plot.png.orig"}


def test_atomic_write_takes_the_longest_names_refuses_append_and_expands_home(tmp_path, monkeypatch):
    """A legal 249-character name failed (the temporary name was longer), mode="a" dropped the content,
    and "~" made a folder named "~"."""
    long = tmp_path / ("x" * 249)
    files.atomic_write(long, lambda f: f.write(b"ok"))
    assert long.read_bytes() == b"ok" and len(list(tmp_path.iterdir())) == 1
    with pytest.raises(ValueError, match="mode must be 'w'"):
        files.atomic_write(long, lambda f: f.write("more"), mode="a")
    assert long.read_bytes() == b"ok"
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.chdir(tmp_path)
    files.atomic_write("~/notes.txt", lambda f: f.write("x"), mode="w")
    assert (tmp_path / "home" / "notes.txt").read_text() == "x" and not (tmp_path / "~").exists()


@pytest.mark.parametrize("content", [b"not gzip at all", None])
def test_broken_gz_idx_files_are_named(tmp_path, content):
    """A non-gzip .gz and a truncated .gz used to raise BadGzipFile / EOFError."""
    import gzip
    path = tmp_path / "t10k-labels-idx1-ubyte.gz"
    whole = gzip.compress(b"\x00\x00\x08\x01" + (3).to_bytes(4, "big") + b"\x01\x02\x03")
    path.write_bytes(content if content is not None else whole[:12])
    with pytest.raises(ValueError, match="is not a whole gzip file"):
        digits.read_idx(path, 1)


# --- networks, layers, recorders ---------------------------------------------------------------------------

def test_lenet1s_receptive_field_is_in_input_pixels_and_matches_the_measurement():
    """receptive_field ignored DigitFrame's 20 -> 16 px shrink (conv1 unit (12, 12): rows 12..16 computed),
    and measured_field counted floating-point leftovers through the frame's background (rows 0..19)."""
    torch.manual_seed(0)
    net = models.LeNet1()
    assert receptive_fields.field_box(net, "conv1", 12, 12) == (11, 11, 17, 17)
    reached = receptive_fields.measured_field(net, "conv1", torch.randn(4, 1, 28, 28), 12, 12)
    rows = reached.any(1).nonzero().flatten()
    assert (int(rows.min()), int(rows.max())) == (11, 17)


def test_the_two_device_alexnet_s_state_dict_works_under_any_prefix_and_draws_no_random_numbers():
    """state_dict ignored prefix and destination (a Sequential raised KeyError), built a whole AlexNet each
    call (advancing the global generator) and gave CPU copies for keep_vars."""
    split = models.TwoDeviceAlexNet(num_classes=10, devices=("cpu", "cpu"))
    torch.manual_seed(7)
    expected = torch.rand(2)
    torch.manual_seed(7)
    state = nn.Sequential(split).state_dict()
    assert torch.equal(torch.rand(2), expected), "the state dict drew random numbers"
    grouped = models.AlexNet(num_classes=10).state_dict()
    assert list(state) == [f"0.{k}" for k in grouped]
    assert all(state[f"0.{k}"].shape == v.shape for k, v in grouped.items())
    again = nn.Sequential(models.TwoDeviceAlexNet(num_classes=10, devices=("cpu", "cpu")))
    again.load_state_dict(state)
    assert torch.equal(again[0].conv2.weight, split.conv2.weight)
    kept = split.state_dict(keep_vars=True)
    assert kept["conv1.weight"].requires_grad


def test_a_recorder_keeps_recording_while_another_records_inside_it(sample):
    """An outer recorder used to keep 2 of 4 images after one measure.record inside it (also with fit's
    snapshots or a widget inside)."""
    model = models.LeNet1()
    x = sample[0][:4]
    with layers.ActivationRecorder(model, ["conv1"]) as outer:
        model(torch.zeros(2, 1, 28, 28))
        measure.record(model, x, ["conv1"])
        model(torch.zeros(2, 1, 28, 28))
    # its own 2 + 2 images, and what the model computed for record() inside it (1 image to size the memory, then 4)
    assert len(outer.activations["conv1"]) == 2 + 1 + 4 + 2
    assert torch.equal(outer.activations["conv1"][:2], outer.activations["conv1"][-2:])
    started = layers.ActivationRecorder(model, ["conv1"]).start()
    train.fit(model, (sample[0][:128], sample[1][:128]), epochs=1, progress=False, device="cpu",
              snapshot_every=1, probe=x)
    model(torch.zeros(1, 1, 28, 28))
    started.stop()
    assert len(started.activations["conv1"]) >= 1 + 4 + 4


def test_a_two_device_network_counts_each_split_layer_once():
    split = models.TwoDeviceAlexNet(num_classes=10, devices=("cpu", "cpu"))
    assert layers.conv_layer_names(split) == ["conv1", "conv2", "conv3", "conv4", "conv5"]
    assert not [n for n in layers.layer_names(split) if ".halves." in n]


def test_each_hand_placed_gz_is_unpacked_from_its_own_bytes_even_if_writers_run_late(tmp_path, monkeypatch):
    """The writer handed to atomic_write read the loop's variable ``gz``: a writer run after the loop moved on (a
    deferred or retried write) unpacked the last file into every name. Each writer now carries its own bytes."""
    import gzip

    from course_lib import files
    from helpers import md5

    raw = tmp_path / "raw"
    raw.mkdir()
    resources = []
    for name, content in (("a-idx1-ubyte.gz", b"first file"), ("b-idx1-ubyte.gz", b"second file")):
        (raw / name).write_bytes(gzip.compress(content))
        resources.append((name, md5(raw / name)))
    late = []
    real = files.atomic_write

    def write_now_and_again_later(path, write, mode="wb"):
        late.append((path, write))
        return real(path, write, mode)

    monkeypatch.setattr(files, "atomic_write", write_now_and_again_later)
    digits._check_hand_placed(raw, resources)
    for path, write in late:         # the writers again, after the loop has finished
        real(path, write)
    assert (raw / "a-idx1-ubyte").read_bytes() == b"first file"
    assert (raw / "b-idx1-ubyte").read_bytes() == b"second file"
