"""What cannot travel as plain data between the grader and the notebook's process, made to travel safely.

From the notebook: a module whose classes are all torch's or the course's travels as data (:func:`module_data`:
its class's name, plain attributes, parameters, buffers, children; the grader remakes it with :func:`rebuild`
from the library's own class, no learner code); any other value that is not data (a learner's function, class,
instance, generator) stays there and the grader gets an :class:`Answer`, a handle whose calls, attributes and
items are asked for there and come back as data or further handles. To the notebook: the check's arguments,
pickled by the grader (the notebook's process unpickles them; the grader never unpickles anything), handles as
their ids; what a call changed in them in place comes back as data and is written into the check's own objects.
"""

from __future__ import annotations

import base64
import contextlib
import io
import pickle
import sys

from .answers import Client, alarm, portable, decode, encode

def _library_class(where: str):
    """The class ``"module:qualname"`` names, only an ``nn.Module`` of torch or the course (else ``ValueError``)."""
    import importlib
    import torch

    home, _, name = where.partition(":")
    if home.split(".")[0] not in ("torch", "course_lib") or not name:
        raise ValueError(f"not a module class of the libraries: {where}")
    found = sys.modules.get(home)
    if found is None and not any(part.startswith("_") for part in home.split(".")):
        found = importlib.import_module(home)        # the library's own modules only, never a __main__
    for part in name.split("."):
        found = getattr(found, part)
    if not (isinstance(found, type) and issubclass(found, torch.nn.Module)):
        raise ValueError(f"not a module class: {where}")
    return found


def module_data(module, depth: int = 0) -> dict:
    """A module whose classes (its own and its children's) are all torch's or the course's, as data: the class's
    name, its plain attributes, parameters, buffers and children (hooks and other code left out)."""
    cls = type(module)
    where = f"{cls.__module__}:{cls.__qualname__}"
    if _library_class(where) is not cls:
        raise ValueError("a class that only says it is the library's")
    state = vars(module)
    attrs = {k: _function(v) or encode(v, depth + 1) for k, v in state.items()
             if not k.startswith("__") and "hook" not in k and k not in _INTERNAL}
    if any(a["t"] in ("handle", "object", "module") for a in _leaves(attrs)):
        raise ValueError("an attribute that is not data")
    params = {k: None if p is None else [encode(p.detach()), bool(p.requires_grad)]
              for k, p in state["_parameters"].items()}
    buffers = {k: None if b is None else encode(b) for k, b in state["_buffers"].items()}
    children = {k: None if m is None else module_data(m, depth + 1) for k, m in state["_modules"].items()}
    return {"t": "nn", "cls": where, "attrs": attrs, "params": params, "buffers": buffers, "children": children,
            "transient": sorted(state.get("_non_persistent_buffers_set", ()))}


def _function(value) -> dict | None:
    """A torch function a module holds (``torch.tanh`` as a layer's squashing), by its name, or None."""
    name = getattr(value, "__name__", None)
    if callable(value) and not isinstance(value, type) and isinstance(name, str):
        for home in ("torch.nn.functional", "torch"):
            if getattr(sys.modules.get(home), name, None) is value and _allowed(home, name):
                return {"t": "function", "home": home, "name": name}
    return None


def _allowed(home: str, name: str) -> bool:
    """Only torch's computations on tensors: ``F``'s functions, and torch's that are also tensor methods (no
    ``torch.save``, ``torch.manual_seed``, ``torch.set_num_threads``), none in place."""
    import torch

    if not name.isidentifier() or name.startswith("_") or name.endswith("_"):
        return False
    return home == "torch.nn.functional" or (home == "torch" and hasattr(torch.Tensor, name))


_INTERNAL = {"_parameters", "_buffers", "_modules", "_non_persistent_buffers_set"}


def _leaves(data):
    for d in data.values() if isinstance(data, dict) else [data]:
        if d.get("t") in ("tuple", "list", "dict"):
            yield from _leaves(d["items"] if isinstance(d["items"], dict) else dict(enumerate(d["items"])))
        else:
            yield d


