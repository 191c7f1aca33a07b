"""Is an exercise the learner's own work? Judged by what runs, not by what the code names.

While the check calls the learner's function, a profiler (``sys.setprofile``, every thread the function
starts too) sees each Python and C call, and a ``TorchDispatchMode`` sees each aten operator. A call into
one of the library's answers — however it was reached: an alias, a default argument, a dict of functions,
``sys.modules``, ``operator.attrgetter``, a copy of its code, ``torch.ops.aten.convolution`` — is found,
and so is a call that turns the watching off (``sys.setprofile``, popping the dispatch mode, a fork). Code
that merely mentions a name, or prints ``locals()``, runs no answer and passes.

    watch = Watch([F.conv2d, torch.nn.Conv2d], names=("backward",))
    with watch.open():                 # or watch.when(learner_function): opened whenever its code runs
        result = learner_function(x, w)
    watch.used                         # ["F.conv2d"]: refuse(...) says it the way that teaches

This runs in the learner's process: it finds every route to an answer through Python and torch, but it is
not a wall against code that edits the interpreter's memory (``ctypes``). The grader never trusts it for the
correctness of an answer — that is compared in a process where no learner code runs.
"""

from __future__ import annotations

import contextlib
import functools
import importlib
import inspect
import sys
import threading
import types

# Where an answer is looked for by name (for the message, and to pass it to the grader's answer process).
_HOMES = ("torch.nn.functional", "torch", "torch.nn", "torch.autograd", "torch.nn.grad", "numpy")
_SHORT = {"torch.nn.functional": "F"}
# The aten operators an answer runs, and which of their calls are that answer (by the answer's __name__).
_OPS = {
    "conv2d": {"convolution": lambda a: not (len(a) > 6 and a[6])},
    "Conv2d": {"convolution": lambda a: not (len(a) > 6 and a[6])},
    "conv_transpose2d": {"convolution": lambda a: len(a) > 6 and bool(a[6])},
    "max_pool2d": {"max_pool2d_with_indices": None, "max_pool2d": None},
    "MaxPool2d": {"max_pool2d_with_indices": None, "max_pool2d": None},
    "avg_pool2d": {"avg_pool2d": None}, "AvgPool2d": {"avg_pool2d": None},
    "max_unpool2d": {"max_unpool2d": None},
    "conv2d_input": {"convolution_backward": None}, "conv2d_weight": {"convolution_backward": None},
}
# C functions that run an answer's work under another name.
_ALSO = {"grad": {"run_backward", "_run_backward"}, "backward": {"run_backward", "_run_backward"},
         "enable_grad": {"_set_grad_enabled"}, "set_grad_enabled": {"_set_grad_enabled"}}
# C calls that would blind the watch (or run code it cannot follow) while the function runs.
_TAMPER = {"setprofile", "settrace", "_pop_torch_dispatch_mode", "_set_torch_dispatch_mode", "_unset_dispatch_mode",
           "fork", "forkpty", "fork_exec", "posix_spawn", "posix_spawnp", "system", "execv", "execve",
           "start_new_thread", "_exit", "kill", "interrupt_main"}
_LIBRARIES = ("torch", "numpy", "scipy", "course_lib", "functools", "operator", "contextlib", "threading", "builtins")


def _key(code):
    return code.co_code, code.co_names, code.co_consts


def ref(answer) -> str | None:
    """``"module:name"`` where ``answer`` can be found again (``"torch.nn.functional:conv2d"``), or None."""
    name = getattr(answer, "__name__", None)
    if not isinstance(name, str):
        return None
    module = getattr(answer, "__module__", None)
    for home in _HOMES + ((module,) if isinstance(module, str) else ()):
        found = sys.modules.get(home)
        if found is not None and getattr(found, name, None) is answer:
            return f"{home}:{name}"
    return None


def resolve(reference: str):
    """The object a :func:`ref` names (imported; only the course's and torch's modules), or a string name."""
    if ":" not in reference:
        return reference
    home, name = reference.split(":", 1)
    if home.split(".")[0] not in ("torch", "numpy", "course_lib"):
        raise ValueError(f"not an answer of the libraries: {reference}")
    return getattr(importlib.import_module(home), name)


def said(answer) -> str:
    """How an answer is named in a message: ``F.conv2d``, ``torch.nn.Conv2d``, ``measure.sparsity``."""
    if isinstance(answer, str):
        return answer
    where = ref(answer)
    if where is None:
        return getattr(answer, "__qualname__", None) or repr(answer)
    home, name = where.split(":")
    home = _SHORT.get(home, home)
    return f"{home.split('.')[-1] if home.startswith('course_lib.') else home}.{name}"


def same(obj, answer) -> bool:
    """Is ``obj`` the ``answer``, a ``partial`` or ``wraps`` wrapper of it, a subclass or an instance of it?"""
    for _ in range(10):
        if obj is answer:
            return True
        if isinstance(answer, type) and (isinstance(obj, answer)
                                         or (isinstance(obj, type) and issubclass(obj, answer))):
            return True
        inner = obj.func if isinstance(obj, functools.partial) else (
            getattr(obj, "__wrapped__", None) if isinstance(obj, types.FunctionType) else None)
        if inner is None or inner is obj:
            return False
        obj = inner
    return False


