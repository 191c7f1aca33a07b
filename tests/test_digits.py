import numpy as np
import warnings
from pathlib import Path

import pytest
import torch
from torchvision.datasets import MNIST

from course_lib import digits, files, loader, widgets

from helpers import md5


def test_mnist_sample_is_real_mnist_split_4000_1000():
    x, y = digits.mnist_sample("train")
    xt, yt = digits.mnist_sample("test")
    assert x.dtype == torch.uint8 and x.shape == (4000, 1, 28, 28) and y.dtype == torch.int64
    assert xt.shape == (1000, 1, 28, 28) and len(yt) == 1000
    # the shipped README's count per class (the first 5,000 digits of MNIST's test set)
    counts = torch.bincount(torch.cat([y, yt]), minlength=10).tolist()
    assert counts == [460, 571, 530, 500, 500, 456, 462, 512, 489, 520]
    # MNIST's framing: white digits on black, in the central 20x20 box (centred by mass, so a few
    # strokes reach the border)
    assert x.max() == 255 and x[:, :, :, :2].float().mean() < 0.5 < 20 < x[:, :, 10:18, 10:18].float().mean()


def test_mnist_sample_split_is_fixed_and_disjoint():
    x1, _ = digits.mnist_sample("test")
    assert torch.equal(x1, digits.mnist_sample("test")[0])
    train = {bytes(img.numpy()) for img in digits.mnist_sample("train")[0]}
    assert not any(bytes(img.numpy()) in train for img in x1)


def test_mnist_sample_checks_md5(tmp_path):
    import shutil
    for name, _ in digits.MNIST_SAMPLE_FILES.values():
        shutil.copy(digits.MNIST_SAMPLE_DIR / name, tmp_path / name)
    assert digits.mnist_sample("test", folder=tmp_path)[0].shape == (1000, 1, 28, 28)
    labels = tmp_path / digits.MNIST_SAMPLE_FILES["labels"][0]
    raw = bytearray(labels.read_bytes())
    raw[-10] ^= 0xFF
    labels.write_bytes(bytes(raw))
    with pytest.raises(RuntimeError, match="mnist-sample-labels.*corrupted.*2c3dd952"):
        digits.mnist_sample("test", folder=tmp_path)
    labels.unlink()
    with pytest.raises(RuntimeError, match="missing or corrupted"):
        digits.mnist_sample("test", folder=tmp_path)


def test_read_idx_rejects_a_wrong_header_or_size(tmp_path):
    from helpers import write_idx
    write_idx(tmp_path / "ok.gz", np.zeros((3, 2, 2), np.uint8))
    assert digits.read_idx(tmp_path / "ok.gz", 3).shape == (3, 2, 2)
    with pytest.raises(ValueError, match="ok.gz is not an IDX file .* 1 dimension"):
        digits.read_idx(tmp_path / "ok.gz", 1)
    import gzip
    with gzip.open(tmp_path / "short.gz", "wb") as f:     # the header announces 3 images, holds 2
        f.write(bytes([0, 0, 8, 3]) + (3).to_bytes(4, "big") + (2).to_bytes(4, "big") * 2 + bytes(8))
    with pytest.raises(ValueError, match=r"short.gz.*\(3, 2, 2\).*8 bytes"):
        digits.read_idx(tmp_path / "short.gz", 3)


def test_bad_split_is_a_clear_error():
    with pytest.raises(ValueError, match="'train' or 'test'"):
        digits.mnist_sample("validation")


def test_offline_cpu_profile_falls_back_to_the_sample_and_says_so(tmp_path, monkeypatch):
    from course_lib import env
    monkeypatch.setattr(MNIST, "mirrors", ["http://127.0.0.1:9/"])  # the discard port: refused at once
    with pytest.warns(UserWarning, match="5,000-digit MNIST sample"):
        x, y = digits.for_profile("test", env.profile("cpu"), root=tmp_path)
    assert torch.equal(x, digits.mnist_sample("test")[0])


def _unpack_into(mnist_files, raw):
    import gzip, shutil
    raw.mkdir(parents=True)
    for gz in mnist_files.glob("*.gz"):
        with gzip.open(gz) as src, open(raw / gz.stem, "wb") as dst:
            shutil.copyfileobj(src, dst)
    return {p.name: md5(p) for p in raw.iterdir()}


def test_mnist_reads_unpacked_idx_files_checked_against_their_md5(mnist_files, tmp_path, monkeypatch):
    raw = tmp_path / "cache" / "MNIST" / "raw"
    monkeypatch.setattr(digits, "MNIST_RAW_MD5", _unpack_into(mnist_files, raw))
    images, labels = digits.mnist("test", root=tmp_path / "cache", download=False)
    expected, expected_labels = digits.mnist_sample("test")
    assert torch.equal(images, expected) and torch.equal(labels, expected_labels)


