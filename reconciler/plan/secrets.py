"""Resolve secret references (``fromEnv``, ``fromFile``) into ``Sensitive`` values.

A problem is a diagnostic at the reference's ``file:line:col`` that names the variable or the
file, never the value. Files are read relative to the manifest that names them; the service
account key is sent as base64 of the file's bytes, other secrets as text (a trailing newline,
as editors add, is dropped).
"""

from __future__ import annotations

import base64
import os
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


class SecretResolver:
    def __init__(self, environ: Mapping[str, str]) -> None:
        self.environ = environ
        self.problems: list[Diagnostic] = []

    def __call__(
        self, ref: FromEnv | FromFile, document: Document, path: tuple[str | int, ...]
    ) -> Sensitive | None:
        field = str(path[-1])
        where = document.at(*path)
        prefix = f"{format_path(path)}: "
        raw: bytes | None
        if isinstance(ref, FromEnv):
            source = f"env:{ref.from_env}"
            text = self.environ.get(ref.from_env)
            if text is None:
                message = f"environment variable {ref.from_env} is not set"
                self.problems.append(error("secret-missing", prefix + message, where))
                return None
            raw = text.encode("utf-8")
        else:
            folder = os.path.dirname(document.source.file)
            file = os.path.normpath(os.path.join(folder, ref.from_file))
            source = f"file:{file}"
            try:
                with open(file, "rb") as handle:
                    raw = handle.read()
            except OSError as exc:
                reason = exc.strerror or type(exc).__name__
                message = f"cannot read secret file {file}: {reason}"
                self.problems.append(error("secret-missing", prefix + message, where))
                return None
        if field in BASE64:
            value = base64.b64encode(raw).decode("ascii")
        else:
            try:
                value = raw.decode("utf-8").removesuffix("\n").removesuffix("\r")
            except UnicodeDecodeError:
                message = f"the secret from {source} is not UTF-8 text"
                self.problems.append(error("secret-invalid", prefix + message, where))
                return None
        limit = MAX_LENGTH.get(field)
        if not value.strip():
            message = f"the secret from {source} is empty"
            self.problems.append(error("secret-invalid", prefix + message, where))
            return None
        if limit is not None and len(value) > limit:
            message = (
                f"the secret from {source} is {len(value)} characters long; "
                f"Dataverse holds at most {limit}"
            )
            self.problems.append(error("secret-invalid", prefix + message, where))
            return None
        return Sensitive(value, source)
