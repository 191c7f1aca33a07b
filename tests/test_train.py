import math

import pytest
import torch

from course_lib import digits, loader, models, train


@pytest.fixture(scope="module")
def sample():
    return digits.mnist_sample("train"), digits.mnist_sample("test")


def test_fit_learns_digits(sample):
    (xtr, ytr), (xte, yte) = sample
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


def test_fit_accepts_a_dataset(sample):
    (xtr, ytr), _ = sample
    ds = torch.utils.data.TensorDataset(loader.normalize(xtr[:1000]), ytr[:1000])
    model = models.LeNet1()
    history = train.fit(model, ds, ds, epochs=3, progress=False, device="cpu")
    # it learned from the Dataset (chance is 10 %), and reports what evaluate measures
    assert history.last["val_accuracy"] > 0.5
    assert history.last["val_accuracy"] == pytest.approx(train.evaluate(model, ds)["accuracy"])


def test_fit_rejects_unknown_data():
    with pytest.raises(TypeError, match="images, labels"):
        train.fit(models.LeNet1(), [1, 2, 3], epochs=1, device="cpu")


def test_divergence_names_epoch_and_learning_rate(sample):
    (xtr, ytr), _ = sample
    with pytest.raises(train.TrainingDiverged, match=r"epoch 1 at learning rate .*smaller"):
        torch.manual_seed(0)
        train.fit(models.LeNet5(activation="relu"), (xtr, ytr), epochs=2, lr=1e4, warmup_epochs=0,
                  progress=False, device="cpu")


def test_checkpoint_resume_equals_one_uninterrupted_run(sample, tmp_path):
    (xtr, ytr), _ = sample
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


def test_finished_checkpoint_returns_at_once(sample, tmp_path):
    (xtr, ytr), _ = sample
    ckpt = tmp_path / "done.pt"
    train.fit(models.LeNet1(), (xtr[:128], ytr[:128]), epochs=1, progress=False, device="cpu", checkpoint=ckpt)
    stamp = ckpt.stat().st_mtime_ns
    history = train.fit(models.LeNet1(), (xtr[:128], ytr[:128]), epochs=1, progress=False, device="cpu",
                        checkpoint=ckpt)
    assert history.column("epoch") == [1] and ckpt.stat().st_mtime_ns == stamp


def test_checkpoint_loads_with_weights_only(sample, tmp_path):
    (xtr, ytr), _ = sample
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


def test_predict_and_evaluate_agree(sample):
    (xtr, ytr), (xte, yte) = sample
    model = models.LeNet1()
    train.fit(model, (xtr, ytr), epochs=1, progress=False, device="cpu")
    logits = train.predict(model, xte)
    assert logits.shape == (len(xte), 10)
    accuracy = (logits.argmax(1) == yte).float().mean().item()
    assert accuracy == pytest.approx(train.evaluate(model, (xte, yte))["accuracy"])


def test_corrupted_checkpoint_is_a_clear_error(sample, tmp_path):
    (xtr, ytr), _ = sample
    ckpt = tmp_path / "broken.pt"
    ckpt.write_bytes(b"\x00garbage, not a checkpoint")
    with pytest.raises(RuntimeError, match="broken.pt is corrupted or not a course checkpoint: delete it"):
        train.fit(models.LeNet1(), (xtr, ytr), epochs=1, progress=False, device="cpu", checkpoint=ckpt)
    other = tmp_path / "other.pt"
    torch.save({"weights": torch.zeros(1)}, other)
    with pytest.raises(RuntimeError, match="not a training checkpoint"):
        train.fit(models.LeNet1(), (xtr, ytr), epochs=1, progress=False, device="cpu", checkpoint=other)


def test_predict_leaves_the_model_in_its_mode(sample):
    (xtr, _), _ = sample
    model = models.LeNet1().train()
    train.predict(model, xtr[:8], device="cpu")
    assert model.training
    model.eval()
    train.predict(model, xtr[:8], device="cpu")
    assert not model.training


def test_a_dataset_with_augment_or_normalization_is_refused(sample):
    (xtr, ytr), _ = sample
    ds = torch.utils.data.TensorDataset(loader.normalize(xtr[:64]), ytr[:64])
    for kwargs in ({"mean": (0.5,), "std": (0.2,)}, {"augment": lambda x, g: x}):
        with pytest.raises(ValueError, match="Dataset yields ready float tensors"):
            train.fit(models.LeNet1(), ds, epochs=1, progress=False, device="cpu", **kwargs)


