"""The whole Imagenette path offline: archive, checksum, safe extraction, cache, loader, augmentation."""

import io
import re
import tarfile

import numpy as np
import pytest
import torch

from course_lib import augment, image_folders, imagenette, loader

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
    split = imagenette.load_split("train", root=tmp_path, download=False, resolution=64, md5=md5(archive),
                            progress=False)
    assert split.images.shape == (40, 3, 64, 64) and split.images.dtype == torch.uint8
    assert split.labels.tolist() == sorted(split.labels.tolist()) and len(split.classes) == 10
    assert (tmp_path / NAME / "val").is_dir() and not list(tmp_path.glob(".imagenette2-160-extract-*"))
    cache = tmp_path / f"{NAME}-train-64px.npy"
    assert cache.exists() and cache.with_name(f"{NAME}-train-64px.json").exists()
    # a second call reads the cache, not the images
    monkeypatch.setattr(image_folders, "decode", lambda *a: pytest.fail("decoded images again"))
    again = imagenette.load_split("train", root=tmp_path, download=False, resolution=64)
    assert torch.equal(again.images, split.images)


def test_download_from_a_server_verifies_the_published_checksum(photo_folder, http_server, tmp_path, monkeypatch):
    _, archive = photo_folder
    url = http_server(archive.parent)
    monkeypatch.setitem(imagenette.ARCHIVES, ("imagenette", 160), (url + f"{NAME}.tgz", md5(archive)))
    split = imagenette.load_split("val", root=tmp_path, resolution=32, md5=md5(archive), progress=False)
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
        imagenette.load_split("train", root=tmp_path, download=False, md5="0" * 32)
    assert not (tmp_path / NAME).exists()


