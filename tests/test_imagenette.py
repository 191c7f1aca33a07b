"""The whole Imagenette path offline: archive, checksum, safe extraction, cache, loader, augmentation."""

import io
import tarfile

import pytest
import torch

from course_lib import augment, imagenette, loader

from helpers import md5

NAME = "imagenette2-160"


@pytest.fixture(scope="module")
def photo_folder(tmp_path_factory):
    """The offline folder (real scikit-image photos in Imagenette's layout) and a .tgz of it."""
    root = imagenette.offline_folder(tmp_path_factory.mktemp("src"), train_per_class=4, val_per_class=2)
    archive = root.parent / f"{NAME}.tgz"
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(root / NAME, arcname=NAME)
    return root, archive


def test_offline_folder_has_imagenette_layout(photo_folder):
    root, _ = photo_folder
    classes = sorted(p.name for p in (root / NAME / "train").iterdir())
    assert classes == sorted(imagenette.OFFLINE_PHOTOS)
    assert len(list((root / NAME / "val" / "chelsea").glob("*.JPEG"))) == 2


def test_archive_checksum_extraction_cache_and_reload(photo_folder, tmp_path, monkeypatch):
    _, archive = photo_folder
    (tmp_path / f"{NAME}.tgz").write_bytes(archive.read_bytes())  # as if downloaded by hand
    split = imagenette.load("train", root=tmp_path, download=False, resolution=64, md5=md5(archive),
                            progress=False)
    assert split.images.shape == (40, 3, 64, 64) and split.images.dtype == torch.uint8
    assert split.labels.tolist() == sorted(split.labels.tolist()) and len(split.classes) == 10
    assert (tmp_path / NAME / "val").is_dir() and not list(tmp_path.glob(".imagenette2-160-extract-*"))
    cache = tmp_path / f"{NAME}-train-64px.pt"
    assert cache.exists()
    # a second call reads the cache, not the images
    monkeypatch.setattr(imagenette, "_load_resized", lambda *a: pytest.fail("decoded images again"))
    again = imagenette.load("train", root=tmp_path, download=False, resolution=64)
    assert torch.equal(again.images, split.images)


def test_download_from_a_server_verifies_the_published_checksum(photo_folder, http_server, tmp_path, monkeypatch):
    _, archive = photo_folder
    url = http_server(archive.parent)
    monkeypatch.setitem(imagenette.ARCHIVES, ("imagenette", 160), (url + f"{NAME}.tgz", md5(archive)))
    split = imagenette.load("val", root=tmp_path, resolution=32, md5=md5(archive), progress=False)
    assert split.images.shape == (20, 3, 32, 32)
    assert (tmp_path / f"{NAME}.tgz").exists() and not (tmp_path / f"{NAME}.tgz.part").exists()


def test_archive_table_matches_torchvision_and_the_names():
    from torchvision.datasets import Imagenette
    for size in (160, 320):
        assert imagenette.ARCHIVES["imagenette", size] == Imagenette._ARCHIVES[f"{size}px"]
    for (variant, size), (url, checksum) in imagenette.ARCHIVES.items():
        assert url.endswith(f"/{imagenette.archive_name(variant, size)}.tgz") and len(checksum) == 32


def test_wrong_checksum_is_refused(photo_folder, tmp_path):
    _, archive = photo_folder
    (tmp_path / f"{NAME}.tgz").write_bytes(archive.read_bytes())
    with pytest.raises(RuntimeError, match=r"has MD5 .* expected 0{32}.*Delete it"):
        imagenette.load("train", root=tmp_path, download=False, md5="0" * 32)
    assert not (tmp_path / NAME).exists()