def test_fit_leaves_the_global_random_state_alone(sample):
    (xtr, ytr), _ = sample
    model = models.LeNet1Simplified()
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    train.fit(model, (xtr[:64], ytr[:64]), epochs=1, progress=False, device="cpu", seed=7)
    assert torch.equal(torch.rand(3), expected), "fit must not re-seed the lesson's random numbers"


def test_a_loop_from_the_pieces_fit_uses(sample):
    """make_optimizer + lr_schedule + train_step, as lesson 02 shows them, learn like fit does."""
    (xtr, ytr), test = sample
    torch.manual_seed(0)
    model = models.LeNet1()
    batches = loader.TensorLoader(xtr[:2000], ytr[:2000], 64, shuffle=True, device="cpu")
    optimizer = train.make_optimizer(model, lr=0.1)
    lrs = train.lr_schedule(0.1, epochs=2, steps_per_epoch=len(batches))
    assert len(lrs) == 2 * len(batches) and lrs[0] < max(lrs) and lrs[-1] < 0.01
    for epoch in range(2):
        batches.set_epoch(epoch)
        for i, (x, y) in enumerate(batches):
            loss, logits = train.train_step(model, optimizer, x, y, lrs[epoch * len(batches) + i])
            assert not loss.requires_grad and logits.shape == (len(y), 10)
    assert train.evaluate(model, test)["accuracy"] > 0.8


def test_make_optimizer_decays_weights_but_not_biases():
    model = models.LeNet1Simplified()
    plain = train.make_optimizer(model, lr=0.1)
    assert len(plain.param_groups) == 1 and plain.param_groups[0]["nesterov"]
    decayed = train.make_optimizer(model, lr=0.1, weight_decay=1e-3)
    weights, biases = decayed.param_groups
    assert weights["weight_decay"] == 1e-3 and biases["weight_decay"] == 0.0
    assert all(p.dim() > 1 for p in weights["params"]) and all(p.dim() == 1 for p in biases["params"])


def test_autocast_is_left_out_for_small_networks_and_on_cpus_without_bf16(monkeypatch):
    """Measured on an H200: bf16 autocast cost LeNet-1 about 12 % of fit's speed (benchmarks/README.md); on a
    CPU, bf16 pays only where the CPU computes it natively (AVX512-BF16, AMX)."""
    assert train._autocast_dtype(torch.device("cuda"), models.LeNet1()) is None
    assert train._autocast_dtype(torch.device("cpu"), models.LeNet1()) is None
    monkeypatch.setattr(train, "cpu_has_bf16", lambda: False)
    assert train._autocast_dtype(torch.device("cpu"), models.AlexNet()) is None
    monkeypatch.setattr(train, "cpu_has_bf16", lambda: True)
    assert train._autocast_dtype(torch.device("cpu"), models.AlexNet()) is torch.bfloat16
    monkeypatch.setenv("COURSE_BF16_CPU", "0")
    assert train._autocast_dtype(torch.device("cpu"), models.AlexNet()) is None
    assert models.count_parameters(models.LeNet1()) < train.AUTOCAST_MIN_PARAMETERS <= \
        models.count_parameters(models.AlexNet(num_classes=10))


def test_adamw_is_an_optimizer_of_fit(sample):
    (xtr, ytr), (xte, yte) = sample
    model = models.LeNet1()
    history = train.fit(model, (xtr, ytr), (xte, yte), epochs=2, lr=0.003, optimizer="adamw", progress=False,
                        device="cpu")
    assert history.config["optimizer"] == "adamw" and history.last["val_accuracy"] > 0.5
    with pytest.raises(ValueError, match="optimizer must be one of sgd, adamw, got 'adam'"):
        train.fit(models.LeNet1(), (xtr, ytr), epochs=1, optimizer="adam", progress=False, device="cpu")


def test_a_checkpoint_of_other_training_data_or_normalization_is_not_resumed(sample, tmp_path):
    (xtr, ytr), _ = sample
    ckpt = tmp_path / "run.pt"
    train.fit(models.LeNet1(), (xtr[:128], ytr[:128]), epochs=1, progress=False, device="cpu", checkpoint=ckpt)
    with pytest.raises(RuntimeError, match=r"another run \(train_size: 128 there, 256 now\)"):
        train.fit(models.LeNet1(), (xtr[:256], ytr[:256]), epochs=1, progress=False, device="cpu", checkpoint=ckpt)
    with pytest.raises(RuntimeError, match=r"another run \(mean: None there, \[0.5\] now, "
                                           r"std: None there, \[0.25\] now\)"):
        train.fit(models.LeNet1(), (xtr[:128], ytr[:128]), epochs=1, progress=False, device="cpu", checkpoint=ckpt,
                  mean=(0.5,), std=(0.25,))


