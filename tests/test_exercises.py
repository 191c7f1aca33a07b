"""Each exercise's check cell rejects plausible wrong answers with a helpful message: the table of them, tried
in nbval's run of each lesson's solution (tests/exercise_misses.py). tests/test_student_notebooks.py runs the
student versions."""

import importlib.util
import os
import re
import subprocess
import sys

import nbformat
import pytest

from course_lib.instructor import course, notebooks

import exercise_misses

ROOT = course.ROOT
pytestmark = pytest.mark.slow

# notebook -> [(name defined by the exercise cell, wrong implementation, text the check must print)]
WRONG = {
    "00_welcome": [
        ("predicted_numbers", """
predicted_numbers = 224 * 224   # forgets the three colours
""", "the numbers in one 224 x 224 colour photo"),
        ("predicted_numbers", """
predicted_numbers = 3 * 224   # one row only
""", "the numbers in one 224 x 224 colour photo"),
    ],
    "01_images_and_convolution": [
        ("conv2d_single", """
def conv2d_single(image, kernel):   # one pixel short: the last row and column of positions are missing
    image, kernel = np.asarray(image, dtype=np.float64), np.asarray(kernel, dtype=np.float64)
    k = kernel.shape[0]
    return np.array([[(image[i:i + k, j:j + k] * kernel).sum() for j in range(image.shape[1] - k)]
                     for i in range(image.shape[0] - k)])
""", "expected an array or tensor of shape (7, 9), got shape (6, 8)"),
        ("conv2d_vectorized", """
def conv2d_vectorized(x, weight, bias, stride=1, padding=0):   # forgets the bias
    x, w = (torch.as_tensor(np.asarray(a), dtype=torch.float64) for a in (x, weight))
    n, _, k, _ = w.shape
    columns = F.unfold(x[None], k, padding=padding, stride=stride)[0]
    return (w.reshape(n, -1) @ columns).reshape(n, (x.shape[1] + 2 * padding - k) // stride + 1, -1)
""", "at position"),
        ("output_size", """
def output_size(n, k, s=1, p=0):   # rounds up instead of down
    return -(-(n + 2 * p - k) // s) + 1
""", "but conv2d gives"),
        ("conv2d_single", """
def conv2d_single(image, kernel):   # a true convolution: flips the kernel
    import scipy.signal
    return scipy.signal.convolve2d(image, kernel, mode="valid")
""", "expected"),
        ("conv2d_loops", """
def conv2d_loops(x, weight, bias, stride=1, padding=0):   # forgets the bias
    x, weight = np.asarray(x, dtype=np.float64), np.asarray(weight, dtype=np.float64)
    x = np.pad(x, ((0, 0), (padding, padding), (padding, padding)))
    f, _, k, _ = weight.shape
    rows, cols = (x.shape[1] - k) // stride + 1, (x.shape[2] - k) // stride + 1
    out = np.zeros((f, rows, cols))
    for o in range(f):
        for i in range(rows):
            for j in range(cols):
                out[o, i, j] = (x[:, i * stride:i * stride + k, j * stride:j * stride + k] * weight[o]).sum()
    return out
""", "expected -5.58636 at position (3, 7, 9)"),
        ("conv2d_loops", """
def conv2d_loops(x, weight, bias, stride=1, padding=0):   # ignores the stride
    x, weight = np.asarray(x, dtype=np.float64), np.asarray(weight, dtype=np.float64)
    x = np.pad(x, ((0, 0), (padding, padding), (padding, padding)))
    f, _, k, _ = weight.shape
    rows, cols = x.shape[1] - k + 1, x.shape[2] - k + 1
    out = np.zeros((f, rows, cols))
    for o in range(f):
        for i in range(rows):
            for j in range(cols):
                out[o, i, j] = (x[:, i:i + k, j:j + k] * weight[o]).sum() + np.asarray(bias)[o]
    return out
""", "expected an array or tensor of shape (4, 4, 5), got shape (4, 8, 10)"),
        ("conv2d_vectorized", """
def conv2d_vectorized(x, weight, bias, stride=1, padding=0):   # keeps only the first input channel
    x, w, b = (torch.as_tensor(np.asarray(a), dtype=torch.float64) for a in (x, weight, bias))
    n, _, k, _ = w.shape
    columns = F.unfold(x[None, :1], k, padding=padding, stride=stride)[0]
    side = (x.shape[1] + 2 * padding - k) // stride + 1
    return (w[:, :1].reshape(n, -1) @ columns + b[:, None]).reshape(n, side, -1)
""", "vectorized, stride=1, padding=0: expected 15.7666"),
        ("predicted_multiplications", """
predicted_multiplications = 10 * 5 * 5 * 300 * 451   # forgets that each filter is 3 channels deep
""", "multiplications of 10 filters"),
        ("predicted_multiplications", """
predicted_multiplications = 10 * 3 * 5 * 5   # one position only
""", "multiplications of 10 filters"),
        ("output_size", """
def output_size(n, k, s=1, p=0):   # forgets the padding
    return (n - k) // s + 1
""", "output_size(32, 5, 1, 2) returned 28"),
        ("pool2d", """
def pool2d(x, k, s, mode="max"):   # windows that never overlap: moves by k, not s
    x = torch.as_tensor(x)
    rows, cols = (x.shape[2] - k) // k + 1, (x.shape[3] - k) // k + 1
    out = x.new_zeros(x.shape[0], x.shape[1], rows, cols)
    for i in range(rows):
        for j in range(cols):
            window = x[:, :, i * k:i * k + k, j * k:j * k + k]
            out[:, :, i, j] = window.amax((2, 3)) if mode == "max" else window.mean((2, 3))
    return out
""", "has shape (2, 3, 4, 3), expected (2, 3, 6, 5)"),
        ("pool2d", """
def pool2d(x, k, s, mode="max"):   # always the maximum
    x = torch.as_tensor(x)
    rows, cols = (x.shape[2] - k) // s + 1, (x.shape[3] - k) // s + 1
    out = x.new_zeros(x.shape[0], x.shape[1], rows, cols)
    for i in range(rows):
        for j in range(cols):
            out[:, :, i, j] = x[:, :, i * s:i * s + k, j * s:j * s + k].amax((2, 3))
    return out
""", "pool2d(x, 2, 2, 'avg') differs from F.avg_pool2d"),
        ("conv2d_backward", """
def conv2d_backward(x, weight, grad_out, padding=0):   # the input's gradient with the filter unturned
    x, weight, grad_out = (torch.as_tensor(np.asarray(a), dtype=torch.float64) for a in (x, weight, grad_out))
    k = weight.shape[-1]
    grad_weight = F.conv2d(F.pad(x, (padding,) * 4)[:, None], grad_out[:, None]).transpose(0, 1)
    grad_x = F.conv2d(F.pad(grad_out, (k - 1 - padding,) * 4)[None], weight.transpose(0, 1))[0]
    return grad_x, grad_weight, grad_out.sum((1, 2))
""", "turn it by 180 degrees"),
        ("conv2d_backward", """
def conv2d_backward(x, weight, grad_out, padding=0):   # the full convolution's k - 1, without taking off the padding
    x, weight, grad_out = (torch.as_tensor(np.asarray(a), dtype=torch.float64) for a in (x, weight, grad_out))
    k = weight.shape[-1]
    grad_weight = F.conv2d(F.pad(x, (padding,) * 4)[:, None], grad_out[:, None]).transpose(0, 1)
    grad_x = F.conv2d(F.pad(grad_out, (k - 1,) * 4)[None], weight.flip(-2, -1).transpose(0, 1))[0]
    return grad_x, grad_weight, grad_out.sum((1, 2))
""", "pad the output gradients by k - 1 - padding"),
        ("conv2d_backward", """
def conv2d_backward(x, weight, grad_out, padding=0):   # autograd does it
    x = torch.as_tensor(np.asarray(x), dtype=torch.float64).requires_grad_(True)
    w = torch.as_tensor(np.asarray(weight), dtype=torch.float64).requires_grad_(True)
    b = torch.zeros(len(w), dtype=torch.float64, requires_grad=True)
    F.conv2d(x[None], w, b, padding=padding)[0].backward(torch.as_tensor(grad_out))
    return x.grad, w.grad, b.grad
""", "write it yourself"),
        ("pool2d_backward", """
def pool2d_backward(x, grad_out, k, s, mode="max"):   # every value of a max window gets the gradient
    x, grad_out = torch.as_tensor(x, dtype=torch.float64), torch.as_tensor(grad_out, dtype=torch.float64)
    grad_x = torch.zeros_like(x)
    for i in range(grad_out.shape[-2]):
        for j in range(grad_out.shape[-1]):
            share = 1 if mode == "max" else 1 / (k * k)
            grad_x[:, :, i * s:i * s + k, j * s:j * s + k] += share * grad_out[:, :, i, j, None, None]
    return grad_x
""", "only the largest one was used"),
        ("pool2d_backward", """
def pool2d_backward(x, grad_out, k, s, mode="max"):   # the average's gradient not divided by k * k
    x, grad_out = torch.as_tensor(x, dtype=torch.float64), torch.as_tensor(grad_out, dtype=torch.float64)
    grad_x = torch.zeros_like(x)
    for i in range(grad_out.shape[-2]):
        for j in range(grad_out.shape[-1]):
            window = x[:, :, i * s:i * s + k, j * s:j * s + k]
            g = grad_out[:, :, i, j, None, None]
            if mode == "max":
                picked = F.one_hot(window.flatten(2).argmax(2), k * k).view_as(window)
                grad_x[:, :, i * s:i * s + k, j * s:j * s + k] += picked * g
            else:
                grad_x[:, :, i * s:i * s + k, j * s:j * s + k] += g
    return grad_x
""", "avg pooling, 2 x 2 windows moved by 2"),
    ],
    "02_lenet1_digits": [
        ("sgd_step", """
def sgd_step(model, velocities, lr, momentum=0.9, weight_decay=0.0):   # plain momentum, not Nesterov's
    with torch.no_grad():
        for name, w in model.named_parameters():
            d = w.grad + (weight_decay * w if w.dim() > 1 else 0)
            v = velocities[name] = d.clone() if name not in velocities else momentum * velocities[name] + d
            w -= lr * v
""", "Nesterov's step"),
        ("sgd_step", """
def sgd_step(model, velocities, lr, momentum=0.9, weight_decay=0.0):   # decays the biases too
    with torch.no_grad():
        for name, w in model.named_parameters():
            d = w.grad + weight_decay * w
            v = velocities[name] = d.clone() if name not in velocities else momentum * velocities[name] + d
            w -= lr * (d + momentum * v)
""", "decay the biases too"),
        ("sgd_step", """
def sgd_step(model, velocities, lr, momentum=0.9, weight_decay=0.0):   # no torch.no_grad(): autograd refuses
    for name, w in model.named_parameters():
        w -= lr * w.grad
""", "Your code raised RuntimeError"),
        ("predicted_faint_share", """
predicted_faint_share = 0.9   # "untrained maps are faint gray": nearly all of them
""", "faint (|a| < 0.1) conv2 values of an untrained LeNet-1"),
        ("predicted_faint_share", """
predicted_faint_share = 0.0   # "tanh saturates from the start"
""", "faint (|a| < 0.1) conv2 values of an untrained LeNet-1"),
        ("receptive_fields", """
def receptive_fields(layers):   # multiplies the stride before using it
    size, stride, fields = 1, 1, {}
    for name, k, s in layers:
        stride *= s
        size += (k - 1) * stride
        fields[name] = (size, stride)
    return fields
""", "receptive_fields says (size, stride)"),
        ("worst_mistakes", """
def worst_mistakes(logits, labels, k):   # the mistakes, but least confident first
    confidence, predicted = logits.softmax(1).max(1)
    wrong = (predicted != labels).nonzero().flatten()
    return wrong[confidence[wrong].argsort()][:k]
""", "Expected [2, 3]"),
        ("paired_change", """
def paired_change(errors, baseline):   # the difference of the means and of the spreads: not paired
    return float(np.mean(errors) - np.mean(baseline)), float(np.std(errors) - np.std(baseline))
""", "expected mean -0.002 and their std"),
        ("paired_change", """
def paired_change(errors, baseline):   # the wrong way round
    diff = np.asarray(baseline, dtype=float) - np.asarray(errors, dtype=float)
    return float(diff.mean()), float(diff.std())
""", "expected mean -0.002"),
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
""", "With k larger than the mistakes"),
        ("worst_mistakes", """
def worst_mistakes(logits, labels, k):   # the first k mistakes, in the images' order
    return (logits.argmax(1) != labels).nonzero().flatten()[:k]
""", "Expected [2, 3]"),
    ],
    "04_alexnet_imagenet_subsets": [
        ("predicted_fc_share", """
predicted_fc_share = 0.5   # "half and half"
""", "the share of AlexNet's parameters in fc6-fc8"),
        ("predicted_fc_share", """
predicted_fc_share = 0.1   # "the conv layers do the work, so they hold the weights"
""", "the share of AlexNet's parameters in fc6-fc8"),
        ("pool5_side", """
def pool5_side(size):   # poolings of 2 x 2 that do not overlap
    out = lambda n, k, s=1, p=0: (n + 2 * p - k) // s + 1
    n = out(out(out(size, 11, 4, 2), 2, 2), 5, 1, 2)
    n = out(out(n, 2, 2), 3, 1, 1)
    return out(out(out(n, 3, 1, 1), 3, 1, 1), 2, 2)
""", "pool5 is"),
        ("pool5_side", """
def pool5_side(size):   # forgets conv1's padding
    out = lambda n, k, s=1, p=0: (n + 2 * p - k) // s + 1
    n = out(out(out(size, 11, 4, 0), 3, 2), 5, 1, 2)
    n = out(out(n, 3, 2), 3, 1, 1)
    return out(out(out(n, 3, 1, 1), 3, 1, 1), 3, 2)
""", "pool5 is"),
        ("my_crop", """
def my_crop(batch, tops, lefts, flips, size):   # mirrors upside down instead of left-right
    return torch.stack([(img[:, int(t):int(t) + size, int(l):int(l) + size].flip(-2) if f else
                         img[:, int(t):int(t) + size, int(l):int(l) + size])
                        for img, t, l, f in zip(batch, tops, lefts, flips)])
""", "Image 1 is mirrored"),
        ("my_crop", """
def my_crop(batch, tops, lefts, flips, size):   # rows and columns swapped
    return torch.stack([(img[:, int(l):int(l) + size, int(t):int(t) + size].flip(-1) if f else
                         img[:, int(l):int(l) + size, int(t):int(t) + size])
                        for img, t, l, f in zip(batch, tops, lefts, flips)])
""", "the first row is 7, 8, 9"),
        ("beats_spread", """
def beats_spread(two, one):   # compares the means only: any difference "beats" the spread
    return float(np.mean(two)) != float(np.mean(one))
""", "should be False"),
        ("beats_spread", """
def beats_spread(two, one):   # no look at the signs, and one seed passes
    diff = np.asarray(two, dtype=float) - np.asarray(one, dtype=float)
    return bool(abs(diff.mean()) > 2 * diff.std())
""", "should be False"),
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
        ("predicted_field", """
predicted_field = 11   # conv1's filter only
""", "the side of a conv5 unit's receptive field"),
        ("predicted_field", """
predicted_field = 3 * 3 * 3 * 11   # multiplies the kernels instead of adding the widened windows
""", "the side of a conv5 unit's receptive field"),
        ("learned_split", """
def learned_split(trained, start):   # the learned part, but its gap itself, not the p-value
    return claims.stream_gap(measure.color_score(trained - start), 48)["gap"]
""", "expected p"),
        ("learned_split", """
def learned_split(trained, start):   # the halves of a shuffled order: no split can show
    learned = trained - start
    order = torch.randperm(96, generator=torch.Generator().manual_seed(0))
    return claims.stream_gap(measure.color_score(learned)[order], 48)["p"]
""", "expected p < 0.01"),
        ("my_color_score", """
def my_color_score(w):   # the share of the gray part, not of the colour part
    gray = w.mean(1, keepdim=True).expand_as(w)
    return gray.pow(2).sum((1, 2, 3)) / w.pow(2).sum((1, 2, 3))
""", "same pattern in R, G and B scores 0"),
        ("my_frequency", """
def my_frequency(w):   # no zero-padding: a coarse frequency grid
    power = torch.fft.fft2(w.float()).abs().pow(2).sum(1)
    f = torch.fft.fftfreq(w.shape[-1])
    radius = (f[:, None] ** 2 + f[None, :] ** 2).sqrt()
    return (power * radius).sum((1, 2)) / power.sum((1, 2))
""", "differ from measure.filter_frequency"),
        ("my_resemblance", """
def my_resemblance(maps, picture, shuffles=20):   # a fixed chance level instead of the measured one
    return measure.best_correlation(maps, picture) - 0.5
""", "resemble it far above chance"),
        ("my_top_patches", """
def my_top_patches(acts, images, channel, k, field):   # the weakest units instead of the strongest
    size, stride, offset = field
    a = acts[:, channel]
    h, w = a.shape[-2:]
    padded = F.pad(images, (size, size, size, size))
    out = []
    for i in (-a.flatten()).topk(k).indices.tolist():
        n, row, col = i // (h * w), i % (h * w) // w, i % w
        top, left = size + offset + row * stride, size + offset + col * stride
        out.append(padded[n, :, top:top + size, left:left + size])
    return torch.stack(out)
""", "The strongest unit is image 1"),
        ("my_stream_gap", """
def my_stream_gap(values, first, permutations=2000, seed=0):   # shuffles only the first half: splits stay the same
    v = torch.as_tensor(values, dtype=torch.float64)
    observed = (v[:first].mean() - v[first:].mean()).abs()
    gen = torch.Generator().manual_seed(seed)
    gaps = torch.stack([(v[:first][torch.randperm(first, generator=gen)].mean() - v[first:].mean()).abs()
                        for _ in range(permutations)])
    return float((gaps >= observed - 1e-12).double().mean())
""", "expected p < 0.01"),
        ("my_stream_gap", """
def my_stream_gap(values, first, permutations=2000, seed=0):   # returns the gap itself, not how often chance reaches it
    v = torch.as_tensor(values, dtype=torch.float64)
    return float((v[:first].mean() - v[first:].mean()).abs())
""", "expected p < 0.01"),
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
""", "Weight the radial frequency by the power"),
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
        top, left = size + row * stride, size + col * stride
        out.append(padded[n, :, top:top + size, left:left + size])
    return torch.stack(out)
""", "its field starts at row"),
    ],
    "06_what_made_it_decide": [
        ("predicted_occlusion_images", """
predicted_occlusion_images = 12 * 12 + 1   # counts the unoccluded digit as a copy
""", "occluded copies LeNet-1 reads"),
        ("predicted_occlusion_images", """
predicted_occlusion_images = 23 * 23   # every position, as with a stride of 1
""", "occluded copies LeNet-1 reads"),
        ("my_mass_on_ink", """
def my_mass_on_ink(maps, digits):   # signed values: a negative attribution cancels a positive one
    ink = digits[:, 0] > 0
    return (maps * ink).flatten(1).sum(1) / maps.flatten(1).sum(1)
""", "Image 0 has 3 of its 4 units"),
        ("my_mass_on_ink", """
def my_mass_on_ink(maps, digits):   # the share of the ink's pixels, not of the map's mass
    return (digits[:, 0] > 0).float().flatten(1).mean(1)
""", "Image 0 has 3 of its 4 units"),
        ("whole_and_visible", """
def whole_and_visible(a, b):   # forgets the mask: the whole frame twice
    r = attribution.rank_correlation(a, b).mean().item()
    return r, r
""", "expected about -1 over the visible pixels"),
        ("whole_and_visible", """
def whole_and_visible(a, b):   # a 20 x 20 box in the corner, not the middle one LeNet-1 reads
    corner = torch.zeros(28, 28, dtype=torch.bool)
    corner[:20, :20] = True
    return (attribution.rank_correlation(a, b).mean().item(),
            attribution.rank_correlation(a, b, corner).mean().item())
""", "expected about -1 over the visible pixels"),
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
                drop = base - model(hidden).softmax(1)[:, target]
                total[:, top:top + window, left:left + window] += drop[:, None, None]
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
        ("predicted_repeat_gap", """
predicted_repeat_gap = 1e-5   # as far apart as 1 and 2 processes
""", "two runs with the same seed"),
        ("predicted_repeat_gap", """
predicted_repeat_gap = 1e-7   # float32's rounding, as if it were random
""", "two runs with the same seed"),
        ("training_memory_gb", """
def training_memory_gb(parameters, outputs_per_image, batch):   # forgets the velocity (momentum)
    return (2 * parameters + 2 * outputs_per_image * batch) * 4 / 1e9
""", "need 0.02 GB"),
        ("training_memory_gb", """
def training_memory_gb(parameters, outputs_per_image, batch):   # forgets the outputs' gradients
    return (3 * parameters + outputs_per_image * batch) * 4 / 1e9
""", "need 0.02 GB"),
        ("same_weights", """
def same_weights(a, b, tol=1e-4):   # looks at the first tensor only
    k = next(iter(a))
    return (a[k].float() - b[k].float()).abs().max().item() <= tol
""", "Only the last tensor differs"),
        ("same_weights", """
def same_weights(a, b, tol=1e-4):   # a tolerance so loose that another seed passes
    return all((a[k].float() - b[k].float()).abs().max().item() <= 1.0 for k in a)
""", "Only the last tensor differs (by 0.01)"),
        ("my_shard", """
def my_shard(batch, rank, world):   # contiguous pieces: the shares depend on how many processes there are
    return batch.chunk(world)[rank]
""", "process r must take positions"),
        ("my_shard", """
def my_shard(batch, rank, world):   # every process takes the whole batch
    return batch
""", "process r must take positions"),
    ],
    "08_what_a_unit_wants": [
        ("predicted_first_step", """
predicted_first_step = 0.1 * 0.03   # plain gradient ascent: the learning rate times the gradient
""", "the largest change of p"),
        ("predicted_first_step", """
predicted_first_step = 0.0   # nothing moves on the first step
""", "the largest change of p"),
        ("my_maximize", """
def my_maximize(model, layer, channel, steps=100, lr=0.1, seed=0):   # gradient descent: lowers the activation
    torch.manual_seed(seed)
    p = (0.5 * torch.randn(1, 1, 28, 28)).requires_grad_(True)
    optimizer, grabbed, curve = torch.optim.Adam([p], lr=lr), {}, []
    handle = model.get_submodule(layer).register_forward_hook(lambda m, i, o: grabbed.__setitem__("out", o))
    for _ in range(steps):
        model((torch.sigmoid(p) - 0.1307) / 0.3081)
        objective = grabbed["out"][:, channel].mean()
        optimizer.zero_grad(); objective.backward(); optimizer.step()
        curve.append(objective.item())
    handle.remove()
    return torch.sigmoid(p).detach()[0], curve
""", "The activation must rise"),
        ("my_maximize", """
def my_maximize(model, layer, channel, steps=100, lr=0.1, seed=0):   # pixels without the sigmoid: they leave [0, 1]
    torch.manual_seed(seed)
    p = (0.5 * torch.randn(1, 1, 28, 28)).requires_grad_(True)
    optimizer, grabbed, curve = torch.optim.Adam([p], lr=lr), {}, []
    handle = model.get_submodule(layer).register_forward_hook(lambda m, i, o: grabbed.__setitem__("out", o))
    for _ in range(steps):
        model((p - 0.1307) / 0.3081)
        objective = grabbed["out"][:, channel].mean()
        optimizer.zero_grad(); (-objective).backward(); optimizer.step()
        curve.append(objective.item())
    handle.remove()
    return p.detach()[0], curve
""", "in [0, 1]"),
        ("my_fgsm", """
def my_fgsm(model, images, labels, epsilon):   # the wrong sign: towards the true class
    x = images.clone().requires_grad_(True)
    (grad,) = torch.autograd.grad(F.cross_entropy(model((x - 0.1307) / 0.3081), labels), x)
    return (images - epsilon * grad.sign()).clamp(0, 1).detach()
""", "move each pixel by +epsilon"),
        ("my_fgsm", """
def my_fgsm(model, images, labels, epsilon):   # no clamp: not an image any more
    x = images.clone().requires_grad_(True)
    (grad,) = torch.autograd.grad(F.cross_entropy(model((x - 0.1307) / 0.3081), labels), x)
    return (images + epsilon * grad.sign()).detach()
""", "must stay images"),
        ("my_sign_noise", """
def my_sign_noise(images, epsilon, seed):   # uniform noise: most pixels move by less than epsilon
    gen = torch.Generator().manual_seed(seed)
    return (images + epsilon * (torch.rand(images.shape, generator=gen) * 2 - 1)).clamp(0, 1)
""", "must move by exactly epsilon"),
        ("my_sign_noise", """
def my_sign_noise(images, epsilon, seed):   # the same sign everywhere: a brighter image, not noise
    return (images + epsilon).clamp(0, 1)
""", "About half the pixels should move up"),
    ],
    "03_training_dynamics": [
        ("predicted_zero_share", """
predicted_zero_share = 0.0   # "untrained means dense"
""", "exactly-zero conv1 outputs of untrained ReLU networks"),
        ("predicted_zero_share", """
predicted_zero_share = 0.95   # "ReLU networks are sparse from the start"
""", "exactly-zero conv1 outputs of untrained ReLU networks"),
        ("untrained_pair", """
def untrained_pair(seed):   # the trained network against its untrained start: not a control
    return (runs[seed % len(runs)]["stats"][0]["act2"]["live_sparsity"],
            runs[seed % len(runs)]["stats"][-1]["act2"]["live_sparsity"])
def control_verdict(seeds):
    pairs = [untrained_pair(s) for s in seeds]
    return claims.check_rise([a for a, _ in pairs], [b for _, b in pairs])
""", "expected the live sparsity of two untrained networks"),
        ("untrained_pair", """
def untrained_pair(seed):   # the same network twice: a control that cannot differ
    acts = measure.record(claims.relu_lenet5(seed), probe, ["act2"])["act2"]
    return measure.live_sparsity(acts), measure.live_sparsity(acts)
def control_verdict(seeds):
    pairs = [untrained_pair(s) for s in seeds]
    return claims.check_rise([a for a, _ in pairs], [b for _, b in pairs])
""", "expected the live sparsity of two untrained networks"),
        ("my_smoothness", """
def my_smoothness(w):   # weights by the amplitude |F|, not the power |F|^2
    amp = torch.fft.fft2(w.float(), s=(32, 32)).abs().sum(1)
    f = torch.fft.fftfreq(32)
    low = ((f[:, None] ** 2 + f[None, :] ** 2).sqrt() <= 0.25).float()
    return (amp * low).sum((1, 2)) / amp.sum((1, 2))
""", "A Gaussian blob keeps nearly all its power"),
        ("my_smoothness", """
def my_smoothness(w):   # no zero-padding: a 5 x 5 frequency grid
    power = torch.fft.fft2(w.float()).abs().pow(2).sum(1)
    f = torch.fft.fftfreq(w.shape[-1])
    low = ((f[:, None] ** 2 + f[None, :] ** 2).sqrt() <= 0.25).float()
    return (power * low).sum((1, 2)) / power.sum((1, 2))
""", "you differ from measure.filter_smoothness"),
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
    "09_next_decade": [
        ("predicted_bn_parameters", """
predicted_bn_parameters = 0   # "batch norm only normalizes"
""", "parameters that batch norm adds"),
        ("predicted_bn_parameters", """
predicted_bn_parameters = sum(max(4, round(c * P.next_width)) for c in (96, 256, 384, 384, 256))   # only a scale
""", "parameters that batch norm adds"),
        ("stack_for", """
def stack_for(k, channels):   # one layer too many: counts k - 1 layers
    return k - 1, (k - 1) * 9 * channels * channels, k * k * channels * channels
""", "window, not 3 x 3"),
        ("stack_for", """
def stack_for(k, channels):   # forgets that every filter reads all the maps below
    n = (k - 1) // 2
    return n, n * 9 * channels, k * k * channels * channels
""", "weights, you said"),
        ("batch_norm", """
def batch_norm(x, gamma, beta, eps=1e-5):   # normalizes each image, not each channel over the batch
    mean = x.mean((1, 2, 3), keepdim=True)
    var = ((x - mean) ** 2).mean((1, 2, 3), keepdim=True)
    return (x - mean) / torch.sqrt(var + eps) * gamma[None, :, None, None] + beta[None, :, None, None]
""", "you normalized each image"),
        ("batch_norm", """
def batch_norm(x, gamma, beta, eps=1e-5):   # the unbiased variance
    mean = x.mean((0, 2, 3), keepdim=True)
    var = x.var((0, 2, 3), keepdim=True)
    return (x - mean) / torch.sqrt(var + eps) * gamma[None, :, None, None] + beta[None, :, None, None]
""", "count minus one"),
        ("one_cycle", """
def one_cycle(i, total, max_lr):   # straight lines instead of half cosines
    start, end, rise_end, last = max_lr / 25, max_lr / 25 / 1e4, 0.3 * total - 1, total - 1
    if i <= rise_end:
        return start + (max_lr - start) * i / rise_end
    return max_lr + (end - max_lr) * (i - rise_end) / (last - rise_end)
""", "OneCycleLR is at"),
        ("one_cycle", """
def one_cycle(i, total, max_lr):   # the course's cosine: no rise from max_lr / 25
    return max_lr / 2 * (1 + math.cos(math.pi * i / total))
""", "rising part"),
    ],
}


def test_the_lessons_nbval_run_tries_the_wrong_answers_and_fails_on_a_check_that_accepts_one(tmp_path):
    """The wrong answers above are tried in nbval's run of each solution (tests/exercise_misses.py, which the
    root conftest.py installs). Shown to fail: lesson 01 with its output_size check emptied, so that it accepts
    the wrong answers, fails at that check cell; everything before it passes."""
    spec = importlib.util.spec_from_file_location("root_conftest", ROOT / "conftest.py")
    root_conftest = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(root_conftest)
    assert root_conftest.pytest_runtest_call is exercise_misses.pytest_runtest_call   # make test runs the hooks
    assert root_conftest.pytest_runtest_teardown is exercise_misses.pytest_runtest_teardown
    nb = nbformat.read(ROOT / "solutions" / "01_images_and_convolution.ipynb", 4)
    check = next(c for c in nb.cells if c.cell_type == "code" and c.source.startswith("# CHECK: output_size"))
    check.source = '# CHECK: output_size\nwith exercises.check("output_size"):\n    pass'
    (tmp_path / "solutions").mkdir()
    nbformat.write(nb, tmp_path / "solutions" / "01_images_and_convolution.ipynb")
    env = {**os.environ, "PYTHONPATH": str(ROOT / "tests"), "COURSE_PROFILE": "smoke", "MPLBACKEND": "agg",
           "OMP_NUM_THREADS": "1"}
    run = subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-p", "exercise_misses", "-x",
                          "-q", "solutions", "--nbval-lax", "--nbval-current-env", "-W", "ignore"],
                         cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    assert run.returncode == 1, run.stdout[-3000:]
    cell = nb.cells.index(check)
    number = sum(1 for c in nb.cells[:cell] if c.cell_type == "code")
    assert f"FAILED solutions/01_images_and_convolution.ipynb::Cell {number}" in run.stdout, run.stdout[-3000:]
    assert "output_size: the check accepted a wrong answer" in run.stdout and f"{number} passed" in run.stdout


def test_every_exercise_has_two_wrong_answers_in_this_file():
    """The instructor tooling's rule: each exercise's check is shown rejecting at least two wrong answers."""
    for path in course.lessons(ROOT / "notebooks"):
        nb = nbformat.read(path, 4)
        for cell in nb.cells:
            if cell.cell_type == "code" and notebooks.has_solution(cell):
                found = re.search(r"^(?:def|class) (\w+)|^(\w+)\s*=", cell.source, re.M)
                name = found.group(1) or found.group(2)
                count = sum(1 for n, _, _ in WRONG.get(path.stem, []) if n == name)
                assert count >= 2, f"{path.name}: exercise {name} has {count} wrong answers here, expected 2 or more"


def test_a_lesson_whose_wrong_answers_were_not_all_tried_fails_at_its_last_cell():
    """The tally at a solution's last cell (exercise_misses.every_wrong_answer_was_tried): one wrong answer of
    lesson 00 left untried fails it; all of them tried, it passes; a cell that is not the last checks nothing."""
    from types import SimpleNamespace

    nb = nbformat.read(ROOT / "solutions" / "00_welcome.ipynb", 4)
    parent = SimpleNamespace(path=ROOT / "solutions" / "00_welcome.ipynb", nb=nb)
    item, other = SimpleNamespace(parent=parent), SimpleNamespace(parent=SimpleNamespace())
    exercises = sum(1 for c in nb.cells if c.cell_type == "code" and notebooks.has_solution(c))
    exercise_misses._tried["00_welcome"] = [len(WRONG["00_welcome"]) - 1, exercises]
    exercise_misses.every_wrong_answer_was_tried(item, SimpleNamespace(parent=parent), WRONG)   # not the last cell
    with pytest.raises(AssertionError, match="tried 1 of 2 wrong answers"):
        exercise_misses.every_wrong_answer_was_tried(item, other, WRONG)
    exercise_misses._tried["00_welcome"] = [len(WRONG["00_welcome"]), exercises]
    exercise_misses.every_wrong_answer_was_tried(item, None, WRONG)
