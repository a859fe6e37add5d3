"""Secrets stay in the project (spec §4, Trust): ``fromFile`` reads only inside the project
folder or a ``RECONCILER_SECRET_DIRS`` folder, ``fromEnv`` never names a credential variable of
the reconciler or the CI system; ``validate``, ``plan`` and ``apply`` (a saved plan too, which
can be edited) refuse both, naming the path or the variable, never a value, before writing
anything."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest
from examples_project import KEY_FILE, MARKERS, copy_examples

from reconciler.apply.applier import ApplyRefused, resolve_secrets
from reconciler.cli import main
from reconciler.errors import UsageError
from reconciler.manifest.document import Document
from reconciler.manifest.yaml_loader import load_file
from reconciler.models.common import FromEnv, FromFile
from reconciler.models.manifest import FacebookAccountManifest
from reconciler.plan.definition import Plan, compute_checksum
from reconciler.plan.secrets import (
    CREDENTIAL_VARIABLES,
    Confinement,
    SecretProblem,
    SecretResolver,
    is_credential_variable,
    read_secret,
    secret_dirs,
)
from reconciler.validate.pipeline import Options, validate

OUTSIDE = "MARKER-outside-the-project-3c3c"
CREDENTIAL = "MARKER-pipeline-credential-9a9a"
DB = Path("examples/.reconciler/dev.db")  # relative to examples/reconciler.yaml
KEY = "examples/gbm-service-account.json"


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.delenv("RECONCILER_SECRET_DIRS", raising=False)
    return copy_examples(tmp_path, monkeypatch)


@pytest.fixture
def outside(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A file outside the project and outside the working folder (a pipeline's secret)."""
    path = tmp_path_factory.mktemp("elsewhere") / "outside.txt"
    path.write_text(OUTSIDE + "\n")
    return path


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main([*args, "--no-color"])
    out, err = capsys.readouterr()
    return code, out, err


def refer(project: Path, reference: str) -> tuple[int, int]:
    """Make the Facebook app secret ``reference``; the line and column it is written at."""
    manifest = project / "facebook.yaml"
    text = manifest.read_text()
    old = "applicationSecret: {fromEnv: FB_APP_SECRET}"
    assert text.count(old) == 1
    manifest.write_text(text.replace(old, f"applicationSecret: {reference}"))
    (number, line), *_ = [(n, line) for n, line in enumerate(text.splitlines(), 1) if old in line]
    return number, line.index("applicationSecret") + 1


def from_file(project: Path, outside: Path, how: str) -> str:
    """The path a manifest beside ``project``'s files writes to reach ``outside``."""
    if how == "dotdot":
        return os.path.relpath(outside, project)
    if how == "absolute":
        return str(outside)
    (project / "link.txt").symlink_to(outside)  # an in-project link to a file outside
    return "link.txt"


def assert_clean(text: str) -> None:
    for marker in [OUTSIDE, CREDENTIAL, *MARKERS]:
        assert marker not in text


HOW = ["dotdot", "absolute", "symlink"]
COMMANDS = [
    ("validate", "examples"),
    ("plan", "examples", "--env", "dev"),
    ("apply", "examples", "--env", "dev", "--yes"),
]


# --- fromFile ---------------------------------------------------------------------------------


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: c[0])
@pytest.mark.parametrize("how", HOW)
def test_a_file_outside_the_project_is_refused_at_the_reference(
    project, outside, capsys, how, command
):
    path = from_file(project, outside, how)
    line, column = refer(project, f"{{fromFile: {path}}}")
    code, out, err = run(capsys, *command)
    assert code == 1
    expected = (
        f"examples/facebook.yaml:{line}:{column}: error: spec.applicationSecret: secret file "
        f"{path} is outside the project folder examples/"
    )
    assert expected in out + err
    assert "list its folder in RECONCILER_SECRET_DIRS" in out + err
    if how == "symlink":
        assert f"(it resolves to {os.path.realpath(outside)})" in out + err
    assert_clean(out + err)
    assert not DB.exists()  # plan and apply stopped before the target


def test_validate_gives_the_code_and_never_needs_the_file(project, capsys):
    line, column = refer(project, "{fromFile: ../not-there-yet.txt}")
    code, out, _ = run(capsys, "validate", "examples", "--format", "json")
    assert code == 1
    (problem,) = [d for d in json.loads(out)["diagnostics"] if d["severity"] == "error"]
    assert problem["code"] == "secret-outside-project"
    assert (problem["line"], problem["column"]) == (line, column)
    assert "secret file ../not-there-yet.txt is outside" in problem["message"]


