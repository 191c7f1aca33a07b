"""The lessons as a student meets them.

* Each student notebook, run top to bottom, fails first at its first exercise, with
  NotImplementedError, and nowhere earlier.
* Each exercise's check cell rejects a plausible wrong answer with a helpful message.
"""

import os

import nbformat
import pytest
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError

from course_lib import assign

ROOT = assign.ROOT
pytestmark = pytest.mark.slow

# notebook -> [(name defined by the exercise cell, wrong implementation, text the check must print)]
WRONG = {
    "01_images_and_convolution": [
        ("conv2d_single", """
def conv2d_single(image, kernel):   # a true convolution: flips the kernel
    import scipy.signal
    return scipy.signal.convolve2d(image, kernel, mode="valid")
""", "expected"),
        ("conv2d_loops", """
def conv2d_loops(x, weight, bias, stride=1, padding=0):   # forgets the bias
    return F.conv2d(torch.as_tensor(np.asarray(x))[None], torch.as_tensor(np.asarray(weight)),
                    stride=stride, padding=padding)[0].numpy()
""", "at position"),
        ("conv2d_loops", """
def conv2d_loops(x, weight, bias, stride=1, padding=0):   # ignores the stride
    x, w, b = (torch.as_tensor(np.asarray(a)) for a in (x, weight, bias))
    return F.conv2d(x[None], w, b, padding=padding)[0].numpy()
""", "expected shape"),
        ("conv2d_vectorized", """
def conv2d_vectorized(x, weight, bias, stride=1, padding=0):   # sums over channels too late
    x, w, b = (torch.as_tensor(np.asarray(a), dtype=torch.float64) for a in (x, weight, bias))
    return F.conv2d(x[None, :1], w[:, :1], b, stride=stride, padding=padding)[0]
""", "at position"),
        ("output_size", """
def output_size(n, k, s=1, p=0):   # forgets the padding
    return (n - k) // s + 1
""", "output_size(32, 5, 1, 2) returned 28"),
        ("pool2d", """
def pool2d(x, k, s, mode="max"):   # windows that never overlap: moves by k, not s
    return F.max_pool2d(x, k, k) if mode == "max" else F.avg_pool2d(x, k, k)
""", "has shape"),
        ("pool2d", """
def pool2d(x, k, s, mode="max"):   # always the maximum
    return F.max_pool2d(x, k, s)
""", "differs from F.avg_pool2d"),
    ],
    "02_lenet1_digits": [
        ("dense_kernel", """
def dense_kernel(kernels, table, in_maps):   # every output map gets the first kernels, in order
    k = kernels.shape[-1]
    dense = kernels.new_zeros(len(table), in_maps, k, k)
    for o, inputs in enumerate(table):
        for j, m in enumerate(inputs):
            dense[o, m] = kernels[j]
    return dense
""", "in table order"),
        ("dense_kernel", """
def dense_kernel(kernels, table, in_maps):   # a full connection: every kernel everywhere
    k = kernels.shape[-1]
    return kernels.mean(0).expand(len(table), in_maps, k, k).clone()
""", "in table order"),
        ("MyLeNet1", """
class MyLeNet1(nn.Module):   # the simplification: conv2 connected to all 4 maps
    def __init__(self):
        super().__init__()
        self.frame, self.conv1 = models.DigitFrame(), nn.Conv2d(1, 4, 5)
        self.pool1, self.pool2 = models.Subsample(4), models.Subsample(12)
        self.conv2 = nn.Conv2d(4, 12, 5)
        self.fc = nn.Linear(192, 10)
    def forward(self, x):
        x = self.pool1(torch.tanh(self.conv1(self.frame(x))))
        return self.fc(self.pool2(torch.tanh(self.conv2(x))).flatten(1))
""", "2,578 parameters"),
        ("MyLeNet1", """
class MyLeNet1(nn.Module):   # forgets to shrink the digit to 16x16 first
    def __init__(self):
        super().__init__()
        self.frame, self.conv1 = nn.Identity(), nn.Conv2d(1, 4, 5)
        self.pool1, self.pool2 = models.Subsample(4), models.Subsample(12)
        self.conv2_kernels = nn.Parameter(torch.randn(20, 5, 5))
        self.conv2_bias = nn.Parameter(torch.zeros(12))
        self.fc = nn.Linear(192, 10)
    def forward(self, x):
        x = self.pool1(torch.tanh(self.conv1(self.frame(x))))
        x = F.conv2d(x, dense_kernel(self.conv2_kernels, models.LENET1_TABLE, 4), self.conv2_bias)
        return self.fc(self.pool2(torch.tanh(x)).flatten(1))
""", "different outputs"),
        ("receptive_fields", """
def receptive_fields(layers):   # forgets that deeper kernels step over strided units
    size, stride, fields = 1, 1, {}
    for name, k, s in layers:
        size += k - 1
        stride *= s
        fields[name] = (size, stride)
    return fields
""", "conv2: receptive_fields says (size, stride) = (10, 2), expected (14, 2)"),
        ("worst_mistakes", """
def worst_mistakes(logits, labels, k):   # most confident overall, right or wrong
    return logits.softmax(1).max(1).values.argsort(descending=True)[:k]
""", "Expected [0, 2]"),
    ],
    "04_alexnet_imagenet_subsets": [
        ("alexnet_sizes", """
def alexnet_sizes(streams=2, num_classes=1000):   # conv1 without padding
    convs = [(3, 96, 11, 4, 0, 1), (96, 256, 5, 1, 2, streams), (256, 384, 3, 1, 1, 1),
             (384, 384, 3, 1, 1, streams), (384, 256, 3, 1, 1, streams)]
    return convs, [(256 * 6 * 6, 4096), (4096, 4096), (4096, num_classes)]
""", "after conv1: expected (96, 27, 27), got (96, 26, 26)"),
        ("alexnet_sizes", """
def alexnet_sizes(streams=2, num_classes=1000):   # forgets the two streams
    convs = [(3, 96, 11, 4, 2, 1), (96, 256, 5, 1, 2, 1), (256, 384, 3, 1, 1, 1),
             (384, 384, 3, 1, 1, 1), (384, 256, 3, 1, 1, 1)]
    return convs, [(256 * 6 * 6, 4096), (4096, 4096), (4096, num_classes)]
""", "look at the groups"),
    ],
    "05_what_alexnet_learned": [
        ("my_color_score", """
def my_color_score(w):   # subtracts the mean over positions instead of over the 3 channels
    color = w - w.mean((2, 3), keepdim=True)
    return color.pow(2).sum((1, 2, 3)) / w.pow(2).sum((1, 2, 3))
""", "same pattern in R, G and B scores 0"),
        ("my_frequency", """
def my_frequency(w):   # weights by the amplitude |F|, not the power |F|^2
    amp = torch.fft.fft2(w.float(), s=(32, 32)).abs().sum(1)
    f = torch.fft.fftfreq(32)
    radius = (f[:, None] ** 2 + f[None, :] ** 2).sqrt()
    return (amp * radius).sum((1, 2)) / amp.sum((1, 2))
""", "differ from measure.filter_frequency"),
        ("my_resemblance", """
def my_resemblance(maps, picture, shuffles=20):   # no chance correction
    return measure.best_correlation(maps, picture)
""", "corrected value should be near 0"),
        ("my_top_patches", """
def my_top_patches(acts, images, channel, k, field):   # forgets the offset (the padding)
    size, stride, offset = field
    a = acts[:, channel]
    h, w = a.shape[-2:]
    padded = F.pad(images, (size, size, size, size))
    out = []
    for i in a.flatten().topk(k).indices.tolist():
        n, row, col = i // (h * w), i % (h * w) // w, i % w
        out.append(padded[n, :, size + row * stride:size + row * stride + size, size + col * stride:size + col * stride + size])
    return torch.stack(out)
""", "its field starts at row"),
    ],
    "06_what_made_it_decide": [
        ("my_occlusion", """
def my_occlusion(model, images, target, window, stride):   # sums the drops instead of averaging them
    with torch.no_grad():
        base = model(images).softmax(1)[:, target]
        n, _, h, w = images.shape
        total = torch.zeros(n, h, w)
        for top in range(0, h - window + 1, stride):
            for left in range(0, w - window + 1, stride):
                hidden = images.clone()
                hidden[:, :, top:top + window, left:left + window] = 0.0
                total[:, top:top + window, left:left + window] += (base - model(hidden).softmax(1)[:, target])[:, None, None]
        return total
""", "Average the drops"),
        ("my_occlusion", """
def my_occlusion(model, images, target, window, stride):   # the drop of the logit, not the probability
    with torch.no_grad():
        base = model(images)[:, target]
        n, _, h, w = images.shape
        total, count = torch.zeros(n, h, w), torch.zeros(h, w)
        for top in range(0, h - window + 1, stride):
            for left in range(0, w - window + 1, stride):
                hidden = images.clone()
                hidden[:, :, top:top + window, left:left + window] = 0.0
                total[:, top:top + window, left:left + window] += (base - model(hidden)[:, target])[:, None, None]
                count[top:top + window, left:left + window] += 1
        return total / count
""", "differs from captum"),
        ("my_saliency", """
def my_saliency(model, images, target):   # the gradient of the probability, not of the class score
    x = images.clone().requires_grad_(True)
    model(x).softmax(1)[torch.arange(len(x)), target].sum().backward()
    return x.grad.abs().amax(1)
""", "Differs from captum"),
        ("my_saliency", """
def my_saliency(model, images, target):   # keeps the sign
    x = images.clone().requires_grad_(True)
    model(x)[torch.arange(len(x)), target].sum().backward()
    return x.grad.amax(1)
""", "Differs from captum"),
    ],
    "07_many_gpus": [
        ("my_shard", """
def my_shard(batch, rank, world):   # contiguous pieces: the shares depend on how many processes there are
    return batch.chunk(world)[rank]
""", "process r must take positions"),
        ("my_shard", """
def my_shard(batch, rank, world):   # every process takes the whole batch
    return batch
""", "process r must take positions"),
    ],
    "03_training_dynamics": [
        ("my_sparsity", """
def my_sparsity(acts):   # counts the zeros instead of their share
    return float((acts == 0).sum())
""", "expected 0.75"),
        ("my_sparsity", """
def my_sparsity(acts):   # share of non-zero entries: density, not sparsity
    return (acts != 0).float().mean().item()
""", "expected 0.75"),
        ("find_dead", """
def find_dead(acts):   # dead on the first image only
    return [int(c) for c in (acts[0].abs().amax(dim=(1, 2)) == 0).nonzero().flatten()]
""", "Channel 1 fires on the second image"),
        ("find_dead", """
def find_dead(acts):   # channels that are *mostly* zero
    return [int(c) for c in ((acts == 0).float().mean(dim=(0, 2, 3)) > 0.5).nonzero().flatten()]
""", "Filters 2, 5 and 11 were killed"),
    ],
}


