"""Bad inputs anywhere in the public API get an error that names what was expected.

One test per kind of mistake a learner makes; each asserts the message, not only the exception type.
"""

import os
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from torchvision.datasets import MNIST

from course_lib import digits, env, loader, measure, models, train
from course_lib.widgets import explorers
from course_lib import attribution as A
from course_lib.train import History

from helpers import md5, write_idx


@pytest.fixture(scope="module")
def sample():
    x, y = digits.mnist_sample("test")
    return x[:256], y[:256]


# --- models ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("model", [models.LeNet1, models.LeNet1Simplified, lambda: models.LeNet5(activation="relu")])
def test_models_say_what_input_they_expect(model):
    net = model()
    with pytest.raises(TypeError, match="normalized float images, got torch.uint8.*loader.normalize"):
        net(torch.zeros(2, 1, 28, 28, dtype=torch.uint8))
    with pytest.raises(TypeError, match="float32 weights but got torch.float64"):
        net(torch.zeros(2, 1, 28, 28, dtype=torch.float64))
    with pytest.raises(TypeError, match="torch tensor of images.*got ndarray"):
        net(np.zeros((2, 1, 28, 28), np.float32))


@pytest.mark.parametrize("bad", [0, 1, -3, 2.5, "10", True])
@pytest.mark.parametrize("model", [models.LeNet1, models.LeNet1Simplified, models.LeNet5, models.AlexNet])
def test_models_refuse_a_bad_number_of_classes(model, bad):
    with pytest.raises(ValueError, match=r"num_classes as a whole number >= 2"):
        model(num_classes=bad)


def test_alexnet_too_small_or_gray_input():
    net = models.AlexNet(num_classes=10)
    with pytest.raises(ValueError, match="at least 63x63"):
        net(torch.zeros(1, 3, 32, 32))
    with pytest.raises(ValueError, match=r"N x 3 x H x W"):
        net(torch.zeros(1, 1, 128, 128))


# --- loader ---------------------------------------------------------------------------------------

def test_float_images_are_refused_and_never_modified(sample):
    x, y = sample
    floats = x.float() / 255
    before = floats.clone()
    for call in (lambda: loader.TensorLoader(floats, y, device="cpu"), lambda: loader.normalize(floats),
                 lambda: train.evaluate(models.LeNet1(), (floats, y)),
                 lambda: train.predict(models.LeNet1(), floats)):
        with pytest.raises(TypeError, match=r"uint8 \(gray levels 0-255\), got torch.float32.*\* 255"):
            call()
    assert torch.equal(floats, before), "the learner's tensor must be untouched"


def test_unshuffled_batches_do_not_change_the_images(sample):
    x, y = sample
    before = x.clone()
    list(loader.TensorLoader(x, y, 64, device="cpu"))
    train.evaluate(models.LeNet1(), (x, y))
    train.predict(models.LeNet1(), x)
    assert torch.equal(x, before)


def test_std_zero_empty_data_and_bad_labels(sample):
    x, y = sample
    with pytest.raises(ValueError, match="std must be positive.*divide by zero"):
        loader.TensorLoader(x, y, std=(0.0,), mean=(0.1,), device="cpu")
    with pytest.raises(ValueError, match="std must be positive"):
        loader.normalize(x, mean=(0.1,), std=(float("nan"),))
    with pytest.raises(ValueError, match="one value per channel"):
        loader.normalize(x, mean=(0.1, 0.2), std=(0.3, 0.3))
    with pytest.raises(ValueError, match="No images: the data set is empty"):
        loader.TensorLoader(x[:0], y[:0], device="cpu")
    with pytest.raises(ValueError, match="1-D integer tensor"):
        loader.TensorLoader(x, y.float(), device="cpu")
    with pytest.raises(TypeError, match="got list"):
        loader.normalize([[1, 2]])


# --- fit, evaluate, predict -----------------------------------------------------------------------