def rebuild(data, depth: int = 0):
    """The module :func:`module_data` described, made here of its library class (no learner code)."""
    import torch

    if depth > 40:
        raise ValueError("a module nested too deep")
    cls = _library_class(str(data["cls"]))
    module = cls.__new__(cls)
    torch.nn.Module.__init__(module)
    for key, value in data["attrs"].items():
        if not str(key).isidentifier() or key.startswith("__"):
            raise ValueError(f"an attribute called {key!r}")
        if value.get("t") == "function" and _allowed(str(value["home"]), str(value["name"])):
            module.__dict__[key] = getattr(sys.modules[str(value["home"])], str(value["name"]))
        else:
            module.__dict__[key] = decode(value)
    for key, value in data["params"].items():
        module._parameters[str(key)] = None if value is None else torch.nn.Parameter(decode(value[0]),
                                                                                     requires_grad=bool(value[1]))
    for key, value in data["buffers"].items():
        module._buffers[str(key)] = None if value is None else decode(value)
    for key, value in data["children"].items():
        module._modules[str(key)] = None if value is None else rebuild(value, depth + 1)
    module._non_persistent_buffers_set = {str(k) for k in data["transient"]}
    return module


class Answer:
    """A learner's value that cannot travel as data (a function, a class, an instance of one), living in the
    notebook's process: calling it, its methods or its attributes asks there, and only data comes back (or
    another :class:`Answer`); ``exercises.own_work`` on it makes its calls watched there. What a call changes in
    the check's own arguments (a model's weights, a dict) comes back as data and is written into them."""

    def __init__(self, client: Client, handle: int, name: str):
        self.client, self.handle, self.__name__, self.watched = client, handle, name, []

    def course_watch(self, answers) -> None:
        from ..own_work import ref

        self.watched = [a if isinstance(a, str) else ref(a) for a in answers]
        self.watched = [w for w in self.watched if w]

    def __call__(self, *args, **kwargs):
        return self._ask("call", args, kwargs)

    def _ask(self, op, args=(), kwargs=None, **message):
        """Send ``op`` on this handle (a call, a method's call, an attribute, its items as a list), watched as
        the learner's function is; write back what it changed in ``args``, and return its value."""
        from ..own_work import refuse

        kwargs = kwargs or {}
        payload = io.BytesIO()
        _Pickler(payload).dump((portable(args), portable(kwargs)))
        reply = self.client.ask({"op": op, "handle": self.handle, "watch": self.watched, **message,
                                 "args": base64.b64encode(payload.getvalue()).decode()})
        refuse(self.__name__, [str(u)[:200] for u in reply.get("used", [])])
        if "error" in reply:
            _raise(reply["error"])
        shared = _shared()
        for path, value in reply.get("after", []):
            _write_back((args, kwargs), path, decode(value, self.client), shared)
        value = decode(reply["value"], self.client, self.__name__)
        for inner in _answers(value):
            inner.watched = self.watched        # what the learner's function gave runs watched as it does
        return value

    def __getattr__(self, attr):
        if attr.startswith("__") or attr in ("client", "handle", "watched"):
            raise AttributeError(attr)
        return self._ask("attr", attr=attr)

    def __iter__(self):
        return iter(self._ask("list"))

    def __len__(self):
        return self._ask("call", method="__len__")

    def __getitem__(self, key):
        return self._ask("call", (key,), method="__getitem__")

    def __repr__(self):
        return f"<your {self.__name__}>"


def _answers(value):
    if isinstance(value, Answer):
        yield value
    elif isinstance(value, (tuple, list)):
        for v in value:
            yield from _answers(v)
    elif isinstance(value, dict):
        for v in value.values():
            yield from _answers(v)


def _shared() -> set:
    """The ids of the course's module-level values: a learner's call never writes into them (they outlive
    this notebook's grading)."""
    return {id(v) for name, m in list(sys.modules.items()) if name.split(".")[0] == "course_lib" and m is not None
            for v in list(vars(m).values())}


def _raise(error) -> None:
    kind, text = (str(x) for x in error[:2])
    kind = kind if kind.isidentifier() and len(kind) < 60 else "Exception"
    bases = (AttributeError,) if kind == "AttributeError" else (TypeError,) if kind == "TypeError" else (Exception,)
    raise type(kind, bases, {})(text[:300])


def _parameter(data, requires_grad, grad):
    """A parameter as the check made it, its gradient included (pickle alone leaves ``.grad`` out)."""
    import torch

    out = torch.nn.Parameter(data, requires_grad=requires_grad)
    out.grad = grad
    return out


class _Pickler(pickle.Pickler):
    """The check's arguments for the notebook's process (which unpickles them: the grader never does); a
    learner's value the grader holds as an :class:`Answer` goes as its handle."""

    def persistent_id(self, obj):
        return ("handle", obj.handle) if type(obj) is Answer else None

    def reducer_override(self, obj):
        import torch

        if type(obj) is torch.nn.Parameter:
            grad = None if obj.grad is None else obj.grad.detach().clone()
            return _parameter, (obj.detach().clone(), obj.requires_grad, grad)
        return NotImplemented


