"""Widgets and measurements follow the model to its device, and leave no gradients behind.

A learner's network often lives on a GPU (``fit`` leaves it there); the images they pass live on the
CPU. Without a GPU here, the model goes to PyTorch's ``meta`` device instead: a tensor left on the CPU
then fails with a device mismatch ("... is not on the expected device ..."), while code that moved
everything to the model's device gets as far as reading numbers back, which a meta tensor cannot do
("Cannot copy out of meta tensor"). ``tests/test_cuda.py`` runs the same on a real GPU when there is one.
"""

import pytest
import torch

from course_lib import attribution as A
from course_lib import digits, loader, measure, models, receptive_fields
from course_lib.widgets import FilterExplorer
from course_lib.widgets import DigitCanvas, OcclusionExplorer, ReceptiveFieldExplorer

X = digits.mnist_sample("test")[0]

def _drawn(canvas: DigitCanvas) -> DigitCanvas:
    canvas.stroke([(140, 60), (140, 220)])       # a "1": the canvas reads it with the network
    return canvas


CALLS = {
    "ReceptiveFieldExplorer": lambda m: ReceptiveFieldExplorer(m, X[0]),
    "OcclusionExplorer": lambda m: OcclusionExplorer(m, X[:4]),
    "DigitCanvas": lambda m: _drawn(DigitCanvas(m)).probabilities(),
    "FilterExplorer": lambda m: FilterExplorer(m),
    "measure.record": lambda m: measure.record(m, X[:4]),
    "receptive_fields.measured_field":
        lambda m: receptive_fields.measured_field(m, "conv2", torch.randn(2, 1, 28, 28), 2, 2),
    "attribution.saliency": lambda m: A.saliency(m, loader.normalize(X[:2]), 1),
    "attribution.guided_backprop": lambda m: A.guided_backprop(m, loader.normalize(X[:2]), 1),
    "attribution.grad_cam": lambda m: A.grad_cam(m, loader.normalize(X[:2]), 1, "act2"),
    "attribution.occlusion": lambda m: A.occlusion(m, loader.normalize(X[:2]), 1, 6, 2),
}


def _tensors(result) -> list[torch.Tensor]:
    """Every tensor in a call's result: itself, or inside a tuple, list or dict (a widget holds none)."""
    if torch.is_tensor(result):
        return [result]
    if isinstance(result, dict):
        return [t for v in result.values() for t in _tensors(v)]
    if isinstance(result, (tuple, list)):
        return [t for v in result for t in _tensors(v)]
    return []


def check_on_device(name: str, call, device: str = "meta") -> None:
    """``call`` on a LeNet-1 moved to ``device`` either reads numbers back (torch's meta error: it got that far
    on the right device), or returns what it returns on the CPU: the same tensors' shapes, each on ``device``.
    A call that returns on ``device`` with no tensor at all (a widget that swallowed an error) fails."""
    torch.manual_seed(0)
    on_cpu = _tensors(call(models.LeNet1()))
    assert all(t.device.type == "cpu" and (not t.is_floating_point() or torch.isfinite(t).all()) for t in on_cpu), name
    try:
        result = call(models.LeNet1().to(device))
    except NotImplementedError as err:
        assert "meta" in str(err), err            # got as far as reading numbers back: on the right device
        return
    except RuntimeError as err:
        pytest.fail(f"{name} left a tensor on another device than the model's: {err}")
    there = _tensors(result)
    assert there, f"{name} returned on the {device} device without any result from the model"
    assert [tuple(t.shape) for t in there] == [tuple(t.shape) for t in on_cpu], name
    assert all(t.device.type == device for t in there), f"{name} returned tensors off the model's device"


@pytest.mark.parametrize("name", sorted(CALLS))
def test_inputs_go_to_the_models_device(name):
    check_on_device(name, CALLS[name])


def test_the_device_check_fails_on_a_call_that_returns_nothing_from_the_model():
    """The check above used to pass whenever a call returned: a call that catches the error passed."""
    def swallows(model):
        try:
            return model(X[:2].float())
        except (RuntimeError, NotImplementedError):
            return None
    with pytest.raises(AssertionError, match="without any result"):
        check_on_device("swallows", swallows)
    with pytest.raises(AssertionError, match="off the model's device"):
        check_on_device("to the cpu", lambda m: torch.zeros(2, 10) if next(m.parameters()).is_meta else m(
            loader.normalize(X[:2])))


def test_measuring_leaves_no_gradient_on_the_callers_model():
    model = models.LeNet1()
    receptive_fields.measured_field(model, "conv2", torch.randn(2, 1, 28, 28), 2, 2)
    explorer = ReceptiveFieldExplorer(model, X[0])
    for row in range(3):
        explorer.row.value = row
    A.saliency(model, loader.normalize(X[:2]), 1)
    assert all(p.grad is None for p in model.parameters())