def _defines(cell, name):
    return cell.cell_type == "code" and (f"def {name}(" in cell.source or f"class {name}(" in cell.source)


def _client(nb):
    os.environ["COURSE_PROFILE"] = "smoke"
    os.environ["MPLBACKEND"] = "agg"
    return NotebookClient(nb, timeout=600, kernel_name="python3",
                          resources={"metadata": {"path": str(ROOT / "notebooks")}})


@pytest.mark.parametrize("path", assign.lessons(ROOT / "student"), ids=lambda p: p.stem)
def test_student_notebook_fails_first_at_first_exercise(path):
    nb = nbformat.read(path, 4)
    exercises = [i for i, c in enumerate(nb.cells) if "raise NotImplementedError()" in c.source]
    try:
        _client(nb).execute()
    except CellExecutionError as err:
        assert exercises, f"{path.name} has no exercise but failed: {err}"
        assert err.ename == "NotImplementedError", f"{path.name} failed with {err.ename} before any exercise"
        failed = next(i for i, c in enumerate(nb.cells) if c.cell_type == "code" and any(
            o.get("output_type") == "error" for o in c.get("outputs", [])))
        # A stubbed function raises when it is called: in the exercise cell or in its check cell.
        check = next(i for i in range(exercises[0], len(nb.cells)) if assign.is_check(nb.cells[i]))
        assert failed in (exercises[0], check), \
            f"{path.name} failed at cell {failed}, not at its first exercise (cell {exercises[0]})"
        assert "NotImplementedError" in str(err)
    else:
        assert not exercises, f"{path.name} has exercises but ran without NotImplementedError"


@pytest.mark.parametrize("stem", sorted(WRONG))
def test_check_cells_reject_wrong_answers(stem):
    nb = nbformat.read(ROOT / "notebooks" / f"{stem}.ipynb", 4)
    cases = WRONG[stem]
    client = _client(nb)
    tried = 0
    with client.setup_kernel():
        for index, cell in enumerate(nb.cells):
            for name, wrong, message in cases:
                if not _defines(cell, name):
                    continue
                check_index = next(i for i in range(index + 1, len(nb.cells)) if assign.is_check(nb.cells[i]))
                client.execute_cell(nbformat.v4.new_code_cell("import torch.nn.functional as F\n" + wrong), index)
                with pytest.raises(CellExecutionError) as err:
                    client.execute_cell(nbformat.from_dict(dict(nb.cells[check_index])), check_index)
                assert err.value.ename == "AssertionError", f"{name}: {err.value}"
                assert message in str(err.value), f"{name}: the check said {err.value.evalue!r}"
                tried += 1
            if tried == len(cases):
                break       # every wrong answer was tried: the rest of the lesson has no exercise to check
            if cell.cell_type == "code":
                client.execute_cell(cell, index)
    assert tried == len(cases)