def learner_codes(function) -> set:
    """The code objects whose running opens the watch: the function's, or its class's methods."""
    target = function.func if isinstance(function, functools.partial) else function
    target = getattr(target, "__func__", target)
    if isinstance(target, types.FunctionType):
        return {target.__code__}
    cls = target if isinstance(target, type) else type(target)
    return {getattr(f, "__func__", f).__code__ for klass in cls.__mro__ for f in vars(klass).values()
            if isinstance(getattr(f, "__func__", f), types.FunctionType)
            and (getattr(klass, "__module__", "") or "").split(".")[0] not in _LIBRARIES}


class Watch:
    """Finds calls into ``answers`` (objects) and into library functions called ``names`` while it is open."""

    def __init__(self, answers, names=(), *, sole_thread: bool = False):
        self.answers = [a for a in answers if not isinstance(a, str)]
        self.names = set(names) | {a for a in answers if isinstance(a, str)}
        self.sole_thread = sole_thread
        self.used: list[str] = []
        self.codes, self.code_keys, self.c_names, self.ops = {}, {}, {}, {}
        for answer in self.answers:
            functions = [answer] if not isinstance(answer, type) else list(vars(answer).values())
            for f in functions:
                # a decorator's wrapper (torch's _disable_dynamo wraps many methods) shares one code object with
                # every function it wraps: the wrapped function's own code is the answer's
                f = getattr(f, "__func__", f)
                with contextlib.suppress(ValueError):
                    f = inspect.unwrap(f) if callable(f) else f
                if isinstance(f, types.FunctionType):
                    self.codes[f.__code__] = said(answer)
                    self.code_keys[_key(f.__code__)] = said(answer)
            name = getattr(answer, "__name__", "")
            for op, when in _OPS.get(name, {}).items():
                self.ops.setdefault(op, []).append((when, said(answer)))
            for c_name in _ALSO.get(name, ()):
                self.c_names[c_name] = said(answer)
        for name in self.names:
            for c_name in _ALSO.get(name, ()):
                self.c_names[c_name] = name
        self._entry, self._always, self._closing, self._within = None, False, False, set()
        self._setprofile = sys.setprofile          # held here: a learner's later sys.setprofile = ... is not ours

    # --- what a call is ---

    def _found(self, what: str) -> None:
        if what not in self.used:
            self.used.append(what)

    def _is_open(self) -> bool:
        return self._always or self._entry is not None

    def _event(self, frame, event, arg):
        if self._closing:
            return
        if event == "call":
            if not self._is_open():
                if frame.f_code in self._within:
                    self._entry = frame
                return
            code = frame.f_code
            hit = self.codes.get(code) or self.code_keys.get(_key(code))
            if hit:
                self._found(hit)
            elif self.names and (code.co_name in self.names or code.co_qualname.split(".")[0] in self.names):
                caller = frame.f_back
                if caller is None or not _library(caller):
                    self._found(code.co_qualname.split(".")[0] if code.co_name not in self.names else code.co_name)
        elif event == "return":
            if frame is self._entry:
                self._entry = None
        elif event == "c_call" and self._is_open():
            name = getattr(arg, "__name__", "")
            if any(arg is a for a in self.answers):
                self._found(said(arg))
            elif name in self.c_names:
                self._found(self.c_names[name])
            elif name in self.names and not _library(frame):
                self._found(name)
            elif name in _TAMPER:
                self._found(f"{name}() (it turns off or escapes the check's watch)")

    def _op(self, func, args) -> None:
        if not self._is_open():
            return
        for when, what in self.ops.get(func.__name__.split(".")[0], ()):
            try:
                if when is None or when(args):
                    self._found(what)
                    return
            except Exception:   # noqa: BLE001 — an argument list we did not expect is not an answer
                pass

    # --- opening and closing ---

    @contextlib.contextmanager
    def _watching(self):
        from torch.utils._python_dispatch import TorchDispatchMode, _get_current_dispatch_mode

        watch = self

        class Ops(TorchDispatchMode):
            def __torch_dispatch__(self, func, types_, args=(), kwargs=None):
                watch._op(func, args)
                return func(*args, **(kwargs or {}))

        others = len(sys._current_frames())
        mode, hook = Ops(), self._event
        threading.setprofile(hook)
        with mode:
            self._setprofile(hook)
            try:
                yield self
            finally:
                still = sys.getprofile() is hook and _get_current_dispatch_mode() is mode
                self._closing = True
                self._setprofile(None)
                self._closing = False
                threading.setprofile(None)
        if not still:
            self._found("a change to the check's watch (sys.setprofile or the dispatch mode)")
        if self.sole_thread and max(others, len(sys._current_frames())) > 1:
            self._found("other threads (the check cannot follow what they run)")

    @contextlib.contextmanager
    def open(self):
        """Watch everything that runs inside the ``with`` block."""
        self._always = True
        try:
            with self._watching():
                yield self
        finally:
            self._always = False

    @contextlib.contextmanager
    def when(self, function):
        """Watch inside the ``with`` block whenever ``function``'s code (or its class's methods) runs."""
        self._within = learner_codes(function)
        try:
            with self._watching():
                yield self
        finally:
            self._within, self._entry = set(), None


def _library(frame) -> bool:
    module = frame.f_globals.get("__name__", "") if isinstance(frame.f_globals, dict) else ""
    filename = frame.f_code.co_filename
    return (isinstance(module, str) and module.split(".")[0] in _LIBRARIES and not filename.startswith("<")
            and "ipykernel" not in filename)


def refuse(name: str, used) -> None:
    """Raise the miss that says what the function used instead of its own work (nothing if ``used`` is empty)."""
    if used:
        listed = ", ".join(dict.fromkeys(used))
        raise AssertionError(f"{name} uses {listed}: write it yourself — the check compares your version with the "
                             "library's on cases of its own.")
