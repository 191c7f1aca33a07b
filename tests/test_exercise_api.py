"""The checks' own tools (course_lib/exercises.py): a miss is one message, never a traceback; a library
answer is found however it is reached; an honest answer is never refused; every way of comparing numbers
says what was wrong."""

import math
import textwrap

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from course_lib import attribution, exercises


def learner(source: str, name: str, **names):
    """Define ``name`` from ``source`` as a learner's notebook would: in a module-like namespace of its own,
    holding ``F``, ``torch``, ``np``, ``attribution`` and ``names``."""
    namespace = {"__name__": "__main__", "F": F, "torch": torch, "np": np, "attribution": attribution, **names}
    exec(textwrap.dedent(source), namespace)
    return namespace[name]


ANSWERS = (F.conv2d, torch.conv2d, torch.nn.Conv2d)

BYPASSES = {
    "calls it": "def conv(x, w):\n    return F.conv2d(x, w)",
    "an alias": "c = F.conv2d\ndef conv(x, w):\n    return c(x, w)",
    "from-import as": "from torch.nn.functional import conv2d as plain\ndef conv(x, w):\n    return plain(x, w)",
    "an import inside": "def conv(x, w):\n    import torch.nn.functional as G\n    return G.conv2d(x, w)",
    "a lambda": "conv = lambda x, w: F.conv2d(x, w)",
    "the answer itself": "conv = F.conv2d",
    "a partial": "import functools\nconv = functools.partial(F.conv2d, stride=1)",
    "a wraps wrapper": ("import functools\n@functools.wraps(F.conv2d)\n"
                        "def conv(x, w):\n    return conv.__wrapped__(x, w)"),
    "a closure": ("def make():\n    f = F.conv2d\n    def conv(x, w):\n        return f(x, w)\n"
                  "    return conv\nconv = make()"),
    "a helper of its own": "def helper(x, w):\n    return torch.conv2d(x, w)\ndef conv(x, w):\n    return helper(x, w)",
    "a layer": ("def conv(x, w):\n    layer = torch.nn.Conv2d(1, 1, 3, bias=False)\n"
                "    layer.weight.data = w\n    return layer(x)"),
    "getattr on the module": "def conv(x, w):\n    return getattr(F, 'con' + 'v2d')(x, w)",
    "globals()": "def conv(x, w):\n    return globals()['F'].__dict__['conv2d'](x, w)",
    "eval": "def conv(x, w):\n    return eval('F.conv2d')(x, w)",
    "a nested function": "def conv(x, w):\n    def inner():\n        return F.conv2d(x, w)\n    return inner()",
    "an object with __call__": ("class Conv:\n    def __call__(self, x, w):\n"
                                "        return F.conv2d(x, w)\nconv = Conv()"),
    "a class of its own": ("class Helper:\n    @staticmethod\n    def run(x, w):\n        return F.conv2d(x, w)\n"
                           "def conv(x, w):\n    return Helper.run(x, w)"),
    "a from-import inside": ("def conv(x, w):\n    from torch.nn.functional import relu, conv2d\n"
                             "    return conv2d(x, w)"),
    "a method of torch": "def conv(x, w):\n    return torch.nn.functional.conv2d(x, w)",
    # routes the bytecode reader of #38's day missed
    "a default argument": "def conv(x, w, _f=F.conv2d):\n    return _f(x, w)",
    "a dict of functions": "TABLE = {'c': F.conv2d}\ndef conv(x, w):\n    return TABLE['c'](x, w)",
    "sys.modules": "import sys\ndef conv(x, w):\n    return sys.modules['torch.nn.functional'].conv2d(x, w)",
    "operator.attrgetter": "import operator\ndef conv(x, w):\n    return operator.attrgetter('conv2d')(F)(x, w)",
    "a helper with a spoofed __module__": ("def helper(x, w):\n    return F.conv2d(x, w)\nhelper.__module__ = 'torch'\n"
                                           "def conv(x, w):\n    return helper(x, w)"),
    "torch.ops.aten": ("def conv(x, w):\n    return torch.ops.aten.convolution(x, w, None, [1, 1], [0, 0], [1, 1], "
                       "False, [0, 0], 1)"),
    "conv1d on rows": ("def conv(x, w):\n    rows = [F.conv1d(x[:, :, i + d], w[:, :, d]) for i in range(4) "
                       "for d in range(3)]\n    return torch.stack([sum(rows[3 * i:3 * i + 3]) for i in range(4)], 2)"),
    "turning the watch off": "import sys\ndef conv(x, w):\n    sys.setprofile(None)\n    return F.conv2d(x, w)",
    "a thread": ("import threading\ndef conv(x, w):\n    out = []\n    t = threading.Thread(target=lambda: "
                 "out.append(F.conv2d(x, w)))\n    t.start(); t.join()\n    return out[0]"),
}