def test_a_file_inside_the_project_need_not_exist_when_validating(project, capsys):
    (project / "gbm-service-account.json").unlink()  # CI writes it just before plan
    code, out, err = run(capsys, "validate", "examples")
    assert (code, err) == (0, ""), out
    refer(project, "{fromFile: secrets/app-secret.txt}")  # nor need its folder
    code, out, err = run(capsys, "validate", "examples")
    assert (code, err) == (0, ""), out


def test_links_inside_the_project_are_followed(project, capsys):
    (project / "secrets").mkdir()
    (project / "secrets" / "app.txt").write_text("MARKER-app-secret-7f3a\n")
    (project / "app-link.txt").symlink_to("secrets/app.txt")
    refer(project, "{fromFile: app-link.txt}")
    code, out, err = run(capsys, "apply", "examples", "--env", "dev", "--yes")
    assert (code, err) == (0, ""), out
    assert_clean(out + err)


def test_a_linked_folder_that_leads_outside_is_refused_even_for_a_missing_file(
    project, outside, capsys
):
    (project / "keys").symlink_to(outside.parent, target_is_directory=True)
    refer(project, "{fromFile: keys/not-there.txt}")
    code, out, _ = run(capsys, "validate", "examples")
    assert code == 1
    assert "secret file keys/not-there.txt is outside the project folder examples/" in out


def test_the_git_folder_is_never_read_even_inside_the_project(project, capsys):
    # actions/checkout keeps the job's token in .git/config (persist-credentials, the default).
    (project / ".git").mkdir()
    (project / ".git" / "config").write_text(f"[http]\n\textraheader = {CREDENTIAL}\n")
    line, column = refer(project, "{fromFile: .git/config}")
    for command in COMMANDS:
        code, out, err = run(capsys, *command)
        assert code == 1
        assert (
            f"examples/facebook.yaml:{line}:{column}: error: spec.applicationSecret: secret "
            "file .git/config is inside a .git folder"
        ) in out + err
        assert_clean(out + err)
    assert not DB.exists()


def test_a_file_that_is_not_regular_is_refused_without_being_opened(project, capsys):
    os.mkfifo(project / "pipe")  # opening it to read would block for ever
    refer(project, "{fromFile: pipe}")
    code, out, _ = run(capsys, "validate", "examples")
    assert code == 1
    assert "spec.applicationSecret: secret file pipe is not a regular file" in out


def test_the_project_folder_is_the_folder_of_reconciler_yaml(project, capsys):
    # A manifest in a sub-folder reads a file of the project beside reconciler.yaml ...
    sub = project / "accounts"
    sub.mkdir()
    (project / "facebook.yaml").rename(sub / "facebook.yaml")
    (project / "app-secret.txt").write_text("MARKER-app-secret-7f3a\n")
    refer(sub, "{fromFile: ../app-secret.txt}")
    code, out, err = run(capsys, "apply", "examples", "--env", "dev", "--yes")
    assert (code, err) == (0, ""), out
    assert_clean(out + err)
    # ... but without a project file, a manifest's folder is its project folder.
    (project / "reconciler.yaml").unlink()
    code, out, _ = run(capsys, "validate", "examples/accounts", "--var", "FB_APP_ID=1")
    assert code == 1
    assert "secret file ../app-secret.txt is outside the project folder examples/accounts/" in out


# --- RECONCILER_SECRET_DIRS -------------------------------------------------------------------


def test_a_folder_listed_in_reconciler_secret_dirs_is_allowed(
    project, outside, capsys, monkeypatch
):
    key = outside.parent / "gbm-key.json"
    key.write_text(KEY_FILE)
    (project / "gbm-service-account.json").unlink()
    gbm = project / "google-business-messages.yaml"
    gbm.write_text(gbm.read_text().replace("gbm-service-account.json", str(key)))
    code, out, _ = run(capsys, "validate", "examples")
    assert code == 1
    assert f"secret file {key} is outside the project folder examples/" in out

    monkeypatch.setenv("RECONCILER_SECRET_DIRS", os.pathsep.join(["", str(outside.parent)]))
    code, out, err = run(capsys, "validate", "examples")
    assert (code, err) == (0, ""), out
    code, out, err = run(capsys, "plan", "examples", "--env", "dev", "--out", "p.json")
    assert (code, err) == (0, ""), out
    code, out, err = run(capsys, "apply", "--plan", "p.json", "--yes")
    assert (code, err) == (0, ""), out
    assert_clean(out + err + Path("p.json").read_text())