@pytest.mark.parametrize("kwargs, message", [
    ({"lr": float("nan")}, "lr must be a positive number, got nan"),
    ({"lr": 0}, "lr must be a positive number"),
    ({"lr": -0.1}, "lr must be a positive number"),
    ({"epochs": 0}, "epochs must be a whole number >= 1"),
    ({"epochs": 2.5}, "epochs must be a whole number >= 1"),
    ({"batch_size": 0}, "batch_size must be a whole number >= 1"),
    ({"momentum": 1.0}, r"momentum must be a number in \[0, 1\)"),
    ({"weight_decay": float("inf")}, "weight_decay must be a number >= 0"),
    ({"label_smoothing": 1.5}, "label_smoothing must be"),
    ({"snapshot_every": 0, "probe": None}, "snapshot_every must be a whole number of epochs >= 1"),
    ({"snapshot_every": 1}, "snapshots need a probe batch"),
])
def test_fit_names_the_bad_argument(sample, kwargs, message):
    kwargs = {"epochs": 1, **kwargs}
    with pytest.raises(ValueError, match=message):
        train.fit(models.LeNet1(), sample, progress=False, device="cpu", **kwargs)


def test_labels_outside_the_models_classes_are_named(sample):
    x, y = sample
    with pytest.raises(ValueError, match=r"labels run from 0 to 12, but the model has 10 outputs.*num_classes=13"):
        train.fit(models.LeNet1(), (x, y.clone().index_fill_(0, torch.tensor([3]), 12)), epochs=1,
                  progress=False, device="cpu")
    with pytest.raises(ValueError, match=r"labels run from -1"):
        train.fit(models.LeNet1(), (x, y - 1), epochs=1, progress=False, device="cpu")


def test_resuming_into_another_model_or_setting_is_refused(sample, tmp_path):
    ckpt = tmp_path / "run.pt"
    train.fit(models.LeNet5(activation="tanh"), sample, epochs=1, progress=False, device="cpu", checkpoint=ckpt)
    with pytest.raises(RuntimeError, match=r"run.pt was saved by another model(.|\n)*Tanh(.|\n)*ReLU(.|\n)*Delete"):
        train.fit(models.LeNet5(activation="relu"), sample, epochs=2, progress=False, device="cpu", checkpoint=ckpt)
    with pytest.raises(RuntimeError, match=r"run.pt is the checkpoint of another run \(lr: 0.1 there, 0.5 now\)"):
        train.fit(models.LeNet5(activation="tanh"), sample, epochs=2, lr=0.5, progress=False, device="cpu",
                  checkpoint=ckpt)
    # more epochs of the same run is what resuming is for
    history = train.fit(models.LeNet5(activation="tanh"), sample, epochs=2, progress=False, device="cpu",
                        checkpoint=ckpt)
    assert [row["epoch"] for row in history.epochs] == [1, 2]


def test_evaluate_of_nothing_is_a_clear_error():
    with pytest.raises(ValueError, match="data set is empty"):
        train.evaluate(models.LeNet1(),
                       (torch.zeros(0, 1, 28, 28, dtype=torch.uint8), torch.zeros(0, dtype=torch.long)))


# --- measure, explorers, env ----------------------------------------------------------------------

def test_recorder_and_measures_name_what_they_expect(sample):
    x, _ = sample
    with pytest.raises(KeyError, match="Unknown layer name.*valid names are"):
        measure.record(models.LeNet1(), x[:4], ["conv9"])
    with pytest.raises(ValueError, match="N x C x H x W or N x C"):
        measure.dead_filters(torch.zeros(5))
    with pytest.raises(ValueError, match="RGB filters"):
        measure.color_score(torch.zeros(2, 1, 5, 5))
    with pytest.raises(ValueError, match="conv weights C_out x C_in x k x k"):
        measure.filter_frequency(torch.zeros(5, 5))