def test_truncated_archive_is_detected(photo_folder, tmp_path):
    _, archive = photo_folder
    blob = archive.read_bytes()
    (tmp_path / f"{NAME}.tgz").write_bytes(blob[: len(blob) // 2])
    with pytest.raises(RuntimeError, match="truncated"):
        imagenette.load_split("train", root=tmp_path, download=False, md5=None)
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


def _tar(path, members):
    """Write a tar archive of (TarInfo, bytes or None) members."""
    with tarfile.open(path, "w") as tar:
        for info, payload in members:
            if payload is not None:
                info.size = len(payload)
            tar.addfile(info, io.BytesIO(payload) if payload is not None else None)
    return path


def _link(name, target, hard=False):
    info = tarfile.TarInfo(name)
    info.type, info.linkname = (tarfile.LNKTYPE if hard else tarfile.SYMTYPE), target
    return info, None


def _special(name, kind):
    info = tarfile.TarInfo(name)
    info.type = kind
    return info, None


EVIL = {
    "symlink out": [_link("imagenette2-160/passwd", "/etc/passwd")],
    # tar resolves a hard link's target from the archive root, not from the member's folder: checked
    # from the folder, "../outside.txt" seemed to stay inside
    "hard link resolved from the root": [_special("a/b", tarfile.DIRTYPE),
                                         _link("a/b/link", "../outside.txt", hard=True)],
    # a chain: an innocent-looking link to a folder, then a path through it
    "symlink chain": [_link("a/up", ".."), _link("a/up2", "up/.."), (tarfile.TarInfo("a/up2/escaped.txt"), b"x")],
    "path traversal": [(tarfile.TarInfo("../escaped.txt"), b"boom")],
    "device": [_special("imagenette2-160/dev", tarfile.CHRTYPE)],
}


@pytest.mark.parametrize("with_filter", [True, False], ids=["data filter", "no data filter (Python < 3.11.4)"])
@pytest.mark.parametrize("kind", sorted(EVIL))
def test_unsafe_members_are_refused_with_or_without_the_data_filter(kind, with_filter, tmp_path, monkeypatch):
    if not with_filter:
        monkeypatch.delattr(tarfile, "data_filter", raising=False)
    (tmp_path / "outside.txt").write_text("secret")
    archive = _tar(tmp_path / "evil.tar", EVIL[kind])
    with pytest.raises(RuntimeError, match="escape|is a link|device"):
        imagenette.safe_extract(archive, tmp_path / "out")
    assert not (tmp_path / "escaped.txt").exists() and not list((tmp_path / "out").rglob("*"))
    assert (tmp_path / "outside.txt").read_text() == "secret"


def test_a_plain_archive_extracts_without_the_data_filter(photo_folder, tmp_path, monkeypatch):
    monkeypatch.delattr(tarfile, "data_filter", raising=False)
    _, archive = photo_folder
    imagenette.safe_extract(archive, tmp_path / "out")
    assert len(list((tmp_path / "out" / NAME / "train").rglob("*.JPEG"))) == 40


def test_nothing_on_disk_says_where_to_put_the_archive(tmp_path):
    with pytest.raises(FileNotFoundError) as err:
        imagenette.load_split("train", variant="imagewoof", size=320, root=tmp_path, download=False)
    message = str(err.value)
    assert str(tmp_path / "imagewoof2-320.tgz") in message and "imagewoof2-320.tgz" in message
    assert imagenette.ARCHIVES["imagewoof", 320][1] in message


def test_cache_of_another_resolution_or_count_is_rebuilt(photo_folder, tmp_path):
    root, _ = photo_folder
    first = imagenette.load_split("train", root=root, download=False, resolution=48, progress=False)
    cache = root / f"{NAME}-train-48px.npy"
    np.save(cache, np.load(cache)[:, :, :40, :40])               # as if made at another resolution
    again = imagenette.load_split("train", root=root, download=False, resolution=48, progress=False)
    assert again.images.shape[-1] == 48 and torch.equal(again.images, first.images)
    cache.write_bytes(b"not a numpy file")                        # a broken cache is rebuilt too
    split = imagenette.load_split("train", root=root, download=False, resolution=48, progress=False)
    assert split.images.shape[0] == 40


def test_bad_arguments_are_clear():
    with pytest.raises(ValueError, match="'imagenette' or 'imagewoof'"):
        imagenette.load_split("train", variant="imagewolf")
    with pytest.raises(ValueError, match="160 or 320"):
        imagenette.load_split("train", size=224)
    with pytest.raises(ValueError, match="'train' or 'val'"):
        imagenette.load_split("test")


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


@pytest.fixture
def messy_folder(photo_folder, tmp_path):
    """A copy of the photo folder with what real folders contain: Jupyter's checkpoints, hidden files,
    an empty class folder."""
    import shutil
    root, _ = photo_folder
    shutil.copytree(root / NAME, tmp_path / NAME)
    train_dir = tmp_path / NAME / "train"
    (train_dir / ".ipynb_checkpoints").mkdir()
    shutil.copy(next((train_dir / "chelsea").glob("*.JPEG")), train_dir / ".ipynb_checkpoints" / "x.JPEG")
    (train_dir / "camera" / ".DS_Store").write_bytes(b"\0\0")
    (train_dir / "camera" / "._0.JPEG").write_bytes(b"\0\0")            # macOS resource fork
    return tmp_path


def test_hidden_folders_never_become_classes_and_an_empty_class_is_refused(messy_folder):
    clean = sorted(imagenette.OFFLINE_PHOTOS)
    split = imagenette.load_split("train", root=messy_folder, download=False, resolution=32, progress=False)
    assert split.classes == clean and len(split.labels) == 40
    assert split.labels.bincount().tolist() == [4] * 10      # no class shifted, nothing counted twice
    # an empty class folder would shift the labels of every class after it: refused, by name
    (messy_folder / NAME / "train" / "aaa_empty").mkdir()
    with pytest.raises(ValueError, match="aaa_empty holds no image.*shift the labels"):
        imagenette.load_split("train", root=messy_folder, download=False, resolution=32, progress=False)


@pytest.mark.parametrize("bad", ["empty", "truncated", "text"])
def test_an_unreadable_image_is_named_and_can_be_skipped(messy_folder, bad):
    target = messy_folder / NAME / "train" / "coins" / "broken.JPEG"
    good = next((messy_folder / NAME / "train" / "coins").glob("*.JPEG")).read_bytes()
    target.write_bytes({"empty": b"", "truncated": good[:200], "text": b"hello, I am not a picture"}[bad])
    with pytest.raises(RuntimeError, match=r"coins/broken.JPEG could not be decoded(.|\n)*skip_bad=True"):
        imagenette.load_split("train", root=messy_folder, download=False, resolution=32, progress=False)
    with pytest.warns(UserWarning) as caught:
        split = imagenette.load_split("train", root=messy_folder, download=False, resolution=32, progress=False,
                                skip_bad=True)
    assert any(re.search("broken.JPEG could not be decoded.*left out", str(w.message)) for w in caught)
    assert len(split.labels) == 40


def test_16_bit_png_keeps_its_gray_levels(tmp_path):
    from PIL import Image
    import numpy as np
    for name in ("dark", "bright"):
        (tmp_path / "x" / "train" / name).mkdir(parents=True)
    ramp = (np.linspace(0, 65535, 64 * 64).reshape(64, 64)).astype(np.uint16)
    Image.fromarray(ramp).save(tmp_path / "x" / "train" / "dark" / "a.png")         # 16-bit gray
    Image.fromarray((ramp // 257).astype(np.uint8)).save(tmp_path / "x" / "train" / "bright" / "b.png")
    pixels = [image_folders.decode(tmp_path / "x" / "train" / d / f, 64)
              for d, f in (("dark", "a.png"), ("bright", "b.png"))]
    assert np.abs(pixels[0].astype(int) - pixels[1].astype(int)).max() <= 1      # same picture, not white
    assert pixels[0].mean() == pytest.approx(127.5, abs=2)


def test_cache_is_rebuilt_when_an_image_moves_or_changes(photo_folder, tmp_path):
    import os
    import shutil
    root, _ = photo_folder
    shutil.copytree(root / NAME, tmp_path / NAME)
    first = imagenette.load_split("val", root=tmp_path, download=False, resolution=24, progress=False)
    # same count, one image moved to another class: the labels must follow
    src = next((tmp_path / NAME / "val" / "astronaut").glob("*.JPEG"))
    shutil.move(src, tmp_path / NAME / "val" / "rocket" / src.name)
    moved = imagenette.load_split("val", root=tmp_path, download=False, resolution=24, progress=False)
    assert len(moved.labels) == len(first.labels) and not torch.equal(moved.labels, first.labels)
    # same names and count, one image replaced by another photo
    a, b = sorted((tmp_path / NAME / "val" / "coins").glob("*.JPEG"))[:2]
    b.write_bytes(a.read_bytes())
    os.utime(b, ns=(b.stat().st_atime_ns, b.stat().st_mtime_ns + 10**9))
    replaced = imagenette.load_split("val", root=tmp_path, download=False, resolution=24, progress=False)
    assert not torch.equal(replaced.images, moved.images)


# --- a folder the learner already has ----------------------------------------------------------------

@pytest.fixture
def wnid_folder(photo_folder, tmp_path):
    """The offline photos in ImageNet's layout under Imagenette's ten wnids, in the formats PIL reads
    that datasets come in: WebP (as the 128 px copy), PNG and JPEG, at another size than the archives'."""
    from PIL import Image
    root, _ = photo_folder
    folder = tmp_path / "my-imagenette"
    for split in ("train", "val"):
        for i, (photo, wnid) in enumerate(zip(sorted(imagenette.OFFLINE_PHOTOS), imagenette.WNIDS["imagenette"])):
            (folder / split / wnid).mkdir(parents=True)
            for j, f in enumerate(sorted((root / NAME / split / photo).glob("*.JPEG"))):
                suffix = (".webp", ".png", ".JPEG")[(i + j) % 3]
                Image.open(f).resize((120, 100)).save(folder / split / wnid / f"{f.stem}{suffix}")
    return folder


def test_a_folder_in_imagenet_layout_is_validated_counted_and_cached_once(wnid_folder, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("COURSE_IMAGENETTE", str(wnid_folder))
    split = imagenette.load_split("train", root=tmp_path / "cache", resolution=48, progress=False)
    assert split.images.shape == (40, 3, 48, 48) and split.labels.bincount().tolist() == [4] * 10
    assert split.classes[0] == "tench" and split.classes[-1] == "parachute"
    said = capsys.readouterr().out
    assert f"{wnid_folder.name}/train: 40 images; tench 4, English springer 4" in said and str(tmp_path) not in said
    monkeypatch.setattr(image_folders, "decode", lambda *a: pytest.fail("decoded images again"))
    again = imagenette.load_split("train", root=tmp_path / "cache", resolution=48, progress=False)
    assert torch.equal(again.images, split.images) and capsys.readouterr().out == ""
    # the same folder given as an argument, with no setting, is the same data and the same cache
    monkeypatch.delenv("COURSE_IMAGENETTE")
    from_folder = imagenette.load_split("train", root=tmp_path / "cache", resolution=48, folder=wnid_folder)
    assert torch.equal(from_folder.images,
                       split.images)


def test_a_folder_with_missing_or_extra_classes_is_refused_by_name(wnid_folder, tmp_path):
    import shutil
    shutil.rmtree(wnid_folder / "val" / "n03425413")
    (wnid_folder / "val" / "n02086240").mkdir()                         # an Imagewoof class
    with pytest.raises(ValueError, match=r"val does not hold imagenette's ten classes \(missing n03425413; "
                                         r"not imagenette classes: n02086240\)"):
        imagenette.load_split("val", root=tmp_path, folder=wnid_folder)
    imagenette.load_split("train", root=tmp_path, folder=wnid_folder, progress=False)      # train is still whole
    with pytest.raises(FileNotFoundError, match="nowhere has no train/ folder: expected .*train/<wnid>/<image>"):
        imagenette.check_folder(tmp_path / "nowhere")


def test_an_unreadable_image_in_the_folder_is_named(wnid_folder, tmp_path):
    (wnid_folder / "train" / "n03000684" / "broken.webp").write_bytes(b"RIFF not really a webp")
    with pytest.raises(RuntimeError, match=r"n03000684/broken.webp could not be decoded"):
        imagenette.load_split("train", root=tmp_path, folder=wnid_folder, progress=False)


def test_jpeg_is_decoded_at_a_reduced_scale(tmp_path, monkeypatch):
    """draft() must come before the pixels are read, or large JPEGs are decoded at full size."""
    from PIL import Image
    import numpy as np
    big = tmp_path / "big.jpg"
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (1600, 1200, 3), dtype=np.uint8)).save(big)
    sizes = []
    original = Image.Image.convert

    def convert(self, *args, **kwargs):
        sizes.append(self.size)
        return original(self, *args, **kwargs)
    monkeypatch.setattr(Image.Image, "convert", convert)
    assert image_folders.decode(big, 100).shape == (100, 100, 3)
    assert sizes[0][0] <= 400, f"decoded at {sizes[0]}: draft() came too late"


SHARED = imagenette.Path(__file__).resolve().parents[2] / "shared" / "data" / "imagenette2-128"


@pytest.mark.skipif(not SHARED.is_dir(), reason=f"the 128 px copy of Imagenette is not on this machine ({SHARED})")
def test_the_real_imagenette_folder_is_accepted(tmp_path):
    source = imagenette.check_folder(SHARED)
    counts = {split: sum(1 for _ in (source / split).rglob("*.webp")) for split in ("train", "val")}
    assert counts == {"train": 9469, "val": 3925}
    val = imagenette.load_split("val", root=tmp_path, folder=SHARED, resolution=32, progress=False)
    assert val.images.shape == (3925, 3, 32, 32) and val.labels.bincount().tolist() == [
        387, 395, 357, 386, 409, 394, 389, 419, 399, 390]