HONEST = {
    "loops": """
        def conv(x, w):
            k = w.shape[-1]
            out = torch.zeros(x.shape[-2] - k + 1, x.shape[-1] - k + 1)
            for i in range(out.shape[0]):
                for j in range(out.shape[1]):
                    out[i, j] = (x[0, 0, i:i + k, j:j + k] * w[0, 0]).sum()
            return out[None, None]
        """,
    "unfold and a product": """
        def conv(x, w):
            cols = F.unfold(x, w.shape[-1])
            side = x.shape[-1] - w.shape[-1] + 1
            return (w.flatten(1) @ cols).view(1, 1, side, side)
        """,
    "prints locals()": """
        def conv(x, w):
            print(locals())
            return F.unfold(x, w.shape[-1]).mul(w.flatten()[:, None]).sum(1).view(1, 1, x.shape[-1] - 2, -1)
        """,
    "a variable named like the answer": """
        conv2d = 'a string'     # F.conv2d in a comment
        def conv(x, w):
            note = "F.conv2d would do this"
            return F.unfold(x, w.shape[-1]).mul(w.flatten()[:, None]).sum(1).view(1, 1, x.shape[-1] - 2, -1)
        """,
}


@pytest.mark.parametrize("way", sorted(BYPASSES))
def test_own_work_finds_the_library_answer_however_it_is_reached(way):
    conv = learner(BYPASSES[way], "conv")
    with pytest.raises(exercises.Miss, match="write it yourself"):
        checked(conv, *ANSWERS)


def checked(function, *answers, args=None):
    """Run ``function`` as a check cell does: ``own_work`` first, then a call on a case (the result returned)."""
    args = args or (torch.randn(1, 1, 6, 6, generator=torch.Generator().manual_seed(0)),
                    torch.randn(1, 1, 3, 3, generator=torch.Generator().manual_seed(1)))
    exercises.start("99_test", 1)
    with exercises.check("conv"):
        exercises.own_work(function, *answers)
        return function(*args)


@pytest.mark.parametrize("way", sorted(HONEST))
def test_own_work_never_refuses_an_honest_answer(way):
    conv = learner(HONEST[way], "conv")
    x, w = torch.randn(1, 1, 6, 6), torch.randn(1, 1, 3, 3)
    got = checked(conv, *ANSWERS, args=(x, w))
    assert torch.allclose(got, F.conv2d(x, w), atol=1e-5), "the honest answers are right answers"


def test_own_work_reads_the_course_s_own_saliency_answer_as_honest_and_the_library_one_not():
    honest = learner("""
        def my_saliency(model, images, target):
            x = images.clone().requires_grad_(True)
            model(x)[torch.arange(len(x)), target].sum().backward()
            return x.grad.abs().amax(1)
        """, "my_saliency")
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(16, 3))
    case = (model, torch.randn(2, 1, 4, 4), torch.tensor([0, 2]))
    checked(honest, attribution.saliency, args=case)
    lazy = learner("def my_saliency(model, images, target):\n    return attribution.saliency(model, images, target)",
                   "my_saliency")
    with pytest.raises(exercises.Miss, match="attribution.saliency"):
        checked(lazy, attribution.saliency, args=case)


def test_a_miss_is_one_message_for_any_error_and_a_hint_comes_from_the_second():
    exercises.start("99_test", 2)
    for attempt in (1, 2):
        with pytest.raises(exercises.Miss) as err:
            with exercises.check("broken", hint="look at the shape"):
                raise KeyError("no such thing")
        message = str(err.value)
        assert "Your code raised KeyError" in message and "Traceback" not in message
        assert ("Hint: look at the shape" in message) == (attempt == 2)
        assert err.value.__cause__ is None and err.value.__suppress_context__
    with exercises.check("fine"):
        pass
    assert exercises.report() == {"lesson": "99_test", "passed": ["fine"], "total": 2}