def test_explorers_refuse_empty_batches_and_snapshots_without_activations(sample):
    x, _ = sample
    with pytest.raises(ValueError, match="at least one image in probe images, got an empty batch"):
        explorers.ActivationExplorer(models.LeNet1(), x[:0])
    history = History(snapshots=[{"epoch": 0, "state": models.LeNet1().state_dict(), "activations": {}}])
    with pytest.raises(ValueError, match="snapshots hold no activations.*probe"):
        explorers.ActivationExplorer(history, x[:4])
    with pytest.raises(ValueError, match="a model or a History with snapshots"):
        explorers.FilterExplorer(History())


@pytest.mark.parametrize("name", ["laptop", "GPU ", "Smoke", "", "cpu-fast"])
def test_env_profile_names(name, monkeypatch):
    if name.strip().lower() in env.PROFILE_NAMES:
        assert env.profile(name).name == name.strip().lower()      # case and spaces are forgiven
    elif name == "":
        monkeypatch.delenv("COURSE_PROFILE", raising=False)
        assert env.profile(name).name in env.PROFILE_NAMES         # empty means: choose automatically
    else:
        with pytest.raises(ValueError, match="expected one of smoke, cpu, gpu"):
            env.profile(name)


# --- digits ---------------------------------------------------------------------------------------

def test_hand_placed_gz_files_load_without_download(mnist_files, tmp_path, monkeypatch):
    raw = tmp_path / "MNIST" / "raw"
    raw.mkdir(parents=True)
    for gz in mnist_files.glob("*.gz"):
        shutil.copy(gz, raw / gz.name)
    monkeypatch.setattr(MNIST, "resources", [(p.name, md5(p)) for p in sorted(mnist_files.glob("*.gz"))])
    images, labels = digits.mnist("test", root=tmp_path, download=False)
    assert torch.equal(images, digits.mnist_sample("test")[0]) and torch.equal(labels, digits.mnist_sample("test")[1])


def test_mnist_files_with_mismatched_counts_or_labels_are_named(tmp_path, monkeypatch):
    raw = tmp_path / "MNIST" / "raw"
    raw.mkdir(parents=True)
    names = ["train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz", "t10k-images-idx3-ubyte.gz",
             "t10k-labels-idx1-ubyte.gz"]
    for labels, match in ((np.zeros(4, np.uint8), "5 images but 4 labels"),
                          (np.array([0, 1, 2, 3, 12], np.uint8), "labels run from 0 to 12")):
        for name in names:
            (raw / name).unlink(missing_ok=True)
            (raw / name[:-3]).unlink(missing_ok=True)
            write_idx(raw / name, np.zeros((5, 28, 28), np.uint8) if "images" in name else labels)
        monkeypatch.setattr(MNIST, "resources", [(n, md5(raw / n)) for n in names])
        with pytest.raises(ValueError, match=rf"t10k-images-idx3-ubyte.*{match}"):
            digits.mnist("test", root=tmp_path, download=False)


def test_a_hand_placed_file_that_is_not_mnist_is_named(tmp_path, monkeypatch):
    raw = tmp_path / "MNIST" / "raw"
    raw.mkdir(parents=True)
    (raw / "t10k-images-idx3-ubyte.gz").write_bytes(b"not gzip")
    with pytest.raises(RuntimeError, match="t10k-images-idx3-ubyte.gz is not MNIST's file"):
        digits.mnist("test", root=tmp_path, download=False)


def test_record_refuses_what_would_not_fit_and_batches_the_rest(sample):
    x, _ = sample
    model = models.LeNet5(activation="relu")
    with pytest.raises(ValueError, match=r"would hold .* GiB .* pass fewer images, or only the layers you need"):
        measure.record(model, x, max_bytes=10_000)
    small = measure.record(model, x, ["act2"], batch_size=50)                 # 256 images in 6 batches
    assert small["act2"].shape == (256, 16, 10, 10)
    assert torch.allclose(small["act2"], measure.record(model, x, ["act2"], batch_size=1000)["act2"], atol=1e-6)


