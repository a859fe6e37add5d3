"""An export as files: where each document goes, the README beside them, and writing a folder.

    reconciler.yaml                             namespace and the target (kept when it exists)
    README.md                                   the secrets to set, and what was left out
    queues.yaml                                 one file per kind, documents in name order
    facebook-accounts.yaml
    google-business-messages-accounts.yaml
    workstreams.yaml
    routing/<workstream>.yaml                   a workstream's rule sets, in the order they run
    .schemas/*.schema.json                      the JSON Schemas the files' first lines name

Every YAML file starts with a yaml-language-server modeline pointing at its schema, as the
files under examples/ do, so an editor checks and completes the exported manifests. The link
is a path relative to the file, into ``.schemas/`` beside the files: it works offline and
wherever the folder is copied, and names the schemas of the reconciler that wrote the files
(there is no published copy to link to). The folder is hidden, so ``validate`` and a later
export's folder check skip it, as they skip every hidden entry.

Nothing in a file depends on the time or the machine, so exporting an unchanged org again
writes the same bytes. A folder is written only when it is empty or holds an earlier export;
files an earlier export wrote that this one does not are removed, nothing else is touched.
"""

from __future__ import annotations

import os
import re
import tempfile
import uuid
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from reconciler.errors import UsageError
from reconciler.kinds import MANIFEST_KINDS
from reconciler.render import markdown as md

if TYPE_CHECKING:
    from reconciler.export.exporter import Export
    from reconciler.targets import Target

PROJECT_FILE = "reconciler.yaml"
README = "README.md"
README_TITLE = "# Manifests exported by reconciler"
KIND_FILES = {kind.name: kind.file for kind in MANIFEST_KINDS if kind.file}
"""Kinds export writes to one file each; rule sets go to a file per workstream."""
ROUTING_FOLDER = "routing"
SCHEMA_FOLDER = ".schemas"
_LOADER: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml if any
_LISTED = re.compile(r"^\| `([^`|]+)` \|", re.M)  # a file in the README's table
KINDS = tuple(kind.name for kind in MANIFEST_KINDS)
WHAT = {kind.name: kind.what for kind in MANIFEST_KINDS if kind.file}


def _file_of(document: Mapping[str, Any]) -> str:
    kind = document["kind"]
    if kind not in KIND_FILES:  # a rule set: with the others of its workstream
        return f"{ROUTING_FOLDER}/{document['spec']['workstream']}.yaml"
    return KIND_FILES[kind]


def _run_order(document: Mapping[str, Any]) -> tuple[bool, str]:
    """Classification sets first, in name order, then the route-to-queue set: as they run."""
    return document["spec"]["type"] == "route-to-queue", document["metadata"]["name"]


def modeline(path: str, schema: str) -> str:
    """The first line of the file ``path`` (relative to the export's folder): yaml-language-
    server reads ``$schema=`` as a path relative to the YAML file itself (its README, "Using
    inlined schema": https://github.com/redhat-developer/yaml-language-server)."""
    up = "../" * path.count("/")
    return f"# yaml-language-server: $schema={up}{SCHEMA_FOLDER}/{schema}\n"


def _schema_of(documents: Iterable[Mapping[str, Any]]) -> str:
    """The schema of one kind, or the any-kind schema for a file holding several."""
    from reconciler import schemagen  # the models' schemas: not paid by other commands

    kinds = {document["kind"] for document in documents}
    return schemagen.file_name(kinds.pop()) if len(kinds) == 1 else schemagen.MANIFEST_SCHEMA


def manifest_files(export: Export, kinds: Iterable[str] = KINDS) -> dict[str, str]:
    """Relative path → YAML text (a modeline first), for the documents of ``kinds``."""
    wanted = set(kinds)
    grouped: dict[str, list[tuple[dict[str, Any], str]]] = defaultdict(list)
    for document, text in zip(export.documents, export.texts, strict=True):
        if document["kind"] in wanted:
            grouped[_file_of(document)].append((document, text))
    for path, documents in grouped.items():
        if path.startswith(f"{ROUTING_FOLDER}/"):
            documents.sort(key=lambda item: _run_order(item[0]))
    return {
        path: modeline(path, _schema_of(d for d, _ in grouped[path]))
        + "".join(text for _, text in grouped[path])
        for path in sorted(grouped)
    }


def target_text(target: Target, folder: Path) -> str:
    """The target as the project file names it: a local database by its path from the
    folder, where `reconciler plan` runs."""
    if target.kind == "local" and target.path is not None:
        return f"local:{Path(os.path.relpath(target.path.resolve(), folder.resolve())).as_posix()}"
    return target.url