def test_truncated_archive_is_detected(photo_folder, tmp_path):
    _, archive = photo_folder
    blob = archive.read_bytes()
    (tmp_path / f"{NAME}.tgz").write_bytes(blob[: len(blob) // 2])
    with pytest.raises(RuntimeError, match="truncated"):
        imagenette.load("train", root=tmp_path, download=False, md5=None)
    assert not (tmp_path / NAME).exists()  # nothing half-extracted left behind


def test_path_traversal_is_refused(tmp_path):
    evil = tmp_path / "evil.tgz"
    with tarfile.open(evil, "w:gz") as tar:
        info = tarfile.TarInfo("../escaped.txt")
        info.size = 4
        tar.addfile(info, io.BytesIO(b"boom"))
    target = tmp_path / "out"
    target.mkdir()
    with pytest.raises(RuntimeError, match="escape"):
        imagenette.safe_extract(evil, target)
    assert not (tmp_path / "escaped.txt").exists()


def test_link_out_of_the_folder_is_refused(tmp_path):
    evil = tmp_path / "link.tgz"
    with tarfile.open(evil, "w:gz") as tar:
        info = tarfile.TarInfo("imagenette2-160/passwd")
        info.type, info.linkname = tarfile.SYMTYPE, "/etc/passwd"
        tar.addfile(info)
    with pytest.raises(RuntimeError, match="escape"):
        imagenette.safe_extract(evil, tmp_path / "out")


def test_nothing_on_disk_says_where_to_put_the_archive(tmp_path):
    with pytest.raises(FileNotFoundError) as err:
        imagenette.load("train", variant="imagewoof", size=320, root=tmp_path, download=False)
    message = str(err.value)
    assert str(tmp_path / "imagewoof2-320.tgz") in message and "imagewoof2-320.tgz" in message
    assert imagenette.ARCHIVES["imagewoof", 320][1] in message


def test_cache_of_another_resolution_or_count_is_rebuilt(photo_folder, tmp_path):
    root, _ = photo_folder
    first = imagenette.load("train", root=root, download=False, resolution=48, progress=False)
    cache = root / f"{NAME}-train-48px.pt"
    stored = torch.load(cache, weights_only=True)
    stored["images"] = stored["images"][:, :, :40, :40]          # as if made at another resolution
    torch.save(stored, cache)
    again = imagenette.load("train", root=root, download=False, resolution=48, progress=False)
    assert again.images.shape[-1] == 48 and torch.equal(again.images, first.images)
    cache.write_bytes(b"not a torch file")                        # a broken cache is rebuilt too
    assert imagenette.load("train", root=root, download=False, resolution=48, progress=False).images.shape[0] == 40


def test_bad_arguments_are_clear():
    with pytest.raises(ValueError, match="'imagenette' or 'imagewoof'"):
        imagenette.load("train", variant="imagewolf")
    with pytest.raises(ValueError, match="160 or 320"):
        imagenette.load("train", size=224)
    with pytest.raises(ValueError, match="'train' or 'val'"):
        imagenette.load("test")


def test_loader_applies_augmentation_on_the_batch():
    x = torch.full((10, 3, 8, 8), 255, dtype=torch.uint8)
    calls = []

    def blank(batch, gen):
        calls.append(batch.shape[0])
        return batch.float() * 0

    batch_loader = loader.TensorLoader(x, torch.zeros(10, dtype=torch.long), 4, device="cpu", augment=blank)
    batches = [xb for xb, _ in batch_loader]
    assert calls == [4, 4, 2]  # one call per batch, never per image
    assert torch.allclose(batches[0], (0 - torch.tensor(loader.IMAGENET_MEAN).view(1, 3, 1, 1)) /
                          torch.tensor(loader.IMAGENET_STD).view(1, 3, 1, 1))


def test_random_crop_flip_takes_real_crops_and_mirrors():
    x = torch.randint(0, 256, (64, 3, 12, 10), generator=torch.Generator().manual_seed(2), dtype=torch.uint8)
    out = augment.random_crop_flip(x, torch.Generator().manual_seed(0), 8)
    assert out.shape == (64, 3, 8, 8) and out.dtype == torch.uint8
    assert torch.equal(out, augment.random_crop_flip(x, torch.Generator().manual_seed(0), 8))  # seeded
    flips = 0
    for img, src in zip(out, x):
        crops = [src[:, i:i + 8, j:j + 8] for i in range(5) for j in range(3)]
        plain = any(torch.equal(img, c) for c in crops)
        mirrored = any(torch.equal(img, c.flip(-1)) for c in crops)
        assert plain or mirrored
        flips += mirrored and not plain
    assert 16 <= flips <= 48
    with pytest.raises(ValueError, match="Cannot crop 16x16 out of 12x10"):
        augment.random_crop_flip(x, torch.Generator(), 16)


def test_center_crop_and_crop_flip_as_augment():
    x = torch.arange(36, dtype=torch.uint8).reshape(1, 1, 6, 6)
    assert augment.center_crop(x, 2).flatten().tolist() == [14, 15, 20, 21]
    batch_loader = loader.TensorLoader(x.expand(4, 3, 6, 6).contiguous(), torch.zeros(4, dtype=torch.long), 2,
                               device="cpu", augment=augment.crop_flip(4))
    assert next(iter(batch_loader))[0].shape == (2, 3, 4, 4)
