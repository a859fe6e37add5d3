"""Resolve secret references (``fromEnv``, ``fromFile``) into ``Sensitive`` values.

A problem is a diagnostic at the reference's ``file:line:col`` that names the variable or the
file, never the value. Files are read relative to the manifest that names them; the service
account key is sent as base64 of the file's bytes, other secrets as text (a trailing newline,
as editors add, is dropped).

**Trust** (docs/troubleshooting.md, "A secret is refused"). CI plans pull requests it does not
trust with real credentials in its environment, so a manifest can name only what belongs to
the project:

- ``fromFile`` reads only inside the *project folder* (the folder of ``reconciler.yaml`` when
  the manifests have one, else the folder of the manifest naming the file) or a folder listed
  in ``RECONCILER_SECRET_DIRS``, after resolving links (``os.path.realpath``), never below a
  ``.git`` folder, and only a regular file. ``apply`` re-reads the sources a plan records,
  and a saved plan can be edited: there a file must be inside the working folder, or inside
  the project folder its path is written in (``Confinement.for_saved_plan``).
- ``fromEnv`` never names a variable of ``CREDENTIAL_VARIABLES``: the reconciler's own sign-in
  and the CI system's tokens.
"""

from __future__ import annotations

import base64
import os
import stat
from collections.abc import Mapping

from reconciler.diagnostics import Diagnostic, error
from reconciler.errors import UsageError
from reconciler.manifest.discover import PROJECT_FILE_NAMES
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

SECRET_DIRS_VARIABLE = "RECONCILER_SECRET_DIRS"
"""Absolute folders, separated by ``os.pathsep``, that ``fromFile`` may read besides the
project folder (e.g. where the pipeline writes a key file outside the checkout)."""

OUTSIDE_PROJECT = "secret-outside-project"
CREDENTIAL_VARIABLE = "secret-credential-variable"
REFUSED = frozenset({OUTSIDE_PROJECT, CREDENTIAL_VARIABLE})
"""Codes of references the reconciler never reads (a trust rule, not a missing value)."""

# Variables a manifest's fromEnv may never name: their values are credentials of the pipeline
# itself, and a secret is written into a record of the target (a Facebook app's secret field),
# where whoever can read that record would read the pipeline's credential. Compared without
# regard to case: Windows environment names are case-insensitive, so on a Windows runner
# `fromEnv: github_token` would read GITHUB_TOKEN.
CREDENTIAL_VARIABLES = frozenset(
    {
        # The reconciler's own sign-in and plan signing (docs/authentication.md; spec §3-4):
        # a bearer token, client credentials, the key that signs saved plans.
        "DATAVERSE_TOKEN",
        "RECONCILER_PLAN_KEY",
        "AZURE_TENANT_ID",
        "AZURE_CLIENT_ID",
        "AZURE_CLIENT_SECRET",
        # azure-identity's EnvironmentCredential, workload identity and managed identity
        # (RECONCILER_AUTH=azure-identity), as azure-identity reads them:
        # https://github.com/Azure/azure-sdk-for-python/blob/main/sdk/identity/azure-identity/azure/identity/_constants.py
        # https://learn.microsoft.com/dotnet/api/azure.identity.environmentcredential
        "AZURE_CLIENT_CERTIFICATE_PATH",
        "AZURE_CLIENT_CERTIFICATE_PASSWORD",
        "AZURE_USERNAME",
        "AZURE_PASSWORD",
        "AZURE_FEDERATED_TOKEN_FILE",
        "IDENTITY_ENDPOINT",
        "IDENTITY_HEADER",
        "IDENTITY_SERVER_THUMBPRINT",
        "MSI_ENDPOINT",
        "MSI_SECRET",
        # GitHub Actions: the job's token ("Automatic token authentication",
        # https://docs.github.com/en/actions/security-for-github-actions/security-guides/automatic-token-authentication)
        # and the GitHub CLI's names for it (https://cli.github.com/manual/gh_help_environment);
        # the OIDC request token and URL a job with `id-token: write` gets
        # (https://docs.github.com/en/actions/security-for-github-actions/security-hardening-your-deployments/about-security-hardening-with-openid-connect);
        # the runner's own service token and URLs, which the runner sets for actions
        # (https://github.com/actions/runner/blob/main/src/Runner.Worker/Handlers/NodeScriptActionHandler.cs).
        "GITHUB_TOKEN",
        "GH_TOKEN",
        "ACTIONS_ID_TOKEN_REQUEST_TOKEN",
        "ACTIONS_ID_TOKEN_REQUEST_URL",
        "ACTIONS_RUNTIME_TOKEN",
        "ACTIONS_RUNTIME_URL",
        "ACTIONS_CACHE_URL",
        "ACTIONS_RESULTS_URL",
        # Azure Pipelines: System.AccessToken, "the security token used by the running build",
        # and System.OidcRequestUri, where a job asks for an OIDC token with it
        # (https://learn.microsoft.com/azure/devops/pipelines/build/variables).
        "SYSTEM_ACCESSTOKEN",
        "SYSTEM_OIDCREQUESTURI",
        # The AzureCLI@2 task with addSpnToEnvironment: "service principal ID, service
        # principal key and tenant ID ... servicePrincipalKey, idToken"
        # (https://learn.microsoft.com/azure/devops/pipelines/tasks/reference/azure-cli-v2).
        "SERVICEPRINCIPALKEY",  # compared in upper case (is_credential_variable)
        "IDTOKEN",
    }
)