def project_file(export: Export, target: str, environment: str) -> str:
    from reconciler import schemagen

    data = {"namespace": str(export.namespace), "environments": {environment: {"target": target}}}
    head = modeline(PROJECT_FILE, schemagen.PROJECT_SCHEMA) + (
        "# The project of manifests exported from a target. Records this project creates get\n"
        "# ids derived from the namespace: keep it, or the project no longer knows its records.\n"
    )
    return head + yaml.safe_dump(data, sort_keys=False)


def readme(export: Export, target: str, files: Sequence[str], kinds: Sequence[str]) -> str:
    """The README of an export (``export`` as ``Export.only(kinds)`` gives it)."""
    lines = [
        README_TITLE,
        "",
        f"These manifests describe what {md.code(target)} (organization "
        f"{md.code(export.organization_id or 'unknown')}) held when `reconciler export` read it. "
        "Set the variables below, then `reconciler plan` in this folder changes no field: "
        "records this project's namespace did not create show as `adopt` until the first "
        "`reconciler apply` lists them in the project's ledger (docs/ownership.md), and "
        "from then on the plan shows no change.",
        "",
    ]
    if set(kinds) != set(KINDS):
        lines += [
            "Only these kinds were exported: "
            + ", ".join(md.code(kind) for kind in kinds)
            + ". References to other kinds are by name: export or write those too.",
            "",
        ]
    lines += ["## Files", ""]
    lines += md.table(
        ["File", "Holds"],
        [[md.code(path), _holds(path)] for path in files],
    )
    lines += [
        "",
        f"Each YAML file's first line points editors (yaml-language-server) at its JSON Schema "
        f"in {md.code(SCHEMA_FOLDER + '/')}, which the export writes beside the files.",
    ]
    lines += ["", "## Secrets", ""]
    if export.holders:
        lines += [
            "No secret value is written in this folder. Each secret is a `fromEnv` reference; "
            "set each variable to the value the target holds before planning:",
            "",
        ]
        lines += md.table(
            ["Variable", "Holds"],
            [
                [md.code(name), f"{md.code(path)} of {md.code(address)}"]
                for name, (address, path) in sorted(export.holders.items())
            ],
        )
        if any(path == "serviceAccountKey" for _, path in export.holders.values()):
            lines += [
                "",
                "A `serviceAccountKey` variable holds the service account's JSON key file, "
                "byte for byte (a shell's `$(cat key.json)` drops its last newline). You may "
                "instead write the reference as `fromFile: <path of the key file>`.",
            ]
    else:
        lines.append("The exported records hold no secrets.")
    lines += ["", "## Not exported", ""]
    if export.skipped:
        lines += [
            "These records are in the target but not in the manifests; plans leave them as "
            "they are:",
            "",
        ]
        lines += [
            f"- {md.text(item.kind)} {md.code(item.name)} ({md.code(item.id)}): "
            f"{md.text(item.reason)}"
            + (
                ". **This project's namespace made it: `plan --prune` would delete it.**"
                if item.owned
                else ""
            )
            for item in export.skipped
        ]
    else:
        lines.append("Every record was exported.")
    return "\n".join(lines) + "\n"


def _holds(path: str) -> str:
    if path == PROJECT_FILE:
        return "the namespace record ids derive from, and the target"
    if path.startswith(f"{ROUTING_FOLDER}/"):
        name = path.removeprefix(f"{ROUTING_FOLDER}/").removesuffix(".yaml")
        return f"the routing rule sets of workstream {md.code(name)}, in the order they run"
    kind = next(kind for kind, file in KIND_FILES.items() if file == path)
    return WHAT[kind]


# --- the folder --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Written:
    written: list[str]
    """Files whose content changed (or are new)."""
    unchanged: list[str]
    removed: list[str]


def _is_export_file(path: str) -> bool:
    if path in (PROJECT_FILE, README, *KIND_FILES.values()):
        return True
    folder, _, name = path.partition("/")
    return folder == ROUTING_FOLDER and "/" not in name and name.endswith(".yaml")


def owned(path: str, kinds: Sequence[str]) -> bool:
    """Files an export of ``kinds`` writes or removes."""
    if path.startswith(f"{ROUTING_FOLDER}/"):
        return "RoutingRuleSet" in kinds
    return any(KIND_FILES.get(kind) == path for kind in kinds)


def existing_files(folder: Path) -> list[str]:
    """Files under ``folder`` (hidden entries skipped), as relative POSIX paths."""
    found: list[str] = []
    for root, dirs, files in os.walk(folder):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for name in sorted(files):
            if not name.startswith("."):
                found.append(Path(root, name).relative_to(folder).as_posix())
    return found


