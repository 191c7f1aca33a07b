"""Where the course is published, and moving it to a new release: the repository and version in
``pyproject.toml`` are the one source of every Colab badge and every lesson's Colab install line.

    python -m course_lib.instructor release v0.2.0 [--repo OWNER/NAME]   # make release TAG=v0.2.0 runs it
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

from .course import ROOT, lessons, write_text


class ReleaseError(ValueError):
    """A release tag or repository that is not of the expected form."""


PINNED_INSTALL = re.compile(r"git\+https://github\.com/[\w.-]+/[\w.-]+@(v\d+\.\d+\.\d+|[0-9a-f]{40})\b")


COLAB_BADGE = ("[![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)]"
               "(https://colab.research.google.com/github/{repo}/blob/{tag}/{folder}/{name})")
COLAB_INSTALL = '%pip install -q "course_lib @ git+https://github.com/{repo}@{tag}"'


def release_info(root: Path = ROOT) -> tuple[str, str]:
    """The course's one source of where it is published: ``(repository "owner/name", tag "vX.Y.Z")``
    from ``pyproject.toml`` (``[project.urls] Repository`` and ``version``)."""
    text = (Path(root) / "pyproject.toml").read_text()
    version = re.search(r'^version\s*=\s*"([^"]+)"', text, re.M)
    repo = re.search(r'^Repository\s*=\s*"https://github\.com/([\w.-]+/[\w.-]+?)/?"', text, re.M)
    if not version or not repo:
        raise ReleaseError("pyproject.toml must give version = \"X.Y.Z\" and, under [project.urls], "
                           "Repository = \"https://github.com/OWNER/NAME\".")
    return repo.group(1), f"v{version.group(1)}"


def badge(name: str, folder: str = "notebooks", root: Path = ROOT) -> str:
    """The markdown of a lesson's "Open in Colab" badge, pointing at ``folder/name`` at the release tag."""
    repo, tag = release_info(root)
    return COLAB_BADGE.format(repo=repo, tag=tag, folder=folder, name=name)


def colab_install(root: Path = ROOT) -> str:
    """The Colab cell's install line: course_lib from the repository at the release tag."""
    repo, tag = release_info(root)
    return COLAB_INSTALL.format(repo=repo, tag=tag)


def point_badges(nb, name: str, folder: str, root: Path = ROOT) -> None:
    """Make the lesson's badge (in place) open the copy in ``folder`` (``student`` or ``solutions``)."""
    for cell in nb.cells:
        if cell.cell_type == "markdown":
            cell.source = cell.source.replace(badge(name, root=root), badge(name, folder, root))


def release(tag: str, repo: str | None = None, root: Path = ROOT) -> list[Path]:
    """Move the course to release ``tag`` (``vX.Y.Z``; and ``repo`` ``OWNER/NAME``, default unchanged):
    pyproject's version (and Repository), then every Colab badge and install line in the README and in
    the source, student and solution notebooks. Returns the files changed (each written atomically)."""
    if not re.fullmatch(r"v\d+\.\d+\.\d+", tag):
        raise ReleaseError(f"A release tag looks like v1.2.3, got {tag!r}.")
    if repo is not None and not re.fullmatch(r"[\w.-]+/[\w.-]+", repo):
        raise ReleaseError(f"A repository looks like OWNER/NAME, got {repo!r}.")
    old_repo, old_tag = release_info(root)
    new_repo = repo or old_repo
    swaps = [(f"github/{old_repo}/blob/{old_tag}/", f"github/{new_repo}/blob/{tag}/"),
             (f"git+https://github.com/{old_repo}@{old_tag}", f"git+https://github.com/{new_repo}@{tag}")]
    pyproject = Path(root) / "pyproject.toml"
    text = pyproject.read_text()
    text = re.sub(r'^version\s*=\s*"[^"]+"', f'version = "{tag[1:]}"', text, count=1, flags=re.M)
    text = text.replace(f"https://github.com/{old_repo}", f"https://github.com/{new_repo}")
    changed = []
    files = [Path(root) / "README.md"] + [p for d in ("notebooks", "student", "solutions")
                                          for p in lessons(Path(root) / d)]
    updates = {pyproject: text}
    for path in files:
        old = path.read_text()
        new = old
        for a, b in swaps:
            new = new.replace(a, b)
        updates[path] = new
    # A solution records the SHA-256 of the source it was run from (solutions.fingerprint): the swap changes
    # source and solution alike, so a solution that was current stays current under the new hash.
    for source in lessons(Path(root) / "notebooks"):
        solution = Path(root) / "solutions" / source.name
        if solution in updates:
            before, after = _sha256(source.read_bytes()), _sha256(updates[source].encode())
            updates[solution] = updates[solution].replace(f'"source": "{before}"', f'"source": "{after}"')
    for path, new in updates.items():
        if new != path.read_text():
            write_text(path, new)
            changed.append(path)
    return changed


def _sha256(data: bytes) -> str:
    import hashlib

    return hashlib.sha256(data).hexdigest()


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m course_lib.instructor release", description=__doc__.split("\n")[0])
    parser.add_argument("tag", help="vX.Y.Z")
    parser.add_argument("--repo", help="OWNER/NAME on GitHub (default: pyproject's Repository)")
    args = parser.parse_args(argv)
    try:
        for path in release(args.tag, args.repo):
            print(f"updated {path.relative_to(ROOT)}")
    except ReleaseError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