def is_credential_variable(name: str) -> bool:
    """``name`` is one of ``CREDENTIAL_VARIABLES``, in any case."""
    return name.upper() in CREDENTIAL_VARIABLES


def credential_problem(name: str) -> str:
    return (
        f"fromEnv names {name}, a credential of the CI system or of the reconciler itself, "
        "which is never sent to the target; put the secret in a variable of its own (such as "
        "FB_APP_SECRET) and name that"
    )


class SecretProblem(Exception):
    """A secret that cannot be read; the message names its source, never a value."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code

    @property
    def refused(self) -> bool:
        """A trust rule refuses the source (it is never read), rather than it being unset,
        unreadable or unfit."""
        return self.code in REFUSED


def secret_dirs(environ: Mapping[str, str]) -> tuple[str, ...]:
    """The folders ``RECONCILER_SECRET_DIRS`` lists, as real paths; ``UsageError`` naming an
    entry that is relative or not an existing folder (empty entries are skipped)."""
    folders: list[str] = []
    for entry in environ.get(SECRET_DIRS_VARIABLE, "").split(os.pathsep):
        if not entry:
            continue
        if not os.path.isabs(entry):
            raise UsageError(
                f"{SECRET_DIRS_VARIABLE}: {entry!r} is not an absolute path; list absolute "
                f"folders separated by {os.pathsep!r}"
            )
        if not os.path.isdir(entry):
            raise UsageError(f"{SECRET_DIRS_VARIABLE}: {entry!r} is not an existing folder")
        folders.append(os.path.realpath(entry))
    return tuple(folders)


class Confinement:
    """Where secret files may be read from: a home folder (the project folder, or the working
    folder for a saved plan) and the ``RECONCILER_SECRET_DIRS`` folders, read lazily so that a
    mistake in that variable only matters to a run that reads a file."""

    def __init__(
        self,
        home: str,
        shown: str,
        hint: str,
        environ: Mapping[str, str],
        *,
        own_project: bool = False,
    ) -> None:
        self.home = os.path.realpath(home)
        self.shown = shown
        self.hint = hint
        self.environ = environ
        self.own_project = own_project
        """Also allow a file inside the project folder it is written in (``project_above``)."""
        self._folders: tuple[str, ...] | None = None

    @classmethod
    def for_project(cls, folder: str, environ: Mapping[str, str]) -> Confinement:
        """Files of a project whose folder is ``folder``."""
        return cls(
            folder or ".",
            f"the project folder {os.path.join(folder or '.', '')}",
            f"move the file into the project folder, or list its folder in {SECRET_DIRS_VARIABLE}",
            environ,
        )

    @classmethod
    def for_saved_plan(cls, environ: Mapping[str, str]) -> Confinement:
        """The files a plan records (``file:PATH``, relative to where it was made): inside the
        working folder, where the pipeline checked out the repository, or inside the project
        folder the path is written in (``apply /elsewhere/project``: a plan apply makes and
        carries out at once records the paths it read, outside the working folder)."""
        cwd = os.getcwd()
        return cls(
            cwd,
            f"the working folder {os.path.join(cwd, '')} and any project folder (one holding "
            "a reconciler.yaml)",
            "apply the plan from the folder it was made in, or list the file's folder in "
            f"{SECRET_DIRS_VARIABLE}",
            environ,
            own_project=True,
        )

    @property
    def folders(self) -> tuple[str, ...]:
        if self._folders is None:
            self._folders = (self.home, *secret_dirs(self.environ))
        return self._folders

    def check(self, path: str, shown: str | None = None) -> str:
        """The real path of the secret file ``path`` (relative to the working folder) when it
        may be read; ``SecretProblem`` naming it (as ``shown``, say as the manifest writes it)
        when not. The file need not exist."""
        real = os.path.realpath(path)
        shown = path if shown is None else shown
        folder = next((f for f in self.folders if _within(real, f)), None)
        if folder is None and self.own_project:
            project = project_above(os.path.dirname(os.path.abspath(path)))
            if project is not None and _within(real, os.path.realpath(project)):
                folder = os.path.realpath(project)
        if folder is None:
            where = self.shown
            if len(self.folders) > 1:
                where += f" and the folders of {SECRET_DIRS_VARIABLE}"
            resolved = f" (it resolves to {real})" if real != os.path.abspath(path) else ""
            raise SecretProblem(
                OUTSIDE_PROJECT,
                f"secret file {shown} is outside {where}{resolved}; {self.hint}",
            )
        below = os.path.relpath(real, folder).split(os.sep)
        if any(part.casefold() == ".git" for part in below):
            raise SecretProblem(
                OUTSIDE_PROJECT,
                f"secret file {shown} is inside a .git folder, which holds git's own files (a "
                "CI checkout keeps its token there), not the project's; keep secret files "
                "outside .git",
            )
        return real


def _within(path: str, folder: str) -> bool:
    try:
        common = os.path.commonpath([os.path.normcase(path), os.path.normcase(folder)])
    except ValueError:  # different drives
        return False
    return common == os.path.normcase(folder)


def read_secret(
    source: str,
    field: str,
    environ: Mapping[str, str],
    confinement: Confinement | None = None,
) -> Sensitive:
    """The secret ``field`` from ``source`` (``env:NAME`` or ``file:PATH``), checked and
    encoded as the column holds it; ``SecretProblem`` when it cannot be or may not be read
    (a credential variable, a file outside ``confinement``: by default the working folder
    and ``RECONCILER_SECRET_DIRS``, where a saved plan's files may be)."""
    scheme, _, name = source.partition(":")
    raw: bytes
    if scheme == "env":
        if is_credential_variable(name):
            raise SecretProblem(CREDENTIAL_VARIABLE, credential_problem(name))
        text = environ.get(name)
        if text is None:
            raise SecretProblem("secret-missing", f"environment variable {name} is not set")
        raw = text.encode("utf-8")
    elif scheme == "file":
        if confinement is None:
            confinement = Confinement.for_saved_plan(environ)
        real = confinement.check(name)
        try:
            raw = _read_file(real, name)
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


def file_source(document: Document, ref: FromFile) -> str:
    """Where ``ref`` reads from: its path joined to the manifest's folder, as plans record it
    (``file:PATH``, relative to the working folder when the manifest's path is)."""
    folder = os.path.dirname(document.source.file)
    return os.path.normpath(os.path.join(folder, ref.from_file))


def project_above(folder: str) -> str | None:
    """The nearest folder, from ``folder`` upward (without resolving links), that holds a
    project file (``reconciler.yaml``), as an absolute path; None when none does."""
    probe = os.path.abspath(folder)
    while True:
        if any(os.path.isfile(os.path.join(probe, name)) for name in PROJECT_FILE_NAMES):
            return probe
        parent = os.path.dirname(probe)
        if parent == probe:
            return None
        probe = parent


def nearest_project_folder(manifest: str) -> str:
    """The project folder of a manifest when the project file the run uses is not known:
    ``project_above`` the manifest, else the manifest's own folder. ``validate`` knows the
    project file, and is as strict or stricter."""
    folder = os.path.dirname(manifest) or "."
    return project_above(folder) or folder


class SecretResolver:
    """Resolves the references of manifests; problems become diagnostics at the reference.

    ``project_folder`` is the folder of the project file the run uses (``validate``'s
    ``Report.project_folder``); without it each manifest's is looked for upward, or, with
    ``upward=False`` (a run that knows it has no project file, as ``validate`` does), it is the
    manifest's own folder."""

    def __init__(
        self,
        environ: Mapping[str, str],
        project_folder: str | None = None,
        *,
        upward: bool = True,
    ) -> None:
        self.environ = environ
        self.project_folder = project_folder
        self.upward = upward
        self.problems: list[Diagnostic] = []
        self._confinements: dict[str, Confinement] = {}

    def confinement(self, document: Document) -> Confinement:
        folder = self.project_folder
        if folder is None and self.upward:
            folder = nearest_project_folder(document.source.file)
        elif folder is None:
            folder = os.path.dirname(document.source.file) or "."
        if folder not in self._confinements:
            self._confinements[folder] = Confinement.for_project(folder, self.environ)
        return self._confinements[folder]

    def __call__(
        self, ref: FromEnv | FromFile, document: Document, path: tuple[str | int, ...]
    ) -> Sensitive | None:
        if isinstance(ref, FromEnv):
            source = f"env:{ref.from_env}"
        else:
            source = f"file:{file_source(document, ref)}"
        try:
            return read_secret(source, str(path[-1]), self.environ, self.confinement(document))
        except SecretProblem as problem:
            message = f"{format_path(path)}: {problem}"
            self.problems.append(error(problem.code, message, document.at(*path)))
            return None


def _read_file(path: str, shown: str) -> bytes:
    """A secret file's bytes: only a regular file (a FIFO would block, a link to /dev/zero
    never end), and only as much as a secret column can hold. ``path`` is the real path
    ``Confinement.check`` allowed; it is opened without following a link that replaced it
    since."""
    flags = (
        os.O_RDONLY
        | getattr(os, "O_NONBLOCK", 0)
        | getattr(os, "O_BINARY", 0)
        | getattr(os, "O_NOFOLLOW", 0)
    )
    descriptor = os.open(path, flags)
    with open(descriptor, "rb") as handle:
        if not stat.S_ISREG(os.fstat(descriptor).st_mode):
            raise SecretProblem("secret-invalid", f"secret file {shown} is not a regular file")
        raw = handle.read(MAX_FILE_BYTES + 1)
    if len(raw) > MAX_FILE_BYTES:
        raise SecretProblem(
            "secret-invalid", f"secret file {shown} is larger than {MAX_FILE_BYTES} bytes"
        )
    return raw
