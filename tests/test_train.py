import math
from pathlib import Path

import pytest
import torch

from course_lib import data, models, train


@pytest.fixture(scope="module")
def digits():
    return data.mnist_sample("train"), data.mnist_sample("test")


def test_fit_learns_digits(digits):
    (xtr, ytr), (xte, yte) = digits
    torch.manual_seed(0)
    model = models.LeNet1()
    before = train.evaluate(model, (xte, yte), device="cpu")
    history = train.fit(model, (xtr, ytr), (xte, yte), epochs=4, progress=False, device="cpu")
    after = train.evaluate(model, (xte, yte))
    assert before["accuracy"] < 0.3 and after["accuracy"] > 0.9
    assert math.isclose(after["error"], 1 - after["accuracy"])
    assert history.column("epoch") == [1, 2, 3, 4]
    assert history.last["val_accuracy"] == pytest.approx(after["accuracy"])
    assert history.column("train_loss")[-1] < history.column("train_loss")[0]
    assert all(row["images_per_s"] > 0 for row in history.epochs)


def test_fit_accepts_a_dataset(digits):
    (xtr, ytr), _ = digits
    ds = torch.utils.data.TensorDataset(data.normalize(xtr[:256]), ytr[:256])
    history = train.fit(models.LeNet1(), ds, ds, epochs=1, progress=False, device="cpu")
    assert 0 <= history.last["val_accuracy"] <= 1


def test_fit_rejects_unknown_data():
    with pytest.raises(TypeError, match="images, labels"):
        train.fit(models.LeNet1(), [1, 2, 3], epochs=1, device="cpu")


def test_divergence_names_epoch_and_learning_rate(digits):
    (xtr, ytr), _ = digits
    with pytest.raises(train.TrainingDiverged, match=r"epoch 1 at learning rate .*smaller"):
        train.fit(models.LeNet5(activation="relu"), (xtr, ytr), epochs=2, lr=1e4, warmup_epochs=0,
                  progress=False, device="cpu")


def test_checkpoint_resume_equals_one_uninterrupted_run(digits, tmp_path):
    (xtr, ytr), _ = digits
    torch.manual_seed(0)
    straight = models.LeNet1()
    start = {k: v.clone() for k, v in straight.state_dict().items()}
    train.fit(straight, (xtr, ytr), epochs=3, progress=False, device="cpu")

    # A run that crashes in the middle of epoch 2 (the checkpoint holds epoch 1)...
    steps_per_epoch = -(-len(ytr) // 64)
    calls = []

    def crash_in_epoch_2(batch, generator):
        calls.append(1)
        if len(calls) > steps_per_epoch + 3:
            raise KeyboardInterrupt
        return batch

    ckpt = tmp_path / "run.pt"
    crashed = models.LeNet1()
    crashed.load_state_dict(start)
    with pytest.raises(KeyboardInterrupt):
        train.fit(crashed, (xtr, ytr), epochs=3, progress=False, device="cpu", checkpoint=ckpt,
                  augment=crash_in_epoch_2)
    assert train.load_checkpoint(ckpt)["epoch"] == 1
    # ...is resumed by a new process, with a new model object, and ends where the straight run ended.
    again = models.LeNet1()  # a new process would start from a new model
    history = train.fit(again, (xtr, ytr), epochs=3, progress=False, device="cpu", checkpoint=ckpt)
    assert history.column("epoch") == [1, 2, 3]
    for k, v in straight.state_dict().items():
        assert torch.allclose(v, again.state_dict()[k], atol=1e-6), k


def test_finished_checkpoint_returns_at_once(digits, tmp_path):
    (xtr, ytr), _ = digits
    ckpt = tmp_path / "done.pt"
    train.fit(models.LeNet1(), (xtr[:128], ytr[:128]), epochs=1, progress=False, device="cpu", checkpoint=ckpt)
    stamp = ckpt.stat().st_mtime_ns
    history = train.fit(models.LeNet1(), (xtr[:128], ytr[:128]), epochs=1, progress=False, device="cpu",
                        checkpoint=ckpt)
    assert history.column("epoch") == [1] and ckpt.stat().st_mtime_ns == stamp


def test_checkpoint_loads_with_weights_only(digits, tmp_path):
    (xtr, ytr), _ = digits
    ckpt = tmp_path / "c.pt"
    train.fit(models.LeNet1(), (xtr[:128], ytr[:128]), epochs=1, progress=False, device="cpu", checkpoint=ckpt)
    state = torch.load(ckpt, weights_only=True)
    assert set(state) == {"model", "optimizer", "history", "epoch"} and state["epoch"] == 1


def test_interrupted_save_leaves_the_old_checkpoint(tmp_path, monkeypatch):
    path = tmp_path / "ckpt.pt"
    train.save_checkpoint(path, {"epoch": 1})

    def broken_save(obj, f):
        f.write(b"half a checkpoint")
        raise KeyboardInterrupt

    monkeypatch.setattr(torch, "save", broken_save)
    with pytest.raises(KeyboardInterrupt):
        train.save_checkpoint(path, {"epoch": 2})
    monkeypatch.undo()
    assert train.load_checkpoint(path) == {"epoch": 1}
    assert list(tmp_path.iterdir()) == [path]  # no temporary file left behind


def test_predict_and_evaluate_agree(digits):
    (xtr, ytr), (xte, yte) = digits
    model = models.LeNet1()
    train.fit(model, (xtr, ytr), epochs=1, progress=False, device="cpu")
    logits = train.predict(model, xte)
    assert logits.shape == (len(xte), 10)
    accuracy = (logits.argmax(1) == yte).float().mean().item()
    assert accuracy == pytest.approx(train.evaluate(model, (xte, yte))["accuracy"])


def test_corrupted_checkpoint_is_a_clear_error(digits, tmp_path):
    (xtr, ytr), _ = digits
    ckpt = tmp_path / "broken.pt"
    ckpt.write_bytes(b"\x00garbage, not a checkpoint")
    with pytest.raises(RuntimeError, match="broken.pt is corrupted or not a course checkpoint: delete it"):
        train.fit(models.LeNet1(), (xtr, ytr), epochs=1, progress=False, device="cpu", checkpoint=ckpt)
    other = tmp_path / "other.pt"
    torch.save({"weights": torch.zeros(1)}, other)
    with pytest.raises(RuntimeError, match="not a fit\\(\\) checkpoint"):
        train.fit(models.LeNet1(), (xtr, ytr), epochs=1, progress=False, device="cpu", checkpoint=other)