@pytest.mark.parametrize(
    ("entry", "problem"),
    [
        ("relative/keys", "is not an absolute path"),
        ("/no/such/folder", "is not an existing folder"),
    ],
)
def test_a_bad_reconciler_secret_dirs_entry_is_a_usage_error_naming_it(
    project, capsys, monkeypatch, entry, problem
):
    monkeypatch.setenv("RECONCILER_SECRET_DIRS", entry)
    code, _, err = run(capsys, "validate", "examples")
    assert code == 1
    assert err == f"error: RECONCILER_SECRET_DIRS: {entry!r} {problem}" + (
        f"; list absolute folders separated by {os.pathsep!r}\n" if "absolute" in problem else "\n"
    )
    with pytest.raises(UsageError, match=problem):
        secret_dirs({"RECONCILER_SECRET_DIRS": entry})


# --- fromEnv ----------------------------------------------------------------------------------


@pytest.mark.parametrize("command", COMMANDS[:2], ids=lambda c: c[0])
@pytest.mark.parametrize(
    "variable", ["DATAVERSE_TOKEN", "AZURE_CLIENT_SECRET", "GITHUB_TOKEN", "github_token"]
)
def test_a_credential_variable_is_refused_by_name(project, capsys, monkeypatch, variable, command):
    monkeypatch.setenv(variable, CREDENTIAL)
    line, column = refer(project, f"{{fromEnv: {variable}}}")
    code, out, err = run(capsys, *command)
    assert code == 1
    assert (
        f"examples/facebook.yaml:{line}:{column}: error: spec.applicationSecret: fromEnv names "
        f"{variable}, a credential of the CI system or of the reconciler itself"
    ) in out + err
    assert "put the secret in a variable of its own" in out + err
    assert_clean(out + err)
    assert not DB.exists()


def test_the_list_of_credential_variables():
    for name in [
        "DATAVERSE_TOKEN",
        "RECONCILER_PLAN_KEY",
        "AZURE_CLIENT_SECRET",
        "AZURE_CLIENT_CERTIFICATE_PATH",
        "AZURE_CLIENT_CERTIFICATE_PASSWORD",
        "AZURE_FEDERATED_TOKEN_FILE",
        "AZURE_PASSWORD",
        "AZURE_USERNAME",
        "GITHUB_TOKEN",
        "GH_TOKEN",
        "ACTIONS_ID_TOKEN_REQUEST_TOKEN",
        "ACTIONS_ID_TOKEN_REQUEST_URL",
        "ACTIONS_RUNTIME_TOKEN",
        "ACTIONS_RUNTIME_URL",
        "ACTIONS_CACHE_URL",
        "ACTIONS_RESULTS_URL",
        "SYSTEM_ACCESSTOKEN",
        "SYSTEM_OIDCREQUESTURI",
        "IDENTITY_ENDPOINT",
        "IDENTITY_HEADER",
        "MSI_ENDPOINT",
        "MSI_SECRET",
        "IDENTITY_SERVER_THUMBPRINT",
    ]:
        assert name in CREDENTIAL_VARIABLES
        assert is_credential_variable(name.lower())
    assert all(name == name.upper() for name in CREDENTIAL_VARIABLES)
    for name in ["FB_APP_SECRET", "GITHUB_TOKEN_FOR_PAGES", "MY_AZURE_CLIENT_SECRET"]:
        assert not is_credential_variable(name)


# --- apply --plan: an edited saved plan -------------------------------------------------------


def save_plan(capsys: pytest.CaptureFixture[str]) -> dict[str, Any]:
    code, out, err = run(capsys, "plan", "examples", "--env", "dev", "--out", "p.json")
    assert (code, err) == (0, ""), out
    saved: dict[str, Any] = json.loads(Path("p.json").read_text())
    return saved