def _mutables(value, path=()):
    """``(path, object)`` for what a learner's call could change in place in its arguments."""
    import torch

    if torch.is_tensor(value) or isinstance(value, torch.nn.Module):
        yield path, value
    elif isinstance(value, (tuple, list)):
        if isinstance(value, list):
            yield path, value
        for i, v in enumerate(value):
            yield from _mutables(v, path + (i,))
    elif isinstance(value, dict):
        yield path, value
        for k, v in value.items():
            if isinstance(k, str):
                yield from _mutables(v, path + (k,))


def _write_back(root, path, value, shared=frozenset()) -> None:
    """What the learner's call changed in the check's argument at ``path``: written into it, in place."""
    import torch

    target = root
    for key in path:
        target = target[key] if isinstance(target, (tuple, list)) and isinstance(key, int) else target[str(key)]
    if id(target) in shared:
        return
    with torch.no_grad():
        if torch.is_tensor(target) and torch.is_tensor(value) and value.shape == target.shape:
            with contextlib.suppress(RuntimeError):
                target.copy_(value)
        elif isinstance(target, torch.nn.Module) and isinstance(value, dict):
            own = dict(target.named_parameters()) | dict(target.named_buffers())
            for name, new in value.items():
                if name in own and torch.is_tensor(new) and new.shape == own[name].shape:
                    own[name].copy_(new)
        elif isinstance(target, dict) and isinstance(value, dict):
            target.clear()
            target.update(value)
        elif isinstance(target, list) and isinstance(value, list):
            target[:] = value


class _Unpickler(pickle.Unpickler):
    def __init__(self, file, kept):
        super().__init__(file)
        self.kept = kept

    def persistent_load(self, pid):
        return self.kept[int(pid[1])]


def answer(request: dict, names: dict, kept: list, keep, cell_timeout: float) -> tuple[dict, object]:
    """The reply to one request of the grader (the notebook's side)."""
    import torch

    from ..own_work import Watch

    if request["op"] == "get":
        if request["name"] not in names:
            return {}, None
        return {"value": encode(names[request["name"]], keep=keep)}, None
    value = kept[int(request["handle"])]
    args, kwargs = _Unpickler(io.BytesIO(base64.b64decode(request["args"])), kept).load()
    if request.get("method"):
        value = getattr(value, str(request["method"]))
    run = {"attr": lambda: getattr(value, str(request["attr"])), "list": lambda: list(value),
           "call": lambda: value(*args, **kwargs)}[request["op"]]
    before = [(path, obj, _version(obj)) for path, obj in _mutables((args, kwargs))]
    watch = Watch([_resolve(str(r)) for r in request["watch"]], sole_thread=True)
    reply = {}
    alarm(cell_timeout)
    try:
        with watch.open():
            try:
                reply["value"] = encode(run(), keep=keep)
            except BaseException as err:   # noqa: BLE001 — whatever the learner's code raised is a reply
                first = str(err).strip().splitlines()[0][:300] if str(err).strip() else ""
                reply["error"] = [type(err).__name__, first]
    finally:
        alarm(0)
    reply["used"] = watch.used
    after = []
    for path, obj, version in before:
        if _version(obj) != version:
            if isinstance(obj, torch.nn.Module):
                own = dict(obj.named_parameters()) | dict(obj.named_buffers())
                changed = {k: t for k, t in own.items() if _version(t) != version.get(k)}
                after.append([list(path), encode(changed)])
            else:
                after.append([list(path), encode(obj)])
    reply["after"] = after
    return reply, watch


def _resolve(reference: str):
    """An answer the check names (``"captum.attr:Saliency"``), found here, in the notebook's process, to watch
    for (``own_work.resolve`` knows torch's, numpy's and the course's; the checks also name captum's and scipy's)."""
    import importlib

    from ..own_work import resolve

    home, _, name = reference.partition(":")
    if not name or home.split(".")[0] not in ("captum", "scipy"):
        return resolve(reference)
    return getattr(importlib.import_module(home), name)


def _version(obj):
    """What changes when ``obj`` is changed in place (a tensor's version counter, a container's items)."""
    import torch

    if torch.is_tensor(obj):
        return obj._version
    if isinstance(obj, torch.nn.Module):
        return {k: t._version for k, t in (dict(obj.named_parameters()) | dict(obj.named_buffers())).items()}
    if isinstance(obj, dict):
        return [(k, id(v)) for k, v in obj.items()]
    return [id(v) for v in obj]
