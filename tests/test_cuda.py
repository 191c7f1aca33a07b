"""The GPU paths of fit and the data pipeline. Skipped where there is no CUDA device (CI); run on a GPU."""

import math

import pytest
import torch

from course_lib import augment, digits, imagenette, loader, models, train

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")


def test_fit_on_cuda_uses_channels_last_and_autocast_only_for_large_networks():
    x, y = digits.mnist_sample("train")
    xt, yt = digits.mnist_sample("test")
    model = models.LeNet1()
    history = train.fit(model, (x, y), (xt, yt), epochs=3, progress=False, device="cuda")
    assert next(model.parameters()).device.type == "cuda"
    during = []     # LeNet-5's conv2 (16 x 6 x 5 x 5) tells the layouts apart: channels-last while training
    lenet5 = models.LeNet5()
    train.fit(lenet5, (x[:512], y[:512]), epochs=1, progress=False, device="cuda",
              on_epoch_end=lambda m, epoch, h, *, last: during.append(
                  m.conv2.weight.is_contiguous(memory_format=torch.channels_last)))
    assert during == [True, True] and lenet5.conv2.weight.is_contiguous()   # and the usual layout after
    assert history.last["val_accuracy"] > 0.85
    assert train._autocast_dtype(torch.device("cuda"), model) is None           # 2,578 weights: no autocast
    assert train._autocast_dtype(torch.device("cuda"), models.AlexNet()) in (torch.bfloat16, torch.float16)


def test_alexnet_steps_on_cuda_with_augmentation_on_device():
    root = imagenette.offline_folder()
    split = imagenette.load_split("train", root=root, download=False, resolution=96, progress=False)
    batch_loader = loader.TensorLoader(split.images, split.labels, 32, shuffle=True, device="cuda",
                                       augment=augment.crop_flip(84), channels_last=True)
    assert batch_loader.images.device.type == "cuda" and batch_loader.images.dtype == torch.uint8
    xb, yb = next(iter(batch_loader))
    assert xb.device.type == "cuda" and xb.dtype == torch.float32 and xb.shape == (32, 3, 84, 84)
    model = models.AlexNet(num_classes=10)
    history = train.fit(model, (split.images, split.labels), epochs=2, lr=0.03, batch_size=32, progress=False,
                        device="cuda", augment=augment.crop_flip(84), label_smoothing=0.1)
    assert all(math.isfinite(row["train_loss"]) for row in history.epochs)


def test_fit_with_compile():
    x, y = digits.mnist_sample("train")
    xt, yt = digits.mnist_sample("test")
    history = train.fit(models.LeNet1(), (x, y), (xt, yt), epochs=3, progress=False, device="cuda", compile=True)
    assert history.last["val_accuracy"] > 0.85


def test_checkpoint_written_on_gpu_loads_on_cpu(tmp_path):
    x, y = digits.mnist_sample("train")
    ckpt = tmp_path / "gpu.pt"
    train.fit(models.LeNet1(), (x, y), epochs=1, progress=False, device="cuda", checkpoint=ckpt)
    state = train.load_checkpoint(ckpt)
    assert state["model"]["conv1.weight"].device.type == "cpu"


def test_widgets_and_measurements_on_a_model_on_the_gpu():
    """The device tests of tests/test_devices.py with a real GPU: each call must run through."""
    from test_devices import CALLS
    for call in CALLS.values():
        call(models.LeNet1().to("cuda").eval())
