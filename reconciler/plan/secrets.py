"""Resolve secret references (``fromEnv``, ``fromFile``) into ``Sensitive`` values.

A problem is a diagnostic at the reference's ``file:line:col`` that names the variable or the
file, never the value. Files are read relative to the manifest that names them; the service
account key is sent as base64 of the file's bytes, other secrets as text (a trailing newline,
as editors add, is dropped).
"""

from __future__ import annotations

import base64
import os
import stat
from collections.abc import Mapping

from reconciler.diagnostics import Diagnostic, error
from reconciler.manifest.document import Document
from reconciler.mapping.values import Sensitive
from reconciler.models.common import FromEnv, FromFile
from reconciler.validate.model_errors import format_path

# The longest value each secret column holds (docs/domain.md §2).
MAX_LENGTH = {
    "applicationSecret": 100,
    "accessToken": 500,
    "clientToken": 500,
    "serviceAccountKey": 8000,
}
BASE64 = frozenset({"serviceAccountKey"})
# More than any secret column holds, even as 4-byte UTF-8 (the rest is never read).
MAX_FILE_BYTES = 64 * 1024


class SecretProblem(Exception):
    """A secret that cannot be read; the message names its source, never a value."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


def read_secret(source: str, field: str, environ: Mapping[str, str]) -> Sensitive:
    """The secret ``field`` from ``source`` (``env:NAME`` or ``file:PATH``), checked and
    encoded as the column holds it; ``SecretProblem`` when it cannot be."""
    scheme, _, name = source.partition(":")
    raw: bytes
    if scheme == "env":
        text = environ.get(name)
        if text is None:
            raise SecretProblem("secret-missing", f"environment variable {name} is not set")
        raw = text.encode("utf-8")
    elif scheme == "file":
        try:
            raw = _read_file(name)
        except OSError as exc:
            reason = exc.strerror or type(exc).__name__
            raise SecretProblem(
                "secret-missing", f"cannot read secret file {name}: {reason}"
            ) from None
    else:
        raise SecretProblem("secret-invalid", f"unknown secret source {scheme!r}")
    if field in BASE64:
        value = base64.b64encode(raw).decode("ascii")
    else:
        try:
            value = raw.decode("utf-8").removesuffix("\n").removesuffix("\r")
        except UnicodeDecodeError:
            raise SecretProblem(
                "secret-invalid", f"the secret from {source} is not UTF-8 text"
            ) from None
    if not value.strip():
        raise SecretProblem("secret-invalid", f"the secret from {source} is empty")
    limit = MAX_LENGTH.get(field)
    if limit is not None and len(value) > limit:
        raise SecretProblem(
            "secret-invalid",
            f"the secret from {source} is {len(value)} characters long; "
            f"Dataverse holds at most {limit}",
        )
    return Sensitive(value, source)


class SecretResolver:
    """Resolves the references of manifests; problems become diagnostics at the reference."""

    def __init__(self, environ: Mapping[str, str]) -> None:
        self.environ = environ
        self.problems: list[Diagnostic] = []

    def __call__(
        self, ref: FromEnv | FromFile, document: Document, path: tuple[str | int, ...]
    ) -> Sensitive | None:
        if isinstance(ref, FromEnv):
            source = f"env:{ref.from_env}"
        else:
            folder = os.path.dirname(document.source.file)
            source = f"file:{os.path.normpath(os.path.join(folder, ref.from_file))}"
        try:
            return read_secret(source, str(path[-1]), self.environ)
        except SecretProblem as problem:
            message = f"{format_path(path)}: {problem}"
            self.problems.append(error(problem.code, message, document.at(*path)))
            return None


def _read_file(path: str) -> bytes:
    """A secret file's bytes: only a regular file (a FIFO would block, a link to /dev/zero
    never end), and only as much as a secret column can hold."""
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0)
    descriptor = os.open(path, flags)
    with open(descriptor, "rb") as handle:
        if not stat.S_ISREG(os.fstat(descriptor).st_mode):
            raise SecretProblem("secret-invalid", f"secret file {path} is not a regular file")
        raw = handle.read(MAX_FILE_BYTES + 1)
    if len(raw) > MAX_FILE_BYTES:
        raise SecretProblem(
            "secret-invalid", f"secret file {path} is larger than {MAX_FILE_BYTES} bytes"
        )
    return raw