def test_an_interrupted_end_of_epoch_hook_keeps_the_finished_epoch(sample, tmp_path):
    (xtr, ytr), _ = sample
    ckpt = tmp_path / "run.pt"

    def interrupted(model, epoch, history, last):
        if epoch == 1:
            raise KeyboardInterrupt
    with pytest.raises(KeyboardInterrupt):
        train.fit(models.LeNet1(), (xtr[:128], ytr[:128]), epochs=2, progress=False, device="cpu", checkpoint=ckpt,
                  on_epoch_end=[interrupted])
    assert train.load_checkpoint(ckpt)["epoch"] == 1


def test_cpu_bf16_is_read_from_the_cpu_s_flags(monkeypatch, tmp_path):
    import builtins
    real_open = builtins.open
    for flags, expected in (("fpu avx512f avx512_bf16 amx_tile", True), ("fpu avx2 avx512f", False)):
        (tmp_path / "cpuinfo").write_text(f"processor\t: 0\nflags\t\t: {flags}\n")
        monkeypatch.setattr(builtins, "open", lambda path, *a, **k: real_open(
            tmp_path / "cpuinfo" if path == "/proc/cpuinfo" else path, *a, **k))
        train.cpu_has_bf16.cache_clear()
        assert train.cpu_has_bf16() is expected
    train.cpu_has_bf16.cache_clear()


def test_small_networks_train_in_channels_last_on_a_cpu_and_come_back_in_the_usual_layout(sample):
    (xtr, ytr), (xte, yte) = sample
    layouts = []

    def hook(model, epoch, history, *, last):   # runs inside fit, on the model as it trains
        w = model.conv2.weight                  # 16 x 6 x 5 x 5: the two layouts differ
        layouts.append("nhwc" if w.is_contiguous(memory_format=torch.channels_last) else
                       "nchw" if w.is_contiguous() else "other")

    model = models.LeNet5()
    history = train.fit(model, (xtr[:512], ytr[:512]), epochs=1, progress=False, device="cpu", on_epoch_end=hook,
                        probe=xte[:4], snapshot_every=1)
    assert layouts == ["nhwc", "nhwc"]
    assert all(p.is_contiguous() for p in model.parameters())
    model.conv2.weight.view(16, -1)             # a learner's reshape of the weights works after fit
    assert all(v.is_contiguous() for s in history.snapshots for v in s["state"].values())
    layouts.clear()
    train.fit(models.LeNet5(), (xtr[:512], ytr[:512]), epochs=1, progress=False, device="cpu", on_epoch_end=hook,
              channels_last=False)
    assert layouts == ["nchw", "nchw"]
    # big networks (bf16 on such CPUs) keep the usual layout on a CPU: there NHWC was 3x slower; CUDA takes NHWC
    assert train.channels_last_pays(torch.device("cpu"), models.LeNet1())
    assert not train.channels_last_pays(torch.device("cpu"), models.AlexNet(num_classes=10))
    assert train.channels_last_pays(torch.device("cuda"), models.AlexNet(num_classes=10))


def test_channels_last_changes_the_speed_not_what_lenet1_learns(sample):
    (xtr, ytr), _ = sample
    weights = []
    for channels_last in (False, True):
        torch.manual_seed(0)
        model = models.LeNet1()
        train.fit(model, (xtr[:1024], ytr[:1024]), epochs=1, batch_size=128, progress=False, device="cpu",
                  channels_last=channels_last)
        weights.append(torch.cat([p.detach().flatten() for p in model.parameters()]))
    assert torch.allclose(weights[0], weights[1], rtol=0, atol=1e-5)
    assert not torch.equal(weights[0], torch.cat([p.detach().flatten() for p in models.LeNet1().parameters()]))


def test_each_profile_s_lenet_recipe_is_fit_s_keyword_arguments():
    import inspect

    from course_lib import env
    accepted = set(inspect.signature(train.fit).parameters)
    for name in env.PROFILE_NAMES:
        recipe = env.profile(name).lenet_recipe
        assert set(recipe) == {"epochs", "lr", "batch_size", "label_smoothing"} and set(recipe) <= accepted
        train.Settings(**recipe)                # in range
