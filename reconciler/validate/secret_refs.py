"""The trust rules for secret references, checked offline (``plan/secrets.py`` has them).

``fromEnv`` may not name a credential variable of the reconciler or the CI system. A
``fromFile`` path must lie inside the project folder (or a ``RECONCILER_SECRET_DIRS`` folder):
the file need not exist yet (CI writes a key file just before ``plan``), but where it or a
folder on its way exists, links are resolved first, and a file that exists must be a regular
file. Diagnostics name the variable or the path, never a value.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from pydantic import BaseModel

from reconciler.diagnostics import Diagnostic, error
from reconciler.manifest.document import Document
from reconciler.models.common import FromEnv, FromFile
from reconciler.plan.secrets import (
    CREDENTIAL_VARIABLE,
    Confinement,
    SecretProblem,
    SecretResolver,
    credential_problem,
    file_source,
    is_credential_variable,
)
from reconciler.validate.model_errors import format_path

Path = tuple[str | int, ...]


def references(value: Any, path: Path = ()) -> Iterator[tuple[FromEnv | FromFile, Path]]:
    """Every secret reference in a manifest model, with its path in manifest keys."""
    if isinstance(value, FromEnv | FromFile):
        yield value, path
    elif isinstance(value, BaseModel):
        for name, info in type(value).model_fields.items():
            yield from references(getattr(value, name), (*path, info.alias or name))
    elif isinstance(value, list | tuple):
        for index, item in enumerate(value):
            yield from references(item, (*path, index))
    elif isinstance(value, dict):
        for key, item in value.items():
            if isinstance(key, str):
                yield from references(item, (*path, key))


def check(
    documents: Sequence[Document], project_file: str | None, environ: Mapping[str, str]
) -> list[Diagnostic]:
    """The references of ``documents`` that break a trust rule. The project folder is the
    folder of ``project_file``, or without one, each manifest's own folder."""
    found: list[Diagnostic] = []
    # The folder plan reads files in too: one rule, ``SecretResolver.confinement``.
    project_folder = None if project_file is None else (os.path.dirname(project_file) or ".")
    where = SecretResolver(environ, project_folder, upward=False)
    for document in documents:
        confinement = where.confinement(document)
        for ref, path in references(document.manifest):
            problem = _problem(ref, document, confinement)
            if problem is not None:
                code, message = problem
                location = document.at(*path)
                found.append(error(code, f"{format_path(path)}: {message}", location))
    return found


def _problem(
    ref: FromEnv | FromFile, document: Document, confinement: Confinement
) -> tuple[str, str] | None:
    if isinstance(ref, FromEnv):
        if is_credential_variable(ref.from_env):
            return CREDENTIAL_VARIABLE, credential_problem(ref.from_env)
        return None
    path = file_source(document, ref)
    try:
        real = confinement.check(path, ref.from_file)
    except SecretProblem as problem:
        return problem.code, str(problem)
    try:
        mode = os.stat(real).st_mode
    except OSError:
        return None  # not there yet: plan says so if it still is not
    if not stat.S_ISREG(mode):
        return "secret-invalid", f"secret file {ref.from_file} is not a regular file"
    return None