def test_unpacked_files_that_are_not_the_official_ones_are_named_not_used(mnist_files, tmp_path, monkeypatch):
    # The control: the same files, checked against MNIST's real MD5s, are refused by name.
    raw = tmp_path / "MNIST" / "raw"
    _unpack_into(mnist_files, raw)
    with pytest.raises(RuntimeError, match=r"train-images-idx3-ubyte is not MNIST's file.*6bbc9ace"):
        digits.mnist("test", root=tmp_path, download=False)


def test_a_truncated_unpacked_file_is_named_and_never_replaced_by_the_sample(mnist_files, tmp_path, monkeypatch):
    from course_lib import env
    raw = tmp_path / "MNIST" / "raw"
    monkeypatch.setattr(digits, "MNIST_RAW_MD5", _unpack_into(mnist_files, raw))
    whole = (raw / "t10k-images-idx3-ubyte").read_bytes()
    (raw / "t10k-images-idx3-ubyte").write_bytes(whole[:len(whole) // 2])
    with pytest.raises(RuntimeError, match="t10k-images-idx3-ubyte is not MNIST's file .* truncated"):
        digits.mnist("test", root=tmp_path, download=False)
    # the cpu profile falls back to the sample only when MNIST is missing, not when a file is broken
    with pytest.raises(RuntimeError, match="truncated"):
        digits.for_profile("test", env.profile("cpu"), root=tmp_path)


FULL_MNIST = Path(__file__).resolve().parents[2] / "shared" / "data" / "mnist-full"


@pytest.mark.skipif(not FULL_MNIST.is_dir(), reason=f"all of MNIST is not on this machine ({FULL_MNIST})")
def test_all_of_mnist_placed_by_hand_unpacked(tmp_path):
    from course_lib import env
    raw = tmp_path / "MNIST" / "raw"
    raw.mkdir(parents=True)
    for f in FULL_MNIST.glob("*-ubyte"):
        (raw / f.name).symlink_to(f)
    with warnings.catch_warnings():
        warnings.simplefilter("error")                      # no fallback warning
        x, y = digits.for_profile("train", env.profile("cpu"), root=tmp_path)
        x_test, y_test = digits.for_profile("test", env.profile("cpu"), root=tmp_path)
    assert x.shape == (60000, 1, 28, 28) and x_test.shape == (10000, 1, 28, 28)
    assert y.bincount().tolist() == [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
    # the shipped sample is MNIST's first 5,000 test digits
    sample = torch.cat([digits.mnist_sample("train")[0], digits.mnist_sample("test")[0]])
    assert sorted(map(bytes, sample.flatten(1).numpy())) == sorted(map(bytes, x_test[:5000].flatten(1).numpy()))


def test_mnist_downloads_verifies_and_extracts(mnist_files, http_server, tmp_path, monkeypatch):
    url = http_server(mnist_files)
    monkeypatch.setattr(MNIST, "mirrors", [url])
    monkeypatch.setattr(MNIST, "resources", [(p.name, md5(p)) for p in sorted(mnist_files.glob("*.gz"))])
    images, labels = digits.mnist("train", root=tmp_path / "cache")
    assert images.shape == (4000, 1, 28, 28) and images.dtype == torch.uint8
    assert torch.equal(labels, digits.mnist_sample("train")[1])
    assert (tmp_path / "cache" / "MNIST" / "raw" / "train-images-idx3-ubyte").exists()


def test_mnist_rejects_a_corrupted_download(mnist_files, http_server, tmp_path, monkeypatch):
    url = http_server(mnist_files)
    monkeypatch.setattr(MNIST, "mirrors", [url])
    monkeypatch.setattr(MNIST, "resources", [(p.name, "0" * 32) for p in sorted(mnist_files.glob("*.gz"))])
    with pytest.raises(RuntimeError, match="mnist_sample()"):
        digits.mnist("train", root=tmp_path / "cache")


def test_mnist_unreachable_names_the_fallback(tmp_path, monkeypatch):
    monkeypatch.setattr(MNIST, "mirrors", ["http://127.0.0.1:9/"])  # the discard port: refused at once
    with pytest.raises(RuntimeError) as err:
        digits.mnist("test", root=tmp_path)
    message = str(err.value)
    assert "could not be downloaded" in message and "course_lib.digits.mnist_sample()" in message
    assert str(tmp_path / "MNIST" / "raw") in message


def test_mnist_without_download_says_where_files_go(tmp_path):
    with pytest.raises(RuntimeError, match="MNIST.*raw"):
        digits.mnist("train", root=tmp_path, download=False)


def test_data_root_honours_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("COURSE_DATA", str(tmp_path / "d"))
    assert files.data_root() == tmp_path / "d" and (tmp_path / "d").is_dir()


def test_loader_covers_every_example_once_per_epoch():
    images = torch.arange(10, dtype=torch.uint8).view(10, 1, 1, 1).expand(10, 1, 2, 2).contiguous()
    labels = torch.arange(10)
    batch_loader = loader.TensorLoader(images, labels, batch_size=3, shuffle=True, device="cpu", mean=(0,),
                                       std=(1 / 255,))
    assert len(batch_loader) == 4
    seen = torch.cat([y for _, y in batch_loader])
    assert sorted(seen.tolist()) == list(range(10))
    # normalization happened on the fly and images stay matched with their labels
    for x, y in batch_loader:
        assert x.dtype == torch.float32 and torch.allclose(x[:, 0, 0, 0], y.float())


def test_loader_shuffle_is_seeded_per_epoch():
    images = torch.zeros(50, 1, 2, 2, dtype=torch.uint8)
    labels = torch.arange(50)
    a = loader.TensorLoader(images, labels, 50, shuffle=True, device="cpu", seed=1)
    b = loader.TensorLoader(images, labels, 50, shuffle=True, device="cpu", seed=1)
    first = next(iter(a))[1]
    assert torch.equal(first, next(iter(b))[1])
    a.set_epoch(1)
    assert not torch.equal(first, next(iter(a))[1])


def test_loader_keeps_uint8_on_device_and_normalizes():
    x, y = digits.mnist_sample("test")
    batch_loader = loader.TensorLoader(x, y, 64, device="cpu")
    assert batch_loader.images.dtype == torch.uint8
    xb, _ = next(iter(batch_loader))
    expected = (x[:64].float() / 255 - loader.MNIST_MEAN[0]) / loader.MNIST_STD[0]
    assert torch.allclose(xb, expected)


def test_loader_rejects_bad_inputs():
    with pytest.raises(ValueError, match="N x C x H x W"):
        loader.TensorLoader(torch.zeros(4, 28, 28, dtype=torch.uint8), torch.zeros(4, dtype=torch.long), device="cpu")
    with pytest.raises(ValueError, match="same number"):
        loader.TensorLoader(torch.zeros(4, 1, 2, 2, dtype=torch.uint8), torch.zeros(3, dtype=torch.long), device="cpu")


def test_handwritten_digits_follows_profile():
    from course_lib import env
    x, y = digits.for_profile("train", env.profile("smoke"))
    assert env.profile("smoke").dataset == "mnist-sample" and torch.equal(x, digits.mnist_sample("train")[0])


def test_a_drawing_is_prepared_like_mnist_and_read_correctly():
    """MNIST digits blown up 10x, as if drawn on the 280-pixel canvas, come back as MNIST-like 28x28
    digits that a trained network reads as well as the originals (and an empty drawing is empty)."""
    from course_lib import env, models, train

    x, y = digits.for_profile("train", env.profile("smoke"))
    xt, yt = digits.for_profile("test", env.profile("smoke"))
    torch.manual_seed(0)
    model = models.LeNet1()
    train.fit(model, (x, y), epochs=3, lr=0.3, progress=False, device="cpu")
    drawn = torch.cat([widgets.from_drawing(np.kron(d[0].numpy(), np.ones((10, 10)))) for d in xt[:200]])
    assert drawn.shape == (200, 1, 28, 28) and drawn.dtype == torch.uint8
    for d in drawn[:20, 0]:
        ys, xs = torch.nonzero(d, as_tuple=True)
        assert max(ys.max() - ys.min(), xs.max() - xs.min()) + 1 <= 20, "the digit fits a 20 x 20 box"
    original = (train.predict(model, xt[:200]).argmax(1) == yt[:200]).float().mean()
    again = (train.predict(model, drawn).argmax(1) == yt[:200]).float().mean()
    assert again > original - 0.08, f"{again:.3f} of the redrawn digits read right, {original:.3f} of the originals"
    # Where on the canvas the digit was drawn does not matter: it is framed by its bounding box and
    # centre of mass, as MNIST's were.
    big = np.kron(xt[0, 0].numpy(), np.ones((10, 10)))
    corner = np.zeros((560, 560))
    corner[:280, 300:] = big[:, :260]
    assert torch.equal(widgets.from_drawing(corner), widgets.from_drawing(big))
    assert not widgets.from_drawing(np.zeros((280, 280))).any()
    with pytest.raises(ValueError, match="H x W"):
        widgets.from_drawing(np.zeros((3, 28, 28)))


def test_shift_moves_and_fills_with_background():
    from course_lib import augment

    x = torch.arange(1, 10, dtype=torch.uint8).view(1, 1, 3, 3)
    assert augment.shift(x, 1, 0)[0, 0].tolist() == [[0, 1, 2], [0, 4, 5], [0, 7, 8]]
    assert augment.shift(x, 0, -1)[0, 0].tolist() == [[4, 5, 6], [7, 8, 9], [0, 0, 0]]
    assert torch.equal(augment.shift(x, 0, 0), x) and not augment.shift(x, 3, 0).any()
    with pytest.raises(ValueError, match="N x C x H x W"):
        augment.shift(x[0], 1, 1)
