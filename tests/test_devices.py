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

CALLS = {
    "ReceptiveFieldExplorer": lambda m: ReceptiveFieldExplorer(m, X[0]),
    "OcclusionExplorer": lambda m: OcclusionExplorer(m, X[:4]),
    "DigitCanvas": lambda m: DigitCanvas(m),
    "FilterExplorer": lambda m: FilterExplorer(m),
    "measure.record": lambda m: measure.record(m, X[:4]),
    "receptive_fields.measured_field": lambda m: receptive_fields.measured_field(m, "conv2", torch.randn(2, 1, 28, 28), 2, 2),
    "attribution.saliency": lambda m: A.saliency(m, loader.normalize(X[:2]), 1),
    "attribution.guided_backprop": lambda m: A.guided_backprop(m, loader.normalize(X[:2]), 1),
    "attribution.grad_cam": lambda m: A.grad_cam(m, loader.normalize(X[:2]), 1, "act2"),
    "attribution.occlusion": lambda m: A.occlusion(m, loader.normalize(X[:2]), 1, 6, 2),
}


@pytest.mark.parametrize("name", sorted(CALLS))
def test_inputs_go_to_the_models_device(name):
    model = models.LeNet1().to("meta")
    try:
        CALLS[name](model)
    except NotImplementedError as err:
        assert "meta" in str(err), err            # got as far as reading numbers back: on the right device
    except RuntimeError as err:
        pytest.fail(f"{name} left a tensor on another device than the model's: {err}")


def test_measuring_leaves_no_gradient_on_the_callers_model():
    model = models.LeNet1()
    receptive_fields.measured_field(model, "conv2", torch.randn(2, 1, 28, 28), 2, 2)
    explorer = ReceptiveFieldExplorer(model, X[0])
    for row in range(3):
        explorer.row.value = row
    A.saliency(model, loader.normalize(X[:2]), 1)
    assert all(p.grad is None for p in model.parameters())
