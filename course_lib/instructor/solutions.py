"""Executed solution notebooks: every lesson source run top to bottom in a profile, its outputs stored.

The published solutions are a real run (the ``cpu`` profile on all of MNIST and Imagenette; ``make
solutions``); each records what it was made from (:func:`fingerprint`), so that ``check`` can tell when one
is stale. A lesson run again without having changed keeps every byte of its solution: widget ids are
derived from the lesson, and an output that differs only in a duration, a speed or an address keeps its
old text. Progress bars are stored in their finished state (100 %, the epoch's loss), not as drawn first.
"""

from __future__ import annotations

import ast
import copy
import hashlib
import html
import json
import os
import re
from pathlib import Path

from . import reads
from .course import ROOT, NotebookError, lessons, read_notebook, root_of, write_text
from .notebooks import KEPT_METADATA, dumps
from .release import point_badges

LIBRARY = Path(__file__).resolve().parents[1]
WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
WIDGET_STATE = "application/vnd.jupyter.widget-state+json"
# Set for every run outside ``smoke``: a lesson that cannot find MNIST fails instead of publishing the
# shipped sample's results as the course's (digits.REQUIRE_SETTING).
REQUIRE_DATA = "COURSE_REQUIRE_DATA"

# Parts of course_lib that do not change what a solution shows: the instructor's tools (tests/test_assign.py
# checks that no lesson imports them) and the hints, which a check prints only after a second miss (a solution
# passes every check the first time). Changing them does not make a solution stale.
NOT_RUN_BY_LESSONS = ("instructor", "exercise_hints.json")


def execute(nb, cwd: Path, profile: str, timeout: int = 3600, library: Path = LIBRARY):
    """Run a notebook top to bottom with ``COURSE_PROFILE=profile`` (and, outside ``smoke``,
    ``COURSE_REQUIRE_DATA=1``: real data or an error); returns ``(the executed copy, with the final state of
    its widgets in its metadata; the data files of ``library`` the run read, or None when it started a process
    that could read any)``: :mod:`reads` records them.

    A failing cell raises ``nbclient``'s ``CellExecutionError`` (its message shows the cell); a cell running
    longer than ``timeout`` seconds fails (lesson 09's table trains 24 AlexNets in one cell; in the ``cpu``
    profile, beside another run, it went past the half hour this limit was before)."""
    from nbclient import NotebookClient

    nb = copy.deepcopy(nb)
    settings = {"COURSE_PROFILE": profile, REQUIRE_DATA: "1" if profile != "smoke" else None}
    old = {k: os.environ.get(k) for k in settings}
    for k, v in settings.items():
        os.environ.pop(k, None) if v is None else os.environ.__setitem__(k, v)
    try:
        with reads.recording(library) as read:
            NotebookClient(nb, timeout=timeout, kernel_name="python3", store_widget_state=True,
                           resources={"metadata": {"path": str(cwd)}}).execute()
            files = read()
    finally:
        for k, v in old.items():
            os.environ.pop(k, None) if v is None else os.environ.__setitem__(k, v)
    if files is not None:
        files = [f for f in files if _data(f)]
    return nb, files


def _data(rel: str) -> bool:
    """Whether a path a run read counts as data: not a module (code is followed by its imports), not compiled
    code, nothing of :data:`NOT_RUN_BY_LESSONS`."""
    parts = Path(rel).parts
    return not rel.endswith(".py") and "__pycache__" not in parts and not set(parts[:1]) & set(NOT_RUN_BY_LESSONS)