def sources(saved: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The plan's secret fields, by their source."""
    return {
        f["source"]: f
        for change in saved["changes"]
        for f in change["fields"]
        if f.get("sensitive") and f.get("source")
    }


def edit_source(saved: dict[str, Any], old: str, new: str) -> None:
    sources(saved)[old]["source"] = new
    saved["checksum"] = compute_checksum(saved)
    Path("p.json").write_text(json.dumps(saved))


def test_plans_record_file_sources_relative_to_the_working_folder(project, capsys):
    saved = save_plan(capsys)
    assert f"file:{KEY}" in sources(saved)
    code, out, err = run(capsys, "apply", "--plan", "p.json", "--yes")
    assert (code, err) == (0, ""), out


def test_a_project_elsewhere_is_applied_with_its_files(project, capsys, monkeypatch, tmp_path):
    """``apply /path/to/project`` from another folder: the plan records absolute paths, inside
    the project folder they are written in."""
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    target = ("--target", f"local:{tmp_path / 'org.db'}")
    code, out, err = run(capsys, "plan", str(project), "--env", "dev", "--out", "p.json", *target)
    assert (code, err) == (0, ""), out
    saved = json.loads(Path("p.json").read_text())
    assert f"file:{project / 'gbm-service-account.json'}" in sources(saved)
    code, out, err = run(capsys, "apply", "--plan", "p.json", "--yes")
    assert (code, err) == (0, ""), out
    (project / "gbm-service-account.json").write_text(KEY_FILE.replace("5e5e", "6f6f"))
    code, out, err = run(capsys, "apply", str(project), "--env", "dev", "--yes", *target)
    assert (code, err) == (0, ""), out
    assert "serviceAccountKey" in out  # read again, from the project elsewhere
    assert_clean(out)
    assert "MARKER-private-key-6f6f" not in out


@pytest.mark.parametrize("how", HOW)
def test_an_edited_saved_plan_cannot_read_a_file_outside_the_working_folder(
    project, outside, capsys, how
):
    saved = save_plan(capsys)
    before = DB.read_bytes()
    if how == "dotdot":
        path = os.path.relpath(outside)
    elif how == "absolute":
        path = str(outside)
    else:
        (project / "link.txt").symlink_to(outside)
        path = "examples/link.txt"
    edit_source(saved, f"file:{KEY}", f"file:{path}")
    code, out, err = run(capsys, "apply", "--plan", "p.json", "--yes")
    assert code == 3
    assert err.startswith("error: the plan names secrets apply may not read: ")
    assert (
        f"GoogleBusinessMessagesAccount/contoso-gbm serviceAccountKey: secret file {path} is "
        f"outside the working folder {os.path.join(os.getcwd(), '')}"
    ) in err
    assert "apply the plan from the folder it was made in" in err
    assert "Applying" not in out
    assert_clean(out + err)
    assert DB.read_bytes() == before  # nothing written


def test_an_edited_saved_plan_cannot_read_a_credential_variable(project, capsys, monkeypatch):
    monkeypatch.setenv("GITHUB_TOKEN", CREDENTIAL)
    saved = save_plan(capsys)
    before = DB.read_bytes()
    edit_source(saved, "env:FB_APP_SECRET", "env:GITHUB_TOKEN")
    code, out, err = run(capsys, "apply", "--plan", "p.json", "--yes")
    assert code == 3
    assert "applicationSecret: fromEnv names GITHUB_TOKEN, a credential" in err
    assert_clean(out + err)
    assert DB.read_bytes() == before


def test_resolve_secrets_refuses_before_reading_anything(project, outside, capsys):
    saved = save_plan(capsys)
    edit_source(saved, f"file:{KEY}", f"file:{outside}")
    plan = Plan.model_validate(json.loads(Path("p.json").read_text()))
    with pytest.raises(ApplyRefused) as refused:
        resolve_secrets(plan, dict(os.environ))
    assert refused.value.exit_code == 3
    assert_clean(str(refused.value))


# --- the resolver (plan's reading) ------------------------------------------------------------


MANIFEST = """\
apiVersion: reconciler.omnichannel/v1
kind: FacebookAccount
metadata: {name: shop}
spec:
  applicationId: "1"
  applicationSecret: {fromFile: secret.txt}
"""


def document_at(path: Path) -> Document:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(MANIFEST)
    (source,) = load_file(str(path)).documents
    return Document(source, FacebookAccountManifest.model_validate(source.data))


def resolve(document: Document, ref: FromEnv | FromFile, **kwargs: Any) -> tuple[Any, list[Any]]:
    resolver = SecretResolver({"GH_TOKEN": CREDENTIAL}, **kwargs)
    return resolver(ref, document, ("spec", "applicationSecret")), resolver.problems


def test_the_resolver_confines_on_its_own(tmp_path, outside):
    document = document_at(tmp_path / "project" / "fb.yaml")
    value, (problem,) = resolve(document, FromFile(fromFile=str(outside)))
    assert value is None
    assert problem.code == "secret-outside-project"
    assert str(outside) in problem.message
    value, (problem,) = resolve(document, FromEnv(fromEnv="GH_TOKEN"))
    assert value is None
    assert problem.code == "secret-credential-variable"
    assert CREDENTIAL not in problem.message


def test_the_resolver_finds_the_project_folder_upward_or_is_told_it(tmp_path):
    (tmp_path / "reconciler.yaml").write_text("{}\n")
    (tmp_path / "secret.txt").write_text("s3cret\n")
    document = document_at(tmp_path / "accounts" / "fb.yaml")
    value, problems = resolve(document, FromFile(fromFile="../secret.txt"))
    assert problems == []
    assert value.reveal() == "s3cret"
    told = str(tmp_path / "accounts")
    value, (problem,) = resolve(document, FromFile(fromFile="../secret.txt"), project_folder=told)
    assert value is None
    assert problem.code == "secret-outside-project"


def test_read_secret_confines_to_the_working_folder_by_default(tmp_path, outside, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "in.txt").write_text("inside\n")
    assert read_secret("file:in.txt", "accessToken", {}).reveal() == "inside"
    with pytest.raises(SecretProblem) as problem:
        read_secret(f"file:{outside}", "accessToken", {})
    assert problem.value.refused
    allowed = {"RECONCILER_SECRET_DIRS": str(outside.parent)}
    assert read_secret(f"file:{outside}", "accessToken", allowed).reveal() == OUTSIDE
    for_project = Confinement.for_project(str(tmp_path), {})
    with pytest.raises(SecretProblem, match="outside the project folder"):
        read_secret(f"file:{outside}", "accessToken", {}, for_project)


def test_validate_reads_reconciler_secret_dirs_from_the_environment_it_is_given(project, outside):
    refer(project, f"{{fromFile: {outside}}}")
    assert validate(Options(paths=["examples"], environ={})).errors
    allowed = {"RECONCILER_SECRET_DIRS": str(outside.parent)}
    report = validate(Options(paths=["examples"], environ=allowed))
    assert report.errors == []
    assert report.project_folder == "examples"


# --- plan --against ---------------------------------------------------------------------------


def test_a_revision_that_read_outside_the_project_still_compares(
    project, capsys, monkeypatch, tmp_path
):
    """The rules came after it: the old side is history, and a comparison reads no secret."""
    for name, value in {
        "GIT_AUTHOR_NAME": "t",
        "GIT_AUTHOR_EMAIL": "t@example.invalid",
        "GIT_COMMITTER_NAME": "t",
        "GIT_COMMITTER_EMAIL": "t@example.invalid",
        "GIT_CONFIG_NOSYSTEM": "1",
        "HOME": str(tmp_path),
    }.items():
        monkeypatch.setenv(name, value)

    def git(*args: str) -> None:
        subprocess.run(["git", *args], cwd=tmp_path, check=True, capture_output=True)

    refer(project, "{fromFile: ../app-secret.txt}")
    git("init", "-q", "-b", "main")
    git("add", "examples")
    git("commit", "-q", "-m", "reads outside")
    manifest = project / "facebook.yaml"
    manifest.write_text(
        manifest.read_text().replace("{fromFile: ../app-secret.txt}", "{fromEnv: FB_APP_SECRET}")
    )
    code, out, err = run(capsys, "plan", "examples", "--env", "dev", "--against", "HEAD")
    assert (code, err) == (0, ""), out + err
    assert "applicationSecret" in out
    # The working tree is held to the rules.
    refer_back = manifest.read_text().replace("{fromEnv: FB_APP_SECRET}", "{fromEnv: GH_TOKEN}")
    manifest.write_text(refer_back)
    code, _, err = run(capsys, "plan", "examples", "--env", "dev", "--against", "HEAD")
    assert code == 1
    assert "fromEnv names GH_TOKEN" in err
