"""Finding manifest files: ``*.yaml``/``*.yml`` under the given paths, hidden entries skipped.

A file found by walking a folder is read only if its real path (links resolved) is inside that
folder: a pull request can commit a link, and a link to ``/proc/self/environ`` or a file
outside the checkout would have its content quoted back in error messages (docs/security.md).
A file named on the command line is read wherever it is: the pipeline chose it.

The project file (``reconciler.yaml``) is the one inside a folder given, else the nearest one
above the paths, the way git finds ``.git``: the search goes up from each path's folder and
stops at the repository root (a folder of the user's holding ``.git``; outside a repository,
the working folder; never in or above a folder anyone may write to), so
``reconciler validate manifests`` finds the ``reconciler.yaml`` at the repository root.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Sequence
from dataclasses import dataclass, field

MANIFEST_SUFFIXES = (".yaml", ".yml")
PROJECT_FILE_NAMES = ("reconciler.yaml", "reconciler.yml")


@dataclass
class Discovery:
    manifests: list[str] = field(default_factory=list)
    project_files: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    outside: list[str] = field(default_factory=list)
    """Files found in a folder that are links to somewhere outside it: not read."""


def _is_hidden(name: str) -> bool:
    return name.startswith(".") and name not in (".", "..")


def discover(paths: Sequence[str]) -> Discovery:
    """Files in a stable order. A file named on the command line is taken whatever its name."""
    found = Discovery()
    seen: set[str] = set()

    def add(path: str, within: str | None = None) -> None:
        path = os.path.normpath(path)
        key = os.path.realpath(path)
        if within is not None and os.path.commonpath([key, within]) != within:
            found.outside.append(path)
            return
        if key in seen:
            return
        seen.add(key)
        if os.path.basename(path) in PROJECT_FILE_NAMES:
            found.project_files.append(path)
        else:
            found.manifests.append(path)

    for root in paths:
        before = len(found.project_files)
        if os.path.isfile(root):
            add(root)
        elif os.path.isdir(root):
            within = os.path.realpath(root)
            for directory, subdirs, files in os.walk(root):
                subdirs[:] = sorted(d for d in subdirs if not _is_hidden(d))
                for name in sorted(files):
                    if not _is_hidden(name) and name.endswith(MANIFEST_SUFFIXES):
                        add(os.path.join(directory, name), within)
        else:
            found.missing.append(root)
            continue
        if len(found.project_files) == before:  # none inside: the nearest one above
            start = root if os.path.isdir(root) else os.path.dirname(root) or "."
            above = project_file_above(start)
            if above is not None:
                add(above, os.path.realpath(os.path.dirname(above) or "."))
    return found


def project_file_above(start: str) -> str | None:
    """The nearest ``reconciler.yaml`` in ``start`` or a folder above it, up to ``boundary``
    (folders compared with links resolved); named relative to the working folder."""
    folder = os.path.realpath(start)
    last = boundary(folder)
    while True:
        for name in PROJECT_FILE_NAMES:
            candidate = os.path.join(folder, name)
            if os.path.isfile(candidate):
                return _shown(candidate)
        parent = os.path.dirname(folder)
        if folder == last or parent == folder:
            return None
        folder = parent


def boundary(folder: str) -> str:
    """Where the search for the project file from ``folder`` (a real path) stops: the
    repository's root (the nearest folder above holding ``.git``, a folder or a worktree's
    file, in a folder of the user running: like git's ``safe.directory``); outside a
    repository the working folder when ``folder`` is in it (and it is not the file system's
    root), else ``folder`` itself. Never a folder anyone may write to (``/tmp``) or one above
    it: a ``reconciler.yaml`` or ``.git`` someone else put there never steers a project's
    target, namespace or secrets folder."""
    probe, below = folder, folder
    while not _anyone_writes(probe):
        if os.path.exists(os.path.join(probe, ".git")) and _ours(probe):
            return probe
        parent = os.path.dirname(probe)
        if parent == probe:
            below = probe
            break
        below, probe = probe, parent
    here = os.path.realpath(os.curdir)
    if os.path.dirname(here) == here or os.path.commonpath([folder, here]) != here:
        return folder
    return max(here, below, key=len)  # both hold ``folder``: the nearer of the two


def _anyone_writes(folder: str) -> bool:
    try:
        return bool(os.stat(folder).st_mode & stat.S_IWOTH)
    except OSError:
        return True


def _ours(folder: str) -> bool:
    """The folder belongs to the user running (always, where there are no user ids)."""
    getuid = getattr(os, "getuid", None)
    try:
        return getuid is None or os.stat(folder).st_uid == getuid()
    except OSError:
        return False


def _shown(path: str) -> str:
    """``path`` as messages show it: relative to the working folder (``../reconciler.yaml``),
    absolute when that is shorter to read (another tree)."""
    try:
        relative = os.path.relpath(path)
    except ValueError:  # pragma: no cover - another drive (Windows)
        return path
    return relative if relative.count("..") <= 3 else path