def check_folder(folder: Path) -> list[str]:
    """The files of an earlier export in ``folder``; ``UsageError`` if it holds anything else."""
    if folder.exists() and not folder.is_dir():
        raise UsageError(f"--out {folder} is a file, not a folder")
    if not folder.exists():
        return []
    present = existing_files(folder)
    if not present:
        return []
    readme_path = folder / README
    text = (
        readme_path.read_text(encoding="utf-8", errors="replace") if readme_path.is_file() else ""
    )
    ours = text.startswith(README_TITLE)
    # Only what the earlier export's README lists is the export's: a file of the same shape
    # written by hand (routing/extra.yaml) is not.
    listed = {*_LISTED.findall(text), README, PROJECT_FILE}
    foreign = [path for path in present if not _is_export_file(path) or path not in listed]
    if foreign or not ours:
        shown = ", ".join((foreign or present)[:3]) + ("..." if len(foreign or present) > 3 else "")
        raise UsageError(
            f"--out {folder} holds files an export did not write ({shown}); "
            "export into an empty folder, or into one an earlier export wrote"
        )
    return present


def _project(folder: Path) -> dict[str, Any] | None:
    path = folder / PROJECT_FILE
    if not path.is_file():
        return None
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError):
        data = None
    if not isinstance(data, dict):
        raise UsageError(f"{path} cannot be read as a project file; fix it, or export elsewhere")
    return data


def existing_target(folder: Path) -> str | None:
    """The target of the project file an earlier export left (when it names one), as written
    there (``choose_target`` reads a ``local:PATH`` from the folder)."""
    environments = (_project(folder) or {}).get("environments")
    if not isinstance(environments, dict) or len(environments) != 1:
        return None
    (environment,) = environments.values()
    target = environment.get("target") if isinstance(environment, dict) else None
    return target if isinstance(target, str) else None


def previous_names(folder: Path, files: Sequence[str]) -> dict[tuple[str, str], str]:
    """(kind, metadata.id) → metadata.name in the manifests an earlier export wrote."""
    names: dict[tuple[str, str], str] = {}
    for relative in files:
        if not relative.endswith(".yaml") or relative == PROJECT_FILE:
            continue
        try:
            text = (folder / relative).read_text(encoding="utf-8")
            documents = list(yaml.load_all(text, Loader=_LOADER))
        except (OSError, yaml.YAMLError):
            continue  # a file broken by hand gives no names; the export writes it again
        for document in documents:
            metadata = document.get("metadata") if isinstance(document, dict) else None
            if isinstance(metadata, dict) and metadata.get("id") and metadata.get("name"):
                names[(str(document.get("kind")), str(metadata["id"]))] = str(metadata["name"])
    return names


def existing_namespace(folder: Path) -> uuid.UUID | None:
    """The namespace of the project file an earlier export left in ``folder``."""
    data = _project(folder)
    if data is None:
        return None
    try:
        return uuid.UUID(str(data["namespace"]))
    except (KeyError, ValueError):
        raise UsageError(
            f"{folder / PROJECT_FILE} has no namespace the export can read; fix it, or export "
            "elsewhere"
        ) from None


def _write(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` through a temporary file, so a failure leaves the old one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(handle, "w", encoding="utf-8", newline="\n") as stream:
            stream.write(text)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def schema_files() -> dict[str, str]:
    """The schemas a modeline may name (``.schemas/<name>`` → text): every manifest kind's,
    the any-kind one and the project file's, whichever kinds this export wrote, since files of
    other kinds an earlier export wrote stay and keep naming theirs."""
    from reconciler import schemagen

    return {
        f"{SCHEMA_FOLDER}/{name}": text
        for name, text in schemagen.generate().items()
        if name != schemagen.PLAN_SCHEMA
    }


def write_folder(
    folder: Path, files: Mapping[str, str], previous: Sequence[str], kinds: Sequence[str]
) -> Written:
    """Write ``files`` under ``folder``, and the schemas their modelines name (not counted in
    ``Written``: hidden, like the folder they are in); remove what an earlier export of
    ``kinds`` wrote and this one does not. The project file is written only when there is
    none."""
    written: list[str] = []
    unchanged: list[str] = []
    try:
        for relative, text in schema_files().items():
            path = folder / relative
            if not path.is_file() or path.read_text(encoding="utf-8", errors="replace") != text:
                _write(path, text)
        for relative, text in files.items():
            path = folder / relative
            if relative == PROJECT_FILE and path.exists():
                unchanged.append(relative)
                continue
            if path.is_file() and path.read_text(encoding="utf-8", errors="replace") == text:
                unchanged.append(relative)
                continue
            _write(path, text)
            written.append(relative)
        removed = [p for p in previous if p not in files and owned(p, kinds)]
        for relative in removed:
            (folder / relative).unlink(missing_ok=True)
        routing = folder / ROUTING_FOLDER
        if routing.is_dir() and not any(routing.iterdir()):
            routing.rmdir()
    except OSError as exc:
        raise UsageError(
            f"cannot write the export to {folder}: {exc.strerror or exc}"
            + (f" ({exc.filename})" if exc.filename else "")
        ) from None
    return Written(written, unchanged, removed)