def test_a_check_prints_no_grading_line_and_reads_no_token(monkeypatch, capsys):
    monkeypatch.setenv("COURSE_GRADING", "abc123")
    exercises.start("99_test", 1)
    with exercises.check("quiet"):
        pass
    assert "[grade" not in capsys.readouterr().err and not hasattr(exercises, "_graded")


@pytest.mark.parametrize("got, says", [
    (None, "did the function return its result"),
    ("3", "got str"),
    ({"a": 1}, "got dict"),
    (torch.zeros(2, 3), "got shape (2, 3)"),
    (torch.tensor([[1.0, float("nan")], [0.0, 0.0]]), "holds nan at position (0, 1)"),
    (torch.tensor([[1.0, 2.0], [3.0, 5.0]]), "expected 4 at position (1, 1), got 5"),
    ([["a", "b"], ["c", "d"]], "that is not numbers"),
])
def test_close_says_what_is_wrong(got, says):
    with pytest.raises(AssertionError, match=None) as err:
        exercises.close(got, torch.tensor([[1.0, 2.0], [3.0, 4.0]]), "a case")
    assert says in str(err.value) and str(err.value).startswith("a case:")


def test_close_accepts_arrays_lists_and_tensors_of_any_float_type_within_the_tolerance():
    want = torch.tensor([[1.0, 2.0], [3.0, 4.0]])
    for got in (want.double(), want.numpy(), want.tolist(), want + 5e-7, want.half()):
        exercises.close(got, want, "the same numbers")
    exercises.close(1000.0004, 1000.0, "relative", atol=1e-6)    # rtol defaults to atol, times the largest value
    with pytest.raises(AssertionError):
        exercises.close(want + 1e-3, want, "too far")


@pytest.mark.parametrize("got", [float("nan"), math.inf, True, "1.0", np.zeros(2), None])
def test_number_refuses_what_is_not_one_finite_number(got):
    with pytest.raises(AssertionError, match="the case:"):
        exercises.number(got, "the case")


def test_number_takes_one_element_tensors_and_numpy_scalars():
    assert exercises.number(torch.tensor([2.5]), "x") == 2.5 and exercises.number(np.float32(1.5), "x") == 1.5


def test_start_refuses_a_count_that_is_not_one():
    for bad in (-1, 2.5, True, "3"):
        with pytest.raises(ValueError, match="number of exercises"):
            exercises.start("99_test", bad)


def test_a_name_given_as_a_string_is_refused_wherever_it_is_used():
    lazy = learner("""
        def grad_of(x, w):
            x = x.clone().requires_grad_(True)
            (x * w).sum().backward()
            return x.grad
        """, "grad_of")
    case = (torch.randn(3), torch.randn(3))
    with pytest.raises(exercises.Miss, match="uses .*backward"):
        checked(lazy, torch.autograd.grad, "backward", args=case)
    honest = learner("def grad_of(x, w):\n    backward_pass = w.clone()\n    with torch.no_grad():\n"
                     "        return backward_pass", "grad_of")
    checked(honest, torch.autograd.grad, "backward", args=case)      # a variable's name is not a call of it


def test_an_error_in_honest_code_is_its_own_miss_not_a_use_of_a_wrapped_answer():
    """torch wraps many Optimizer methods in one decorator (``_disable_dynamo``) whose code every wrapped function
    shares: an in-place error in honest code ran that shared code, and the watch took it for Optimizer."""
    from course_lib import models

    def sgd_step(model, lr):        # forgets torch.no_grad(): autograd refuses the in-place update
        for _, w in model.named_parameters():
            w -= lr * w.grad

    net = models.LeNet1()
    F.cross_entropy(net(torch.zeros(2, 1, 28, 28)), torch.tensor([1, 2])).backward()
    exercises.start("test", total=1)
    with pytest.raises(exercises.Miss, match="Your code raised RuntimeError"):
        with exercises.check("sgd_step"):
            exercises.own_work(sgd_step, torch.optim.SGD, torch.optim.Optimizer)
            sgd_step(net, 0.1)

    def uses_the_optimizer(model, lr):
        torch.optim.SGD(model.parameters(), lr=lr).step()

    with pytest.raises(exercises.Miss, match="uses torch.optim"):
        with exercises.check("sgd_step"):
            exercises.own_work(uses_the_optimizer, torch.optim.SGD, torch.optim.Optimizer)
            uses_the_optimizer(net, 0.1)