def test_a_huge_photo_is_shrunk_for_the_playground():
    from course_lib.widgets.playground import MAX_SIDE, ConvolutionPlayground
    photo = np.random.default_rng(0).integers(0, 256, (4000, 3000, 3), dtype=np.uint8)
    p = ConvolutionPlayground(photo)
    assert max(p.image.shape[:2]) == MAX_SIDE and p.image.shape[:2] == (256, 192)
    assert "4000x3000 photo is shown shrunk to 256x192" in p.note.value
    p.stride.value = 2
    assert p.output_size() == (127, 95)


def test_a_mean_without_a_std_is_refused_not_mixed_with_mnists(sample):
    x, _ = sample
    for kwargs, message in (({"mean": (0.5,)}, "mean was given without std"),
                            ({"std": (0.2,)}, "std was given without mean")):
        with pytest.raises(ValueError, match=message + ": give both"):
            loader.normalize(x[:2], **kwargs)
        with pytest.raises(ValueError, match=message):
            loader.TensorLoader(x[:2], torch.zeros(2, dtype=torch.long), **kwargs)
    # a plain number, a numpy scalar and a one-element list all mean "this value for the one channel"
    import numpy as np
    for mean in (0.5, np.float32(0.5), [0.5]):
        assert torch.allclose(loader.normalize(x[:2], mean=mean, std=0.25), (x[:2].float() / 255 - 0.5) / 0.25,
                              atol=1e-6)


# --- the training command line (python -m course_lib.distributed), in this process ----------------------

LENET_RUN = ["--model", "lenet1", "--data", "mnist-sample", "--epochs", "1", "--batch-size", "500"]


@pytest.mark.parametrize("extra, message", [
    (["--lr", "inf"], "lr must be a positive number, got inf"),
    (["--weight-decay", "-1"], "weight_decay must be a number >= 0, got -1.0"),
    (["--seed", str(2**40)], "--seed must be a whole number from 0 to 2147483647"),
    (["--model", "alexnet", "--image-size", "0"], "--image-size must be at least 63 pixels for alexnet, got 0"),
    (["--dropout", "1.5"], r"--dropout must be a number in \[0, 1\), got 1.5"),
    (["--timeout", "0"], "--timeout must be a positive number of seconds"),
    (["--out", ""], "--out must name a folder"),
])
def test_bad_command_line_settings_are_one_line_and_exit_2(extra, message, tmp_path, capsys):
    from course_lib import distributed
    args = [*LENET_RUN, "--out", str(tmp_path / "run"), *extra]
    with pytest.raises(SystemExit) as exit_:
        distributed.main(args)
    err = capsys.readouterr().err
    assert exit_.value.code == 2 and re.search(message, err) and "Traceback" not in err
    assert not (tmp_path / "run").exists(), "nothing is written for a run that never started"


def test_out_that_is_a_file_or_unwritable_or_tilde(tmp_path, capsys, monkeypatch):
    from course_lib import distributed
    (tmp_path / "afile").write_text("x")
    with pytest.raises(SystemExit) as exit_:
        distributed.main([*LENET_RUN, "--out", str(tmp_path / "afile")])
    assert exit_.value.code == 2 and "is a file: give a folder" in capsys.readouterr().err
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o500)
    if os.access(locked, os.W_OK):     # root may write anywhere: make the folder a file's child instead
        locked = tmp_path / "afile" / "below"
    assert distributed.main([*LENET_RUN, "--out", str(locked)]) == 1
    assert "cannot write into --out" in capsys.readouterr().err
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert distributed.main([*LENET_RUN, "--out", "~/run"]) == 0
    assert (tmp_path / "home" / "run" / "final.pt").exists() and not Path("~").exists()


