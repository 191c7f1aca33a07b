import numpy as np
import pytest
import torch
from torchvision.datasets import MNIST

from course_lib import data

from helpers import md5


def test_digits_look_like_mnist():
    x, y = data.digits("train")
    xt, yt = data.digits("test")
    assert x.dtype == torch.uint8 and x.shape[1:] == (1, 28, 28) and y.dtype == torch.int64
    assert len(x) + len(xt) == 1797 and len(xt) == data.DIGITS_TEST_SIZE
    assert set(y.tolist()) == set(range(10))
    # MNIST-like framing: a blank border around a centered 20x20 digit
    assert x[:, :, :3].max() == 0 and x[:, :, -3:].max() == 0 and x.max() == 255


def test_digits_split_is_fixed_and_disjoint():
    x1, _ = data.digits("test")
    x2, _ = data.digits("test")
    assert torch.equal(x1, x2)
    train = {bytes(img.numpy()) for img in data.digits("train")[0]}
    assert not any(bytes(img.numpy()) in train for img in x1[:50])


def test_bad_split_is_a_clear_error():
    with pytest.raises(ValueError, match="'train' or 'test'"):
        data.digits("validation")


def test_mnist_reads_idx_files_on_disk(mnist_files, tmp_path):
    raw = tmp_path / "cache" / "MNIST" / "raw"
    raw.mkdir(parents=True)
    import gzip, shutil
    for gz in mnist_files.glob("*.gz"):
        with gzip.open(gz) as src, open(raw / gz.stem, "wb") as dst:
            shutil.copyfileobj(src, dst)
    images, labels = data.mnist("test", root=tmp_path / "cache", download=False)
    expected, expected_labels = data.digits("test")
    assert torch.equal(images, expected) and torch.equal(labels, expected_labels)


def test_mnist_downloads_verifies_and_extracts(mnist_files, http_server, tmp_path, monkeypatch):
    url = http_server(mnist_files)
    monkeypatch.setattr(MNIST, "mirrors", [url])
    monkeypatch.setattr(MNIST, "resources", [(p.name, md5(p)) for p in sorted(mnist_files.glob("*.gz"))])
    images, labels = data.mnist("train", root=tmp_path / "cache")
    assert images.shape == (1397, 1, 28, 28) and images.dtype == torch.uint8
    assert torch.equal(labels, data.digits("train")[1])
    assert (tmp_path / "cache" / "MNIST" / "raw" / "train-images-idx3-ubyte").exists()


def test_mnist_rejects_a_corrupted_download(mnist_files, http_server, tmp_path, monkeypatch):
    url = http_server(mnist_files)
    monkeypatch.setattr(MNIST, "mirrors", [url])
    monkeypatch.setattr(MNIST, "resources", [(p.name, "0" * 32) for p in sorted(mnist_files.glob("*.gz"))])
    with pytest.raises(RuntimeError, match="digits()"):
        data.mnist("train", root=tmp_path / "cache")


def test_mnist_unreachable_names_the_fallback(tmp_path, monkeypatch):
    monkeypatch.setattr(MNIST, "mirrors", ["http://127.0.0.1:9/"])  # the discard port: refused at once
    with pytest.raises(RuntimeError) as err:
        data.mnist("test", root=tmp_path)
    message = str(err.value)
    assert "could not be downloaded" in message and "course_lib.data.digits()" in message
    assert str(tmp_path / "MNIST" / "raw") in message


def test_mnist_without_download_says_where_files_go(tmp_path):
    with pytest.raises(RuntimeError, match="MNIST.*raw"):
        data.mnist("train", root=tmp_path, download=False)


def test_data_root_honours_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("COURSE_DATA", str(tmp_path / "d"))
    assert data.data_root() == tmp_path / "d" and (tmp_path / "d").is_dir()


def test_loader_covers_every_example_once_per_epoch():
    images = torch.arange(10, dtype=torch.uint8).view(10, 1, 1, 1).expand(10, 1, 2, 2).contiguous()
    labels = torch.arange(10)
    loader = data.TensorLoader(images, labels, batch_size=3, shuffle=True, device="cpu", mean=(0,), std=(1 / 255,))
    assert len(loader) == 4
    seen = torch.cat([y for _, y in loader])
    assert sorted(seen.tolist()) == list(range(10))
    # normalization happened on the fly and images stay matched with their labels
    for x, y in loader:
        assert x.dtype == torch.float32 and torch.allclose(x[:, 0, 0, 0], y.float())


def test_loader_shuffle_is_seeded_per_epoch():
    images = torch.zeros(50, 1, 2, 2, dtype=torch.uint8)
    labels = torch.arange(50)
    a = data.TensorLoader(images, labels, 50, shuffle=True, device="cpu", seed=1)
    b = data.TensorLoader(images, labels, 50, shuffle=True, device="cpu", seed=1)
    first = next(iter(a))[1]
    assert torch.equal(first, next(iter(b))[1])
    a.set_epoch(1)
    assert not torch.equal(first, next(iter(a))[1])


def test_loader_keeps_uint8_on_device_and_normalizes():
    x, y = data.digits("test")
    loader = data.TensorLoader(x, y, 64, device="cpu")
    assert loader.images.dtype == torch.uint8
    xb, _ = next(iter(loader))
    expected = (x[:64].float() / 255 - data.MNIST_MEAN[0]) / data.MNIST_STD[0]
    assert torch.allclose(xb, expected)


def test_loader_rejects_bad_inputs():
    with pytest.raises(ValueError, match="N x C x H x W"):
        data.TensorLoader(torch.zeros(4, 28, 28, dtype=torch.uint8), torch.zeros(4), device="cpu")
    with pytest.raises(ValueError, match="same number"):
        data.TensorLoader(torch.zeros(4, 1, 2, 2, dtype=torch.uint8), torch.zeros(3), device="cpu")


def test_handwritten_digits_follows_profile():
    from course_lib import env
    x, y = data.handwritten_digits("train", env.profile("smoke"))
    assert len(x) == env.profile("smoke").train_size
