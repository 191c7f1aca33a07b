"""One house: course_lib's modules in floors (course_lib/__init__.py), each importing only from its floor or
below, never in a circle, none over 450 lines, none reaching into another's private names."""

import ast
from pathlib import Path

import pytest

LIBRARY = Path(__file__).resolve().parent.parent / "course_lib"

# The floors of course_lib/__init__.py's docstring: a module imports only from its own floor or below.
FLOORS = {
    "env": 0, "files": 0, "checks": 0,
    "digits": 1, "imagenette": 1, "image_folders": 1, "loader": 1, "augment": 1,
    "models": 2,
    "layers": 3, "history": 3, "checkpoints": 3,
    "train": 4, "optim": 4,
    "measure": 5, "receptive_fields": 5, "attribution": 5, "made_images": 5, "references": 5,
    "trained": 6,
    "claims": 7,
    "viz": 8, "diagrams": 8, "exercises": 8, "own_work": 8, "widgets": 8,
    "distributed": 9, "instructor": 9,
}
MAX_LINES = 450


def modules() -> dict[str, Path]:
    """``{dotted name under course_lib: path}`` of every Python file of the library."""
    found = {}
    for path in sorted(LIBRARY.rglob("*.py")):
        parts = path.relative_to(LIBRARY).with_suffix("").parts
        if parts[-1] == "__init__":
            parts = parts[:-1]
        found[".".join(parts)] = path
    return found


def unit(name: str) -> str:
    """The floor table's entry for a dotted module name (its top package or module)."""
    return name.split(".")[0]


def imports(name: str, path: Path) -> list[tuple[str, int, list[str]]]:
    """Every import of a course_lib module in ``path``, at any depth (lazy imports count): ``(module, line,
    names imported from it)``."""
    package = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.startswith("course_lib."):
                    found.append((alias.name[len("course_lib."):], node.lineno, []))
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[:len(package) - node.level + 1] if node.level > 1 else package
                target = ".".join(base + ([node.module] if node.module else []))
            elif (node.module or "").startswith("course_lib"):
                target = node.module[len("course_lib."):] if node.module != "course_lib" else ""
            else:
                continue
            names = [a.name for a in node.names]
            if not target:                       # from course_lib import models, train
                found += [(n, node.lineno, []) for n in names]
            elif node.module is None:            # from . import viz  /  from .. import models
                found += [(f"{target}.{n}" if target else n, node.lineno, []) for n in names]
            else:
                found.append((target, node.lineno, names))
    return found


def graph() -> dict[str, set[str]]:
    """Module -> the course_lib modules it imports (by floor-table unit: a package counts as one)."""
    known = modules()
    edges = {}
    for name, path in known.items():
        if not name:
            continue
        targets = set()
        for target, _, _ in imports(name, path):
            while target and target not in known:       # "models.LeNet1" -> "models"
                target = target.rpartition(".")[0]
            if target and unit(target) != unit(name):
                targets.add(unit(target))
        edges.setdefault(unit(name), set()).update(targets)
    return edges


def test_every_module_has_a_floor():
    missing = sorted({unit(n) for n in modules() if n} - set(FLOORS))
    assert not missing, f"modules without a floor in tests/test_structure.py and course_lib/__init__.py: {missing}"


def test_no_import_goes_up_a_floor():
    up = []
    known = modules()
    for name, path in known.items():
        if not name:
            continue
        for target, line, _ in imports(name, path):
            while target and target not in known:
                target = target.rpartition(".")[0]
            if target and FLOORS[unit(target)] > FLOORS[unit(name)]:
                up.append(f"{path.relative_to(LIBRARY)}:{line} imports {target} (floor {FLOORS[unit(target)]} "
                          f"above {FLOORS[unit(name)]})")
    assert not up, "\n".join(up)


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """The circles of a directed graph (depth-first search; each found once from its first node)."""
    found, state = [], {}

    def visit(node, trail):
        state[node] = "open"
        for nxt in sorted(edges.get(node, ())):
            if state.get(nxt) == "open":
                found.append(trail[trail.index(nxt):] + [nxt])
            elif nxt not in state:
                visit(nxt, trail + [nxt])
        state[node] = "done"

    for node in sorted(edges):
        if node not in state:
            visit(node, [node])
    return found


def test_no_circle_between_modules():
    assert cycles(graph()) == []


def test_the_circle_finder_finds_a_planted_circle():
    assert cycles({"recipes": {"references"}, "references": {"recipes"}}) == [["recipes", "references", "recipes"]]
    assert cycles({"a": {"b"}, "b": {"c"}, "c": set()}) == []


def test_no_module_is_over_the_line_limit():
    long = {str(p.relative_to(LIBRARY)): n for p in LIBRARY.rglob("*.py")
            if (n := len(p.read_text().splitlines())) > MAX_LINES}
    assert not long, f"modules over {MAX_LINES} lines (one job each?): {long}"


def private_reaches(name: str, path: Path) -> list[str]:
    """Where ``path`` (module ``name``) uses a private name (``_x``) of a course_lib module outside its own
    package: imported (``from .imagenette import _fingerprint``) or read from an imported module
    (``made_images._input_channels``)."""
    reached = []
    for target, line, names in imports(name, path):
        private = [n for n in names if n.startswith("_") and not n.startswith("__")]
        if private and unit(target) != unit(name):
            reached.append(f"{path.name}:{line} imports {private} from {target}")
    tree = ast.parse(path.read_text())
    outside = {alias.asname or alias.name for node in ast.walk(tree)
               if isinstance(node, ast.ImportFrom) and (node.level or (node.module or "").startswith("course_lib"))
               for alias in node.names}
    for node in ast.walk(tree):
        if (isinstance(node, ast.Attribute) and node.attr.startswith("_") and not node.attr.startswith("__")
                and isinstance(node.value, ast.Name) and node.value.id in outside):
            reached.append(f"{path.name}:{node.lineno} reads {node.value.id}.{node.attr}")
    return reached


def test_no_module_uses_another_modules_private_names():
    reached = [r for name, path in modules().items() if name for r in private_reaches(name, path)]
    assert not reached, "\n".join(reached)


def test_a_planted_private_reach_is_found(tmp_path):
    path = tmp_path / "unit_explorer.py"
    path.write_text("from . import made_images\nfrom .imagenette import _fingerprint\nmade_images._input_channels(m)\n")
    assert private_reaches("unit_explorer", path) == [
        "unit_explorer.py:2 imports ['_fingerprint'] from imagenette", "unit_explorer.py:3 reads made_images._input_channels"]


@pytest.mark.parametrize("source, expected", [
    ("from .trained import check_rise", [("trained", 1, ["check_rise"])]),
    ("def f():\n    from .. import references\n", [("references", 2, [])]),
    ("from course_lib import models, train", [("models", 1, []), ("train", 1, [])]),
    ("from .imagenette import _fingerprint", [("imagenette", 1, ["_fingerprint"])]),
])
def test_imports_are_read_as_written_lazy_ones_too(tmp_path, source, expected):
    folder = tmp_path / "claims"
    folder.mkdir()
    path = folder / ("units.py" if "references" in source else "x.py")
    path.write_text(source)
    name = "claims.units" if "references" in source else "x"
    if name == "x":
        path = tmp_path / "x.py"
        path.write_text(source)
    assert imports(name, path) == expected