def test_corrupt_or_foreign_checkpoints_and_a_finished_run_are_one_line(tmp_path, capsys):
    from course_lib import distributed
    out = tmp_path / "run"
    out.mkdir()
    (out / "checkpoint.pt").write_bytes(b"\0not a checkpoint")
    assert distributed.main([*LENET_RUN, "--out", str(out), "--resume"]) == 1
    err = capsys.readouterr().err
    assert "checkpoint.pt is corrupted or not a course checkpoint" in err and "Traceback" not in err
    x, y = digits.mnist_sample("train")
    (out / "checkpoint.pt").unlink()
    train.fit(models.LeNet1(), (x[:500], y[:500]), epochs=1, progress=False, device="cpu",
              checkpoint=out / "checkpoint.pt")
    assert distributed.main([*LENET_RUN, "--out", str(out), "--resume"]) == 1     # a fit() checkpoint
    err = capsys.readouterr().err
    assert "is the checkpoint of another run (" in err and "data: None there, 'mnist-sample' now" in err
    (out / "checkpoint.pt").unlink()
    assert distributed.main([*LENET_RUN, "--out", str(out)]) == 0
    assert distributed.main([*LENET_RUN, "--out", str(out), "--resume"]) == 0
    assert "already holds 1 epochs of this run: nothing to train" in capsys.readouterr().out


def test_a_folder_of_one_class_or_with_a_broken_image_is_one_line_and_leaves_nothing(tmp_path, capsys):
    from PIL import Image
    from skimage import data as photos
    from course_lib import distributed
    folder = tmp_path / "photos" / "train"
    for name in ("cat", "coffee"):
        (folder / name).mkdir(parents=True)
        for j in range(4):
            Image.fromarray(getattr(photos, {"cat": "chelsea"}.get(name, name))()[j * 9:, j * 9:]).save(
                folder / name / f"{j}.jpg")
    args = ["--model", "alexnet", "--data", f"folder:{tmp_path / 'photos'}", "--image-size", "64", "--epochs", "1",
            "--batch-size", "4", "--out", str(tmp_path / "run")]
    (folder / "coffee" / "2.jpg").write_bytes(b"\xff\xd8\xff broken")
    assert distributed.main(args) == 1
    err = capsys.readouterr().err
    assert "coffee/2.jpg could not be decoded as an image" in err and "Traceback" not in err
    assert not list((tmp_path / "photos" / ".course-cache").glob("*.tmp*")), "nothing half-written stays"
    shutil.rmtree(folder / "coffee")
    assert distributed.main(args) == 1
    assert "has 1 class (cat): a classifier needs at least two class folders" in capsys.readouterr().err


# --- values a learner really passes (issue 22, cause 6) -------------------------------------------------

@pytest.mark.parametrize("value", ["CPU", "cpu", " Cpu ", torch.device("cpu"), "auto", None])
def test_device_names_in_any_case_are_accepted(sample, value):
    x, y = sample
    model = models.LeNet1()
    train.fit(model, (x[:64], y[:64]), epochs=1, progress=False, device=value)
    assert train.evaluate(model, (x[:64], y[:64]), device=value)["accuracy"] >= 0


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
@pytest.mark.parametrize("value, message", [("cuda", "this machine has no such CUDA GPU"),
                                            ("CUDA:1", "no such CUDA GPU"),
                                            ("gpu", "asks for a GPU, but this machine has none"),
                                            ("tpu", "Unknown device 'tpu'"), (3, "device must be a name")])
def test_a_device_that_is_not_here_is_named(sample, value, message):
    x, y = sample
    with pytest.raises((ValueError, TypeError), match=message):
        train.fit(models.LeNet1(), (x[:64], y[:64]), epochs=1, progress=False, device=value)
    with pytest.raises((ValueError, TypeError), match=message):
        loader.TensorLoader(x[:8], y[:8], device=value)


