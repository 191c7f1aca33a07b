"""The data folder as learners have it: shared by two notebooks at once, read-only, a file, a symlink.
Each situation is made for real (two processes, an immutable folder, a link), not mocked."""

import contextlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from course_lib import digits, env, files, imagenette

ROOT = Path(__file__).resolve().parent.parent


@contextlib.contextmanager
def read_only(folder: Path):
    """``folder`` made read-only for this process: chmod for a user, the immutable flag for root (who
    writes through permissions). Skips when neither works here."""
    if os.geteuid() != 0:
        folder.chmod(0o555)
        undo = lambda: folder.chmod(0o755)
    elif shutil.which("chattr") and subprocess.run(["chattr", "+i", str(folder)], capture_output=True).returncode == 0:
        undo = lambda: subprocess.run(["chattr", "-i", str(folder)], check=True)
    else:
        pytest.skip("cannot make a read-only folder on this machine (root without chattr +i)")
    try:
        assert not os.access(folder, os.W_OK)
        yield folder
    finally:
        undo()


def _together(code: str, cwd: Path, n: int = 2) -> list[subprocess.CompletedProcess]:
    """Start ``n`` Python processes running ``code`` at the same moment; wait for all."""
    env_ = dict(os.environ, PYTHONPATH=str(ROOT), OMP_NUM_THREADS="1")
    procs = [subprocess.Popen([sys.executable, "-c", code], cwd=cwd, env=env_, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for _ in range(n)]
    return [subprocess.CompletedProcess(p.args, p.wait(timeout=300), *p.communicate()) for p in procs]


def test_two_notebooks_building_the_offline_folder_at_once_both_succeed(tmp_path):
    code = ("from course_lib import imagenette; root = imagenette.offline_folder(%r, train_per_class=6, "
            "val_per_class=2); print(len(list(root.rglob('*.JPEG'))))" % str(tmp_path))
    for done in _together(code, tmp_path, n=3):
        assert done.returncode == 0 and done.stdout.strip() == "80", done.stderr[-2000:]
    assert not list(tmp_path.glob(".offline-*")), "no temporary folder is left behind"


def test_two_extractions_of_one_archive_at_once_both_succeed(tmp_path):
    import tarfile
    src = imagenette.offline_folder(tmp_path / "src", train_per_class=3, val_per_class=1)
    with tarfile.open(tmp_path / "imagenette2-160.tgz", "w:gz") as tar:
        tar.add(src / "imagenette2-160", arcname="imagenette2-160")
    code = ("from course_lib import imagenette; s = imagenette.load_split('val', root=%r, download=False, md5=None, "
            "resolution=32, progress=False); print(len(s.labels))" % str(tmp_path))
    for done in _together(code, tmp_path):
        assert done.returncode == 0 and done.stdout.strip().endswith("10"), done.stderr[-2000:]


def test_two_runs_caching_one_image_folder_at_once_both_succeed(tmp_path):
    from PIL import Image
    from skimage import data as photos
    for name in ("chelsea", "coffee"):
        (tmp_path / "photos" / "train" / name).mkdir(parents=True)
        for j in range(6):
            picture = Image.fromarray(getattr(photos, name)()[j * 7:, j * 7:])
            picture.save(tmp_path / "photos" / "train" / name / f"{j}.jpg")
    code = ("from pathlib import Path; from course_lib import distributed; x, y, c = distributed.folder_cache("
            "Path(%r), 40); print(x.shape[0], int(x.sum() > 0))" % str(tmp_path / "photos"))
    for done in _together(code, tmp_path):
        assert done.returncode == 0 and done.stdout.strip() == "12 1", done.stderr[-2000:]
    assert not list((tmp_path / "photos" / ".course-cache").glob("*.tmp*"))


def test_a_read_only_data_folder_says_so_first_and_keeps_the_images_in_memory(tmp_path):
    src = imagenette.offline_folder(tmp_path, train_per_class=3, val_per_class=1)
    with read_only(src):
        with pytest.warns(UserWarning, match=r"offline is read-only: the images of .* are decoded now and kept in "
                                             r"memory only"):
            split = imagenette.load_split("val", root=src, download=False, resolution=32, progress=False)
    assert split.images.shape == (10, 3, 32, 32) and not list(src.glob("*.npy"))


def test_course_data_pointing_at_a_file_is_named_and_the_cpu_profile_falls_back(tmp_path, monkeypatch):
    (tmp_path / "not-a-folder").write_text("x")
    monkeypatch.setenv("COURSE_DATA", str(tmp_path / "not-a-folder"))
    with pytest.raises(files.DataFolderError, match=r"not-a-folder \(from \$COURSE_DATA\) is a file, not a folder"):
        files.data_root()
    with pytest.warns(UserWarning, match="is a file, not a folder(.|\n)*5,000-digit MNIST sample"):
        x, _ = digits.for_profile("test", env.profile("cpu"))
    assert torch.equal(x, digits.mnist_sample("test")[0])


def test_atomic_write_keeps_permissions_and_writes_through_a_symlink(tmp_path):
    private = tmp_path / "private.txt"
    private.write_text("old")
    private.chmod(0o600)
    files.atomic_write(private, lambda f: f.write("new"), mode="w")
    assert private.read_text() == "new" and (private.stat().st_mode & 0o777) == 0o600
    real, link = tmp_path / "real.txt", tmp_path / "link.txt"
    real.write_text("old")
    link.symlink_to(real)
    files.atomic_write(link, lambda f: f.write("new"), mode="w")
    assert link.is_symlink() and real.read_text() == "new"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["link.txt", "private.txt", "real.txt"]
