"""The manifests as a git revision holds them, written to a temporary folder.

``plan --against REF`` compares them with the working tree. Only what validation reads is
written: manifest files (``*.yaml``/``*.yml``) under the given paths and the project file
beside a named file, at the same places relative to the repository's top. Secret files are
never needed (the comparison uses stand-ins), so none is read from history. git is run as a
program, with its arguments as a list and the revision checked first, so a revision cannot be
read as an option.
"""

from __future__ import annotations

import os
import subprocess
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from reconciler.errors import UsageError
from reconciler.manifest.discover import MANIFEST_SUFFIXES, PROJECT_FILE_NAMES

_REGULAR_FILES = ("100644", "100755")
_TIMEOUT = 60


@dataclass(frozen=True)
class Revision:
    ref: str
    """The revision as the user named it (``HEAD~1``, ``origin/main``)."""
    commit: str
    top: Path
    """The repository's top folder in the working tree."""
    root: Path
    """The temporary folder the revision's files are written under (as under ``top``)."""
    paths: tuple[str, ...]
    """The requested paths as they are under ``root``; those the revision lacks are left out."""

    @property
    def label(self) -> str:
        return f"{self.ref} ({self.commit[:12]})"

    def shown(self, path: str) -> str:
        """A path under ``root`` as ``REF:path/in/repo`` (how diagnostics name it)."""
        try:
            inside = Path(path).resolve().relative_to(self.root.resolve())
        except ValueError:
            return path
        return f"{self.ref}:{inside.as_posix()}"


def _git(args: Sequence[str], cwd: Path | str, what: str, stdin: bytes | None = None) -> bytes:
    try:
        done = subprocess.run(
            ["git", *args],
            cwd=cwd,
            input=stdin,
            capture_output=True,
            timeout=_TIMEOUT,
            check=False,
        )
    except FileNotFoundError:
        raise UsageError("plan --against needs git, and no git program was found") from None
    except subprocess.TimeoutExpired:
        raise UsageError(f"git took longer than {_TIMEOUT} s to {what}") from None
    if done.returncode != 0:
        message = done.stderr.decode("utf-8", "replace").strip().splitlines()
        raise UsageError(f"cannot {what}: {message[-1] if message else 'git failed'}")
    return done.stdout


def _wanted(path: str, named: set[str], folders: list[str]) -> bool:
    if path in named:
        return True
    name = path.rsplit("/", 1)[-1]
    if not name.endswith(MANIFEST_SUFFIXES):
        return False
    return any(folder in ("", ".") or path.startswith(folder + "/") for folder in folders)


@contextmanager
def checkout(ref: str, paths: Sequence[str], cwd: str = ".") -> Iterator[Revision]:
    """The manifests under ``paths`` (relative to ``cwd``) at revision ``ref``."""
    top_text = _git(["rev-parse", "--show-toplevel"], cwd, "find the git repository").decode()
    top = Path(top_text.strip()).resolve()
    if ref.startswith("-") or not ref.strip():
        raise UsageError(f"--against expects a git revision, got {ref!r}")
    commit = (
        _git(
            ["rev-parse", "--verify", "--end-of-options", f"{ref}^{{commit}}"],
            cwd,
            f"find the git revision {ref!r}",
        )
        .decode()
        .strip()
    )
    relative: list[str] = []
    named: set[str] = set()
    folders: list[str] = []
    for path in paths:
        absolute = Path(cwd, path).resolve()
        try:
            inside = absolute.relative_to(top).as_posix()
        except ValueError:
            raise UsageError(f"{path} is outside the git repository at {top}") from None
        inside = "" if inside == "." else inside
        relative.append(inside)
        if absolute.is_file():
            named.add(inside)
        else:
            folders.append(inside)
        # The project file the working tree's search finds (``discover``): in the path's folder
        # or one above it, up to the repository's root.
        parts = inside.split("/")[: -1 if absolute.is_file() else None] if inside else []
        for depth in range(len(parts) + 1):
            parent = "/".join(parts[:depth])
            named.update(f"{parent}/{n}" if parent else n for n in PROJECT_FILE_NAMES)
    listing = _git(
        ["ls-tree", "-r", "-z", "--full-tree", commit, "--", *(p or "." for p in relative), *named],
        top,
        f"list the files of {ref}",
    )
    blobs: list[tuple[str, str]] = []
    for entry in listing.split(b"\0"):
        if not entry:
            continue
        meta, _, name_bytes = entry.partition(b"\t")
        mode, kind, blob = meta.decode().split(" ")
        name = name_bytes.decode("utf-8", "surrogateescape")
        if kind == "blob" and mode in _REGULAR_FILES and _wanted(name, named, folders):
            blobs.append((blob, name))
    with tempfile.TemporaryDirectory(prefix="reconciler-revision-") as folder:
        root = Path(folder)
        _write_blobs(blobs, root, top)
        (root / ".git").mkdir()  # the search for the project file stops here, as in the tree
        present = tuple(str(root / p) for p in relative if (root / p).exists() or p in ("", "."))
        yield Revision(ref=ref, commit=commit, top=top, root=root, paths=present)


def _write_blobs(blobs: list[tuple[str, str]], root: Path, top: Path) -> None:
    """Every blob's content at its path under ``root``, read in one ``git cat-file`` run."""
    if not blobs:
        return
    request = "".join(f"{blob}\n" for blob, _ in blobs).encode()
    output = _git(["cat-file", "--batch"], top, "read the revision's files", stdin=request)
    offset = 0
    for _blob, name in blobs:
        header_end = output.index(b"\n", offset)
        size = int(output[offset:header_end].split(b" ")[2])
        content = output[header_end + 1 : header_end + 1 + size]
        offset = header_end + 1 + size + 1  # the content is followed by a newline
        target = root / name
        if not target.resolve().is_relative_to(root.resolve()):
            continue  # a name git would never store; never write outside the folder
        os.makedirs(target.parent, exist_ok=True)
        target.write_bytes(content)