def test_numpy_numbers_and_int32_labels_are_taken_as_meant(sample):
    x, y = sample
    history = train.fit(models.LeNet1(), (x[:128], y[:128].to(torch.int32)), epochs=np.arange(1, 3)[-1],
                        lr=np.float32(0.1), batch_size=np.int64(32), progress=False, device="cpu")
    assert len(history.epochs) == 2 and type(history.config["epochs"]) is int
    assert history.config["lr"] == pytest.approx(0.1) and type(history.config["lr"]) is float


def test_labels_outside_the_classes_in_evaluate_are_named(sample):
    x, y = sample
    with pytest.raises(ValueError, match=r"labels run from \d to 12, but the model has 10 outputs"):
        train.evaluate(models.LeNet1(), (x[:8], y[:8].clone().index_fill_(0, torch.tensor([2]), 12)))


@pytest.mark.parametrize("call, error, message", [
    (lambda m, x: A.occlusion(m, x, 1, window=3, stride=5), ValueError, "stride 5 is larger than the window 3"),
    (lambda m, x: A.saliency(m, x, None), TypeError, "target must be a class index"),
    (lambda m, x: A.saliency(m, x, "3"), TypeError, "target must be a class index"),
    (lambda m, x: A.saliency(m, x[:0], 1), ValueError, "got an empty batch"),
    (lambda m, x: A.grad_cam(m, x, 1, "flatten_unused"), ValueError, "is not used by"),
    (lambda m, x: A.saliency(m, x.index_fill(2, torch.tensor([3]), float("nan")), 1), ValueError, "not finite"),
])
def test_attribution_refuses_what_it_cannot_explain(call, error, message, sample):
    x, _ = sample
    model = models.LeNet1()
    model.flatten_unused = torch.nn.Flatten()       # a layer the forward never uses
    with pytest.raises(error, match=message):
        call(model, loader.normalize(x[:2]))


def test_maps_one_at_a_time_and_regions_inside_them():
    a = torch.arange(16.0).view(4, 4)
    assert A.rank_correlation(a, a.T).shape == (1,)           # one H x W map, not 4 maps of 4 pixels
    assert A.rank_correlation(a, a.T).item() == pytest.approx(A.rank_correlation(a[None], a.T[None]).item())
    with pytest.raises(ValueError, match="holds no pixel of the 4 x 4 maps"):
        A.mass_in(a[None], (slice(10, 20), slice(0, 2)))
    assert A.mass_in(a, (slice(0, 4), slice(0, 4))).item() == pytest.approx(1.0)


def test_sizes_of_zero_or_less_are_refused(sample, tmp_path):
    x, y = sample
    from course_lib import augment, imagenette
    from course_lib.widgets import OcclusionExplorer
    with pytest.raises(ValueError, match="n must be a whole number of examples >= 0"):
        loader.take(x, y, -5)
    for size in (0, -3):
        with pytest.raises(ValueError, match="crop size must be a whole number of pixels >= 1"):
            augment.center_crop(x, size)
        with pytest.raises(ValueError, match="crop size must be a whole number of pixels >= 1"):
            augment.crop_flip(size)
    with pytest.raises(ValueError, match="resolution must be a whole number of pixels >= 1"):
        imagenette.load_split("train", root=tmp_path, download=False, resolution=0)
    with pytest.raises(ValueError, match="window must be between 1 and 28 pixels, got 0"):
        OcclusionExplorer(models.LeNet1(), x[:2], window=0)


def test_the_playground_shows_float_and_16_bit_images_as_they_look():
    from course_lib.widgets import ConvolutionPlayground
    ramp = np.linspace(0, 1, 32 * 32).reshape(32, 32)
    for image in (ramp * 1.0000001, (ramp * 65535).astype(np.uint16)):
        shown = ConvolutionPlayground(image).image
        assert abs(shown.mean() - 127.5) < 2, f"a {image.dtype} ramp shown with mean {shown.mean():.1f}"