def _imported(tree: ast.AST, package: list[str], name: str) -> set[str]:
    """Dotted names of the ``name`` package's modules (and of names inside them) that ``tree`` imports at
    any depth (lazy imports count); ``package`` is the importing module's package, for relative imports."""
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name == name or a.name.startswith(name + ".")}
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[:len(package) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            elif node.module == name or (node.module or "").startswith(name + "."):
                target = node.module
            else:
                continue
            found.add(target)
            found |= {f"{target}.{a.name}" for a in node.names}  # a module or a name in one: resolved later
    return found


def library_files(source: Path, library: Path = LIBRARY, reads: list[str] | None = None) -> list[Path]:
    """The files of ``library`` that the lesson at ``source`` can run: the modules its code cells import,
    the modules those import (lazy imports too) and their packages' ``__init__.py``, and the data files its
    run read (``reads``: paths relative to ``library``, as :mod:`reads` recorded them) or, when ``reads`` is
    None, every data file; never :data:`NOT_RUN_BY_LESSONS`. Sorted. A lesson that cannot be parsed gets
    every module."""
    library = Path(library)
    name = library.name
    files = sorted(p for p in library.rglob("*") if p.is_file() and "__pycache__" not in p.parts
                   and p.relative_to(library).parts[0] not in NOT_RUN_BY_LESSONS)
    modules = {}
    for path in files:
        if path.suffix == ".py":
            parts = (name,) + path.relative_to(library).with_suffix("").parts
            modules[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    todo = set()
    for cell in read_notebook(source).cells:
        if cell.cell_type != "code":
            continue
        lines = [line[:len(line) - len(line.lstrip())] + "pass" if line.lstrip().startswith(("%", "!")) else line
                 for line in cell.source.splitlines()]      # IPython's magics and shell lines
        try:
            todo |= _imported(ast.parse("\n".join(lines)), [], name)
        except SyntaxError:
            return [p for p in files if p.suffix == ".py" or _read(p, library, reads)]
    used = set()
    while todo:
        dotted = todo.pop()
        while dotted and dotted not in modules:        # "course_lib.models.LeNet1" -> "course_lib.models"
            dotted = dotted.rpartition(".")[0]
        parts = dotted.split(".")
        for i in range(1, len(parts) + 1):            # importing a.b.c runs a/__init__ and a/b/__init__ too
            parent = ".".join(parts[:i])
            if parent in modules and parent not in used:
                used.add(parent)
                path = modules[parent]
                package = parent.split(".") if path.name == "__init__.py" else parent.split(".")[:-1]
                todo |= _imported(ast.parse(path.read_text(encoding="utf-8")), package, name)
    chosen = {modules[m] for m in used}
    return [p for p in files if p in chosen or (p.suffix != ".py" and _read(p, library, reads))]


def _read(path: Path, library: Path, reads: list[str] | None) -> bool:
    return reads is None or str(path.relative_to(library)) in reads


def fingerprint(source: Path, library: Path = LIBRARY, reads: list[str] | None = None) -> dict[str, str]:
    """What a solution notebook was made from: SHA-256 of the lesson source's bytes, of its code alone (the
    code cells' sources, in order: what a run depends on; markdown may come and go between them) and of the library
    files the lesson can run (:func:`library_files` with ``reads``, the data files its run read, or all of them
    when None: names and bytes, in order; a file read that is gone counts as its name). Editing a module no
    code of the lesson reaches, changing a data file its run did not read, or adding a lesson, leaves the
    other lessons' solutions current."""
    lib = hashlib.sha256()
    for f in library_files(source, library, reads):
        lib.update(str(f.relative_to(library)).encode() + b"\0" + f.read_bytes())
    for rel in sorted(reads or ()):
        path = Path(library) / rel
        if rel.endswith("/"):       # a folder it listed: the names of the data files in it
            names = sorted(p.name for p in path.iterdir() if p.is_file() and p.suffix != ".py") if path.is_dir() else []
            lib.update(rel.encode() + b"\0" + "\0".join(names).encode() + (b"" if path.is_dir() else b"(gone)"))
        elif not path.is_file():
            lib.update(rel.encode() + b"\0(gone)")
    return {**_source_and_code(source), "library": lib.hexdigest()}


def _source_and_code(source: Path) -> dict[str, str]:
    """The lesson's part of :func:`fingerprint`: SHA-256 of its bytes and of its code cells' sources."""
    code = hashlib.sha256()
    for cell in read_notebook(source).cells:
        if cell.cell_type == "code":
            code.update(cell.source.encode() + b"\1")
    return {"source": hashlib.sha256(Path(source).read_bytes()).hexdigest(), "code": code.hexdigest()}


def made_from(source: Path, profile: str, reads: list[str] | None = None) -> dict:
    """What a solution of ``source`` run in ``profile`` records in its metadata (``course``): the profile, the
    :func:`fingerprint` and, when known, the data files the run read (``reads``)."""
    made = {"profile": profile, **fingerprint(source, LIBRARY, reads)}
    return made if reads is None else {**made, "reads": reads}


def _digest(path: Path) -> str | None:
    try:
        return hashlib.sha256(Path(path).read_bytes()).hexdigest()
    except FileNotFoundError:
        return None


def _words_only(path: Path, target: Path, made: dict) -> bool:
    """When the solution at ``target`` was made in the same profile from the same code and library as the
    lesson at ``path`` now, and only its words (markdown) changed: put the new words in, keep every output,
    and return True. Otherwise change nothing and return False."""
    try:
        old = read_notebook(target)
    except (NotebookError, FileNotFoundError):
        return False
    before = old.metadata.get("course", {})
    if any(before.get(k) != made[k] for k in ("profile", "code", "library")):
        return False
    source = read_notebook(path)
    code = [c for c in old.cells if c.cell_type == "code"]
    if [c.source for c in source.cells if c.cell_type == "code"] != [c.source for c in code]:
        return False
    # markdown may be added, removed or moved between the code cells: each code cell keeps its outputs
    ran = iter(code)
    old.cells = [next(ran) if c.cell_type == "code" else c for c in source.cells]
    old.metadata["course"] = made
    point_badges(old, path.name, "solutions", root_of(path.parent))
    write_text(target, dumps(old))
    return True


def _stable_widget_ids(nb, name: str) -> None:
    """Widget outputs name a random model id on every run; the stored notebook keeps no widget state,
    so the id is replaced by one derived from the lesson, the cell and the output (same run, same id)."""
    for i, cell in enumerate(nb.cells):
        for j, out in enumerate(cell.get("outputs", [])):
            view = out.get("data", {}).get(WIDGET_VIEW)
            if view is not None and "model_id" in view:
                view["model_id"] = hashlib.sha1(f"{name}/{i}/{j}".encode()).hexdigest()[:32]


# What changes from run to run without the lesson changing: durations and speeds, memory addresses.
VOLATILE = re.compile(r"\d[\d,]*(?:\.\d+)?(?=\s*(?:ms|s|µs|min|images/s|it/s|s/it)\b)|0x[0-9a-fA-F]{6,}"
                      r"|\b\d+:\d\d(?::\d\d)?\b|(?<=img_s=)\d+|\d{4}-\d\d-\d\d")


def _masked(outputs) -> str:
    """The outputs as JSON with the volatile parts of their text masked (pictures are compared whole)."""
    masked = copy.deepcopy(list(outputs))
    for out in masked:
        if "text" in out:
            out["text"] = VOLATILE.sub("#", "".join(out["text"]))
        for mime in ("text/plain", "text/html"):
            if mime in out.get("data", {}):
                out["data"][mime] = VOLATILE.sub("#", "".join(out["data"][mime]))
    return json.dumps(masked, sort_keys=True)


def _coalesce_streams(nb) -> None:
    """Join each run of consecutive stream outputs of one name (stdout, stderr) into one, in place: how
    printed text is split into messages depends on timing, what it says does not."""
    for cell in nb.cells:
        merged = []
        for out in cell.get("outputs", []):
            if (out.get("output_type") == "stream" and merged and merged[-1].get("output_type") == "stream"
                    and merged[-1].get("name") == out.get("name")):
                merged[-1]["text"] = "".join(merged[-1]["text"]) + "".join(out["text"])
            else:
                merged.append(out)
        if "outputs" in cell:
            cell.outputs = merged


PROGRESS_BAR = re.compile(r"\d+%\|")   # tqdm's text form


def _bar_text(state: dict, model_id: str) -> str | None:
    """The text of the tqdm bar drawn by widget ``model_id`` as it ended (from the stored widget ``state``):
    ``"epoch 4/4: 100%|██████████| 8/8 [00:02<00:00, 3.9it/s, loss=1.69, acc=0.41]"``; None when the bar
    was hidden when it closed (``leave=False``) or its state is unknown."""
    def model(ref):
        return state.get(str(ref).replace("IPY_MODEL_", ""), {}).get("state", {})

    box = model(model_id)
    children = [model(c) for c in box.get("children", [])]
    if len(children) != 3 or model(box.get("layout", "")).get("visibility") == "hidden":
        return None
    left, bar, right = children
    total, n = bar.get("max") or 0, bar.get("value") or 0
    filled = int(round(10 * n / total)) if total else 0
    before, after = html.unescape(left.get("value", "")), html.unescape(right.get("value", ""))
    text = f"{before}|{'█' * filled}{' ' * (10 - filled)}|{after}"
    return text.replace("\u2007", " ")     # tqdm pads its HTML with figure spaces; plain text has plain ones


def finish_progress_bars(nb) -> None:
    """Store every tqdm progress bar of an executed notebook in its finished state (in place): a bar's
    widget output keeps only the text it was first drawn with (0 %), while its final state is in the
    widget state nbclient kept; a bar hidden when it closed is dropped."""
    state = nb.metadata.get("widgets", {}).get(WIDGET_STATE, {}).get("state", {})
    for cell in nb.cells:
        kept = []
        for out in cell.get("outputs", []):
            view = out.get("data", {}).get(WIDGET_VIEW)
            text = "".join(out.get("data", {}).get("text/plain", ""))
            if view is not None and PROGRESS_BAR.search(text):
                final = _bar_text(state, view.get("model_id", ""))
                if final is None:
                    continue
                out["data"]["text/plain"] = final
            kept.append(out)
        if "outputs" in cell:
            cell.outputs = kept


def _keep_unchanged_outputs(new, old) -> None:
    """Where a cell of the new run has the same source as the old solution's and its outputs differ from
    the old ones only in timings or addresses (:data:`VOLATILE`), keep the old outputs (in place), so a
    re-run of an unchanged lesson changes no byte. Figures and every other number must match exactly."""
    if len(new.cells) != len(old.cells):
        return
    for cell, before in zip(new.cells, old.cells):
        if (cell.cell_type == "code" and before.cell_type == "code" and cell.source == before.source
                and cell.outputs != before.outputs and _masked(cell.outputs) == _masked(before.outputs)):
            cell.outputs = before.outputs


def solutions(src: Path = ROOT / "notebooks", dst: Path = ROOT / "solutions", profile: str = "cpu",
              only: list[str] | None = None, force: bool = False) -> list[Path]:
    """Execute the lessons (or those named in ``only``) and write ``dst/NAME.ipynb`` with outputs.

    A lesson whose solution was made in this ``profile`` from the same source bytes and the same library
    (:func:`fingerprint`, kept in the notebook's metadata) is skipped, and its file is not touched, unless
    ``force``; one whose code and library are the same and only its words changed gets the new words and
    keeps its outputs (a typo fixed does not cost a run). A failure names the notebook and the cell and leaves the
    previous solution file untouched.
    Returns the files written.
    """
    from nbclient.exceptions import CellExecutionError
    from tqdm.auto import tqdm

    known = lessons(src)
    unknown = [n for n in only or () if not any(n in (p.stem, p.name) for p in known)]
    if unknown:
        raise NotebookError(f"No lesson {', '.join(map(repr, unknown))} in {src}: expected some of "
                            f"{', '.join(p.stem for p in known)}.")
    paths = [p for p in known if not only or p.stem in only or p.name in only]
    todo = []
    for path in paths:
        target = Path(dst) / path.name
        try:
            before = read_notebook(target).metadata.get("course", {}) if target.exists() else {}
        except NotebookError:
            before = {}
        made = made_from(path, profile, before.get("reads"))
        current = not force and before == made
        if current:
            print(f"{target.name}: unchanged source and library, not run again (--all to force)")
        elif not force and _words_only(path, target, made):
            print(f"{target.name}: only its words changed: they were put in, its outputs kept (--all to run it)")
        else:
            todo.append((path, target))
    written = []
    for path, target in tqdm(todo, desc=f"executing lessons ({profile})", unit="notebook"):
        lesson = _source_and_code(path)        # as the run starts: the source it runs, every file it may use
        digests = {f: _digest(f) for f in library_files(path, LIBRARY)}
        nb = read_notebook(path)
        try:
            done, read = execute(nb, Path(src), profile)
        except CellExecutionError as err:
            raise RuntimeError(f"{path.name} failed in the {profile!r} profile; "
                               f"{target} was left as it was.\n{err}") from None
        # the source as it was read (its words may be edited during a long run), the library files it read
        made = {**made_from(path, profile, read), **lesson}
        used = library_files(path, LIBRARY, read)
        gone = [LIBRARY / r for r in read or () if LIBRARY / r in digests and not (LIBRARY / r).is_file()]
        changed = [f for f in used + gone if _digest(f) != digests.get(f)]
        if changed:
            raise RuntimeError(f"{', '.join(f.name for f in changed)} changed while {path.name} ran: {target} was "
                               "left as it was; run it again.")
        finish_progress_bars(done)
        done.metadata = {k: v for k, v in done.metadata.items() if k in KEPT_METADATA}
        done.metadata["course"] = made
        done.nbformat, done.nbformat_minor = 4, 4  # no cell ids: stable files and diffs
        point_badges(done, path.name, "solutions", root_of(src))
        for cell in done.cells:
            cell.pop("id", None)
            cell.metadata.pop("execution", None)
        _stable_widget_ids(done, path.name)
        _coalesce_streams(done)
        try:
            _keep_unchanged_outputs(done, read_notebook(target))
        except (NotebookError, FileNotFoundError):
            pass  # no earlier solution to keep outputs from
        write_text(target, dumps(done))
        written.append(target)
    return written


