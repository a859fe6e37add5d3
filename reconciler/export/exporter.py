"""``export``: what the target holds, as manifest documents that plan to no change.

1. **Names.** Every row of a manifest kind gets a metadata name: the one it was made from when
   the namespace proves it ours (its id is ``uuid5(namespace, address)``), else the slug of its
   display name, made unique with ``-2``, ``-3``... Pages and agents keep their own names under
   their account. Rows the namespace did not make get ``metadata.id``.
2. **Rows the manifests cannot express** are skipped with a reason, never changed: workstreams
   of other channels, rules whose XML the codec does not know, references to rows outside the
   export, and everything that refers to a skipped row (a workstream whose fallback queue is
   skipped, a page serving a skipped workstream). System queues are exported only when an
   exported record uses them.
3. **The proof.** The documents are written as YAML, read back through the validator, turned
   into desired records with the secrets the export names, and planned against the very rows
   they came from. Whatever is not ``noop`` (or not valid) is skipped with the reason, and the
   proof runs again, until the plan of what remains is empty. So ``plan`` on the files shows
   no change, by construction.

The module is pure: it works on a ``Snapshot`` and never touches the target.
"""

from __future__ import annotations

import dataclasses
import datetime
import re
import uuid
from collections.abc import Callable, Collection, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from reconciler import kinds as registry
from reconciler.diagnostics import Diagnostic
from reconciler.kinds import capacity
from reconciler.kinds.gbm import key_text as _key_text
from reconciler.manifest.variables import substitute
from reconciler.manifest.yaml_loader import SourceDocument, load_text
from reconciler.mapping import kinds as k
from reconciler.mapping.desired import desired_records
from reconciler.mapping.fields import Resolver, Row, lookup
from reconciler.mapping.manifests import Assembled, Found, to_manifests
from reconciler.mapping.values import Sensitive, record_id
from reconciler.models.project import Project
from reconciler.plan import builder
from reconciler.plan.definition import Action
from reconciler.plan.identity import address_hints, prove, slug
from reconciler.plan.secrets import BASE64, SecretResolver
from reconciler.state.reader import Snapshot
from reconciler.validate import semantic
from reconciler.validate.pipeline import build_documents

from .text import dump

MANIFEST_KINDS = tuple(kind.record for kind in registry.MANIFEST_KINDS)
CHANNEL_INSTANCES = {
    kind.name: child for kind in registry.MANIFEST_KINDS for child in kind.brings if child.linked
}
"""Account kind → its channel instances (pages, agents): named under their account."""
OWNED_INSTANCES = {
    channel.instance: channel for channel in registry.CHANNELS if channel.account is None
}
"""Channel instances a workstream brings itself (a chat widget): named under it."""
OWNED_CHILDREN = {
    kind: channel.instance
    for channel in registry.CHANNELS
    if channel.account is None
    for kind in channel.brings
    if kind is not channel.instance
}
"""Records under such an instance (a widget's allowed domains) → the instance's kind."""
MANIFEST_KIND = {record: kind.name for record, kind in registry.OWNER.items()}
"""Record kind → the manifest kind whose documents describe it (a chat widget: Workstream)."""
EXPORT_NAMESPACE_ROOT = uuid.UUID("6f1d3c2a-8b4e-5a7f-9c0d-2e4b6a8c0f13")
MAX_NAME = 63
NAME = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")


def default_namespace(organization_id: str | None) -> uuid.UUID:
    """The namespace of a first export: derived from the org, so two exports of one org agree."""
    return uuid.uuid5(EXPORT_NAMESPACE_ROOT, f"organization:{organization_id or ''}")


@dataclass(frozen=True)
class Skipped:
    """A row the export leaves out, and why (no values: names, ids and field paths only)."""

    kind: str
    name: str
    id: str
    reason: str
    owned: bool = False
    """Made under the export's namespace: ``plan --prune`` on the export would delete it."""

    def __str__(self) -> str:
        return f"{self.kind} {self.name!r} ({self.id}): {self.reason}"


@dataclass
class Export:
    documents: list[dict[str, Any]]
    """Manifest documents, in the order they are written."""
    texts: list[str]
    """Each document as the YAML text the proof read back."""
    secrets: dict[str, Sensitive]
    """Variable → the value it must hold (never written anywhere)."""
    holders: dict[str, tuple[str, str]]
    """Variable → the address and field path of the secret."""
    skipped: list[Skipped]
    namespace: uuid.UUID
    organization_id: str | None
    records: int
    """Rows the documents describe, pages, agents and widgets included."""
    rounds: int
    """Times the proof ran (1 when nothing had to be skipped by it)."""
    described: dict[str, int] = field(default_factory=dict)
    """Document address (``Kind/name``) → the rows it describes."""

    def only(self, kinds: Collection[str]) -> Export:
        """The part of the export that writes manifests of ``kinds``."""
        keep = [i for i, d in enumerate(self.documents) if d["kind"] in kinds]
        documents = [self.documents[i] for i in keep]
        holders = {
            name: (address, path)
            for name, (address, path) in self.holders.items()
            if address.split("/", 1)[0] in kinds
        }
        addresses = [f"{d['kind']}/{d['metadata']['name']}" for d in documents]
        return dataclasses.replace(
            self,
            documents=documents,
            texts=[self.texts[i] for i in keep],
            holders=holders,
            secrets={name: self.secrets[name] for name in holders},
            skipped=[s for s in self.skipped if MANIFEST_KIND.get(s.kind, s.kind) in kinds],
            records=sum(self.described.get(address, 1) for address in addresses),
        )


@dataclass
class _Unit:
    """One row the export may write: a manifest document, or a page/agent inside one."""

    kind: k.RecordKind
    row: Row
    address: str
    system: bool = False
    found: Found | None = None
    needs: list[str] = field(default_factory=list)
    """Addresses of units that must be exported for this one to be."""

    @property
    def id(self) -> str:
        return str(self.row[self.kind.table.primary_key])


def _unique(base: str, taken: set[str]) -> str:
    name, number = base, 2
    while name in taken:
        suffix = f"-{number}"
        name = base[: MAX_NAME - len(suffix)].rstrip("-") + suffix
        number += 1
    taken.add(name)
    return name


class _Exporter:
    def __init__(
        self,
        snapshot: Snapshot,
        namespace: uuid.UUID,
        today: datetime.date,
        previous: Mapping[tuple[str, str], str],
    ) -> None:
        self.snapshot = snapshot
        self.previous = previous
        self.namespace = namespace
        self.today = today
        self.rows: dict[str, tuple[Row, ...]] = {
            kind.name: tuple(sorted(snapshot.rows.get(kind.name, ()), key=_by_id(kind)))
            for kind in k.KINDS
        }
        self.resolver = Resolver(
            namespace,
            languages=dict(snapshot.languages),
            output_contract=snapshot.output_contract,
            users=dict(snapshot.users),
        )
        self.units: dict[str, _Unit] = {}
        self.skips: dict[str, str] = {}  # unit address → reason
        self.listed: list[Skipped] = []  # rows left out before they had a unit
        self.proved: set[str] = set()  # addresses the namespace proves ours
        self.taken: dict[str, set[str]] = {}  # names given, by kind

    # -- 1. names ------------------------------------------------------------------------------

    def name_rows(self) -> None:
        hints = address_hints(self.rows)
        listed = self.snapshot.ledger.entries if self.snapshot.ledger is not None else {}
        for kind in MANIFEST_KINDS:
            taken: set[str] = set()
            names: dict[str, str] = {}
            for row in self.rows[kind.name]:
                entry = listed.get(str(row[_pk(kind)]))
                # The ledger names what the project manages, whatever its display name.
                proved = entry.address if entry is not None else None
                proved = proved or prove(kind, row, self.resolver, hints)
                name = proved.split("/", 1)[1] if proved else None
                if name and "/" not in name and name not in taken:
                    names[str(row[_pk(kind)])] = name
                    taken.add(name)
                    self.proved.add(f"{kind.name}/{name}")
            # Then the names an earlier export gave, so references to them keep their meaning.
            for row in self.rows[kind.name]:
                row_id = str(row[_pk(kind)])
                name = self.previous.get((kind.name, row_id))
                if row_id not in names and name and NAME.match(name) and name not in taken:
                    names[row_id] = name
                    taken.add(name)
            rest = [row for row in self.rows[kind.name] if str(row[_pk(kind)]) not in names]
            # Rows of the org first, then system rows: "Default messaging queue" yields.
            rest.sort(key=_by_id(kind))
            rest.sort(key=lambda row: slug(k.name_of_row(kind, row)))
            rest.sort(key=lambda row: k.is_system_row(kind, row))
            fallback = registry.OWNER[kind.name].fallback_name
            for row in rest:
                base = slug(k.name_of_row(kind, row)) or fallback
                names[str(row[_pk(kind)])] = _unique(base, taken)
            for row in self.rows[kind.name]:
                address = f"{kind.name}/{names[str(row[_pk(kind)])]}"
                self.units[address] = _Unit(kind, row, address, k.is_system_row(kind, row))
                self.resolver.add(address, str(row[_pk(kind)]))
            self.taken[kind.name] = taken
        self.name_contracts()
        self.order_rule_sets()
        self.name_children()

    def order_rule_sets(self) -> None:
        """Classification sets run in name order: when their display names sort otherwise
        than the org runs them, their names start with their step order (``1-vip``)."""
        order: dict[str, int] = {
            str(row.get(lookup("msdyn_rulesetid"))): row["msdyn_steporder"]
            for row in self.rows[k.ROUTING_STEP.name]
            if isinstance(row.get("msdyn_steporder"), int)
        }
        by_workstream: dict[str, list[_Unit]] = {}
        for unit in self._units(k.RULE_SET):
            if k.rule_set_type(unit.row, self.resolver) != "classification":
                continue
            contract = self.resolver.addresses.get(
                unit.row.get(lookup("msdyn_inputcontractid")) or ""
            )
            if contract is not None and unit.id in order:
                by_workstream.setdefault(contract, []).append(unit)
        for units in by_workstream.values():
            running = sorted(units, key=lambda u: (order[u.id], u.id))
            if [u.address for u in running] == sorted(u.address for u in units):
                continue
            taken = self.taken[k.RULE_SET.name]
            width = len(str(max(order[u.id] for u in running)))  # "02-" sorts before "10-"
            for unit in running:
                if unit.address in self.proved:
                    continue
                taken.discard(unit.address.split("/", 1)[1])
                base = (
                    slug(k.name_of_row(unit.kind, unit.row))
                    or registry.OWNER[k.RULE_SET.name].fallback_name
                )
                prefix = f"{order[unit.id]:0{width}d}"
                name = _unique(f"{prefix}-{base}"[:MAX_NAME].rstrip("-"), taken)
                del self.units[unit.address], self.resolver.ids[unit.address]
                unit.address = f"{k.RULE_SET.name}/{name}"
                self.units[unit.address] = unit
                self.resolver.add(unit.address, unit.id)

    def name_contracts(self) -> None:
        """A workstream's contract is ``Workstream/<name>/contract``: rule sets name their
        workstream through it."""
        contracts = {str(row[_pk(k.CONTRACT)]) for row in self.rows[k.CONTRACT.name]}
        owner: dict[str, str] = {}
        for unit in self._units(k.WORKSTREAM):
            contract = unit.row.get(lookup("msdyn_routingcontractid"))
            if not isinstance(contract, str) or contract not in contracts:
                continue
            if contract in owner:
                self.skips[unit.address] = (
                    f"it shares its decision contract with {owner[contract]}; each workstream "
                    "of a project has its own"
                )
                continue
            owner[contract] = unit.address
            self.resolver.add(f"{unit.address}/contract", contract)

    def name_children(self) -> None:
        accounts = {
            unit.id: unit for unit in self.units.values() if unit.kind.name in CHANNEL_INSTANCES
        }
        for kind in CHANNEL_INSTANCES.values():
            assert kind.parent is not None
            seen: dict[str, set[str]] = {}
            rows = sorted(self.rows[kind.name], key=_by_id(kind))
            # Of two with one name, the one serving a workstream is kept.
            rows.sort(key=lambda row: row.get(lookup("msdyn_liveworkstreamid")) is None)
            rows.sort(key=lambda row: k.name_of_row(kind, row))
            for row in rows:
                name = k.name_of_row(kind, row)
                account = accounts.get(row.get(lookup(kind.parent)) or "")
                reason = None
                if account is None:
                    reason = "it belongs to no account the export reads"
                elif not name.strip():
                    reason = "it has no name"
                elif name in seen.setdefault(account.address, set()):
                    reason = (
                        f"another {kind.noun} of {account.address} has the name {name!r} "
                        "(names are unique within an account)"
                    )
                if reason is not None:
                    self.listed.append(Skipped(kind.name, name, str(row[_pk(kind)]), reason))
                    continue
                assert account is not None
                seen[account.address].add(name)
                address = f"{account.address}/{name}"
                self.units[address] = _Unit(kind, row, address, needs=[account.address])
                self.resolver.add(address, str(row[_pk(kind)]))
        self.name_owned()
        self.name_profile_rows()

    def name_profile_rows(self) -> None:
        """A workstream's capacity profile row is ``<workstream>/capacity:<profile>``, after the
        profile's manifest name (reconciler.kinds.capacity)."""
        kind = capacity.WORKSTREAM_PROFILE
        workstreams = self._by_id_of(k.WORKSTREAM)
        profiles = self._by_id_of(capacity.CAPACITY_PROFILE)
        for row in sorted(self.rows[kind.name], key=_by_id(kind)):
            row_id = str(row[_pk(kind)])
            workstream = workstreams.get(str(row.get(lookup("msdyn_workstream_id")) or ""))
            profile = profiles.get(str(row.get(lookup("msdyn_capacityprofile_id")) or ""))
            name = profile.address.split("/", 1)[1] if profile is not None else ""
            address = (
                f"{workstream.address}/{kind.child_prefix}{name}"
                if workstream is not None and profile is not None
                else ""
            )
            reason = (
                "it belongs to no workstream the export reads"
                if workstream is None
                else "it names no capacity profile the export reads"
                if profile is None
                else f"{workstream.address} has another row for {profile.address}"
                if address in self.units
                else None
            )
            if reason is not None:
                self.listed.append(Skipped(kind.name, k.name_of_row(kind, row), row_id, reason))
                continue
            assert workstream is not None
            assert profile is not None
            needs = [workstream.address, profile.address]
            self.units[address] = _Unit(kind, row, address, needs=needs)
            self.resolver.add(address, row_id)

    def name_owned(self) -> None:
        """A workstream's own instance (a chat widget) is ``<workstream>/<suffix>``; what is
        under it (its domains) ``<instance>/<prefix><name>``."""
        left_out: set[str] = set()  # ids of rows listed as not exported
        for owners, kinds_under in (
            ((k.WORKSTREAM,), OWNED_INSTANCES),
            (tuple(OWNED_INSTANCES), OWNED_CHILDREN),
        ):
            parents = self._by_id_of(*owners)
            for kind in kinds_under:
                assert kind.parent is not None
                # The project's own row first (its id derives from its address, or the ledger
                # lists it), so a second widget made by hand never takes its place.
                rows = sorted(self.rows[kind.name], key=_by_id(kind))
                mine = {str(r[_pk(kind)]) for r in rows if self.ours(kind, r, parents)}
                rows.sort(key=lambda row: str(row[_pk(kind)]) not in mine)
                for row in rows:
                    row_id = str(row[_pk(kind)])
                    parent_id = str(row.get(lookup(kind.parent)) or "")
                    parent = parents.get(parent_id)
                    name = kind.name_of(row)
                    own = kind.suffix or f"{kind.child_prefix}{name}"
                    address = f"{parent.address}/{own}" if parent is not None else ""
                    owner = "workstream" if owners == (k.WORKSTREAM,) else "widget"
                    reason = (
                        kind.excluded(row)
                        or (f"its {owner} is not exported" if parent_id in left_out else None)
                        or (
                            f"it belongs to no {owner} the export reads" if parent is None else None
                        )
                        or (
                            f"{address} is taken by another {kind.noun}"
                            if address in self.units
                            else None
                        )
                    )
                    if reason is not None:
                        owned = self.ours(kind, row, parents)
                        self.listed.append(Skipped(kind.name, name, row_id, reason, owned))
                        left_out.add(row_id)
                        continue
                    assert parent is not None
                    self.units[address] = _Unit(kind, row, address, needs=[parent.address])
                    self.resolver.add(address, str(row[_pk(kind)]))

    def ours(self, kind: k.RecordKind, row: Row, parents: Mapping[str, _Unit]) -> bool:
        """The row is the project's: the ledger lists it, or its id derives from the address
        it has under its parent."""
        row_id = str(row[_pk(kind)])
        ledger = self.snapshot.ledger
        if ledger is not None and row_id in ledger.entries:
            return True
        parent = parents.get(str(row.get(lookup(kind.parent or "")) or ""))
        own = kind.suffix or f"{kind.child_prefix}{kind.name_of(row)}"
        return parent is not None and row_id == record_id(self.namespace, f"{parent.address}/{own}")

    def _by_id_of(self, *of: k.RecordKind) -> dict[str, _Unit]:
        return {unit.id: unit for unit in self.units.values() if unit.kind in of}

    # -- 2. what each row says, and what it needs ------------------------------------------------

    def context_variables(self) -> dict[str, dict[str, Any]]:
        """Workstream id → its context variables (name → type), as its manifest says them."""
        kind = k.CONTEXT_VARIABLE
        found: dict[str, dict[str, Any]] = {}
        for row in sorted(self.rows[kind.name], key=lambda row: k.name_of_row(kind, row)):
            fields = kind.from_row(row, self.resolver)
            workstream = row.get(lookup("msdyn_liveworkstreamid"))
            if isinstance(workstream, str):
                found.setdefault(workstream, {})[str(fields["name"])] = fields["type"]
        return found

    def read_rows(self) -> None:
        serving: dict[str, str] = {}  # workstream address → the instance serving it
        variables = self.context_variables()
        for unit in sorted(self.units.values(), key=lambda u: u.address):
            fields = unit.kind.from_row(unit.row, self.resolver)
            if unit.kind is k.WORKSTREAM:
                fields["contextVariables"] = variables.get(unit.id, {})
            adopt = None
            if unit.kind in MANIFEST_KINDS and unit.id != record_id(self.namespace, unit.address):
                adopt = unit.id
            unit.found = Found(unit.kind, unit.address, fields, adopt)
            if unit.address in self.skips:
                continue
            reason = self.cannot_express(unit)
            if reason is not None:
                self.skips[unit.address] = reason
                continue
            if (unit.kind.linked or unit.kind in OWNED_INSTANCES) and fields.get("workstream"):
                workstream = f"Workstream/{fields['workstream']}"
                unit.needs.append(workstream)
                if workstream in serving:
                    self.skips[unit.address] = (
                        f"{workstream} is already served by {serving[workstream]}; a workstream "
                        "has one channel instance"
                    )
                else:
                    serving[workstream] = unit.address
        profile_rows: dict[str, list[str]] = {}
        for unit in self._units(capacity.WORKSTREAM_PROFILE):
            assert unit.found is not None
            profile_rows.setdefault(f"Workstream/{unit.found.fields['workstream']}", []).append(
                unit.address
            )
        for unit in self._units(k.WORKSTREAM):
            assert unit.found is not None
            fields = dict(unit.found.fields)
            if fields.get("fallbackQueue"):
                unit.needs.append(f"Queue/{fields['fallbackQueue']}")
            if fields.get(capacity.CAPACITY) == "profiles":
                # Its profiles are its rows: a workstream without one the export reads has a
                # capacity no manifest can say.
                rows = profile_rows.get(unit.address, [])
                unit.needs += rows
                if not rows:
                    self.skips.setdefault(
                        unit.address,
                        "its capacity is profile-based, but it has no capacity profile row the "
                        "export reads",
                    )
            instance = serving.get(unit.address)
            channel = registry.BY_WORD.get(str(fields["channel"]), registry.CHANNELS[0])
            if instance is None:
                self.skips.setdefault(
                    unit.address,
                    f"no {channel.instance.noun} serves it "
                    "(a workstream manifest names the one that does)",
                )
            elif self.units[instance].kind is not channel.instance:
                self.skips.setdefault(
                    unit.address, f"it is served by {instance}, of another channel"
                )
            else:
                unit.needs.append(instance)
        live = self.live_configurations()
        configuration_of = {
            row.get(lookup("msdyn_rulesetid")): row.get(lookup("msdyn_routingconfigurationid"))
            for row in self.rows[k.ROUTING_STEP.name]
        }
        for unit in self._units(k.RULE_SET):
            assert unit.found is not None
            fields = dict(unit.found.fields)
            workstream = f"Workstream/{fields['workstream']}"
            configuration = configuration_of.get(unit.id)
            if (
                configuration is not None
                and workstream in self.resolver.ids
                and configuration != live.get(self.resolver.ids[workstream])
            ):
                self.skips.setdefault(
                    unit.address,
                    f"it runs in a routing configuration of {workstream} that is not the "
                    "active one",
                )
            unit.needs.append(workstream)
            if unit.address not in self.skips:  # readable rules: the queues they route to
                queues = unit.kind.references(fields)
                unit.needs += [address for address in queues if address.startswith("Queue/")]

    def live_configurations(self) -> dict[str, str]:
        """Workstream id → the routing configuration planning takes as its own (the active
        one first, then by id)."""
        kind = k.ROUTING_CONFIGURATION
        rows = sorted(self.rows[kind.name], key=_by_id(kind))
        rows.sort(key=lambda row: not row.get("msdyn_isactiveconfiguration"))
        live: dict[str, str] = {}
        for row in rows:
            workstream = row.get(lookup("msdyn_liveworkstreamid"))
            if isinstance(workstream, str):
                live.setdefault(workstream, str(row[_pk(kind)]))
        return live

    def cannot_express(self, unit: _Unit) -> str | None:
        """Why a row cannot be written as a manifest, for what the codecs can tell at once."""
        assert unit.found is not None
        fields = unit.found.fields
        for path, value in fields.items():
            if isinstance(value, k.Unreadable):
                return f"its {path} cannot be said in a manifest: {value}"
        owner = registry.OWNER[unit.kind.name]
        if unit.kind is owner.record and (reason := owner.cannot_express(fields)) is not None:
            return reason
        for field_map in unit.kind.fields:
            value = fields.get(field_map.path)
            if field_map.ref and isinstance(value, str) and value.startswith("<"):
                if field_map.path == "routingContract":
                    continue  # a missing contract is planned as a create: the proof says so
                return (
                    f"{field_map.path} refers to {value.strip('<>')}, a record the export does "
                    "not read"
                )
        return None

    # -- 3. the proof ----------------------------------------------------------------------------

    def others(self) -> None:
        """Rows another project's ledger lists are that project's (docs/ownership.md): left
        out, saying which project, and how to export that project instead."""
        ledger = self.snapshot.ledger
        if ledger is None:
            return
        for unit in self.units.values():
            other = ledger.others.get(unit.id)
            if other is not None:
                self.skips[unit.address] = (
                    f"managed by another project (namespace {other[0]}, as {other[1]}); "
                    f"to export that project, export with --namespace {other[0]}"
                )

    def cascade(self) -> None:
        """Skip whatever needs a skipped row, until nothing more changes."""
        changed = True
        while changed:
            changed = False
            for unit in self.units.values():
                if unit.address in self.skips:
                    continue
                for need in unit.needs:
                    if need in self.skips or need not in self.units:
                        self.skips[unit.address] = f"it needs {need}, which is not exported"
                        changed = True
                        break

    def active(self) -> list[_Unit]:
        """Units to write: not skipped, and system rows only when something written uses them."""
        live = [u for u in self.units.values() if u.address not in self.skips]
        used = {need for unit in live if not unit.system for need in unit.needs}
        return [u for u in live if not u.system or u.address in used]

    def prove_round(self) -> tuple[Assembled, list[str], dict[str, str]]:
        """Assemble, validate and plan what is active: the documents, their YAML, and the
        reasons of what must go as well."""
        found = [u.found for u in sorted(self.active(), key=_order) if u.found is not None]
        assembled = to_manifests(found)
        sources: dict[str, SourceDocument] = {}
        failures: dict[str, str] = {}
        texts = [dump([document]) for document in assembled.documents]
        for document, text in zip(assembled.documents, texts, strict=True):
            label = f"{document['kind']}/{document['metadata']['name']}"
            loaded = load_text(text, label)
            if loaded.diagnostics:  # e.g. conditions nesting deeper than manifests may
                failures[label] = f"the manifests cannot hold it: {loaded.diagnostics[0].message}"
                continue
            sources[label] = loaded.documents[0]
        built = build_documents(list(sources.values()), {})
        diagnostics = built.diagnostics + semantic.check(
            built.documents, Project(namespace=self.namespace), self.today, built.invalid
        )
        self.blame(diagnostics, sources, failures)
        if failures:
            return assembled, texts, failures
        secrets = SecretResolver(_environ(assembled))
        records = desired_records(built.documents, secrets)
        self.blame(secrets.problems, sources, failures)
        if failures:
            return assembled, texts, failures
        plan = builder.build(
            records, self.snapshot, builder.Options(self.namespace, False, self.today)
        )
        self.blame(plan.problems, sources, failures)
        for warning in plan.warnings:
            # A column the target holds in a form manifests cannot say (a contract's XML):
            # the record would be left as it is, so it is not exported.
            if warning.code == builder.LEFT_AS_IS and warning.address is not None:
                reason = f"the manifests cannot hold it as the target does: {warning.message}"
                failures.setdefault(_unit_of(warning.address), reason)
        for change in plan.changes:
            if change.action is Action.NOOP or (
                change.action is Action.ADOPT and not change.fields
            ):
                continue  # an adoption that writes nothing but the ledger is what export makes
            what = ", ".join(f.path for f in change.fields)
            reason = (
                f"the manifests cannot hold it as the target does: a plan would {change.action} "
                f"{change.address}" + (f" ({what})" if what else f": {change.reason}")
            )
            failures.setdefault(_unit_of(change.address), reason)
        return assembled, texts, failures

    def blame(
        self,
        diagnostics: list[Diagnostic],
        sources: dict[str, SourceDocument],
        failures: dict[str, str],
    ) -> None:
        for diagnostic in diagnostics:
            if not diagnostic.is_error or diagnostic.location is None:
                continue
            label = diagnostic.location.file
            source = sources.get(label)
            unit = label if source is None else _unit_at(source, diagnostic)
            failures.setdefault(unit, f"the manifests cannot hold it: {diagnostic.message}")

    def run(self) -> Export:
        self.name_rows()
        self.read_rows()
        self.others()
        rounds = 0
        while True:
            self.cascade()
            rounds += 1
            assembled, texts, failures = self.prove_round()
            fresh = {unit: why for unit, why in failures.items() if unit not in self.skips}
            if not failures:
                break
            if not fresh or not fresh.keys() <= self.units.keys():
                raise AssertionError(f"the export cannot be proved: {sorted(failures)}")
            self.skips.update(fresh)
        return Export(
            documents=assembled.documents,
            texts=texts,
            secrets=assembled.secrets,
            holders=assembled.holders,
            skipped=self.skipped(),
            namespace=self.namespace,
            organization_id=self.snapshot.organization_id,
            records=len(self.active()),
            rounds=rounds,
            described=self.described(),
        )

    def described(self) -> dict[str, int]:
        """Each document's rows: its own, and those written inside it (``Kind/name/...``)."""
        counts: dict[str, int] = {}
        for unit in self.active():
            document = "/".join(unit.address.split("/")[:2])
            counts[document] = counts.get(document, 0) + 1
        return counts

    def skipped(self) -> list[Skipped]:
        used = {need for unit in self.units.values() for need in unit.needs}
        out = list(self.listed)
        for address, reason in self.skips.items():
            unit = self.units[address]
            if unit.system and address not in used:
                continue
            owned = unit.id == record_id(self.namespace, address) or (
                self.snapshot.ledger is not None and unit.id in self.snapshot.ledger.entries
            )
            name = k.name_of_row(unit.kind, unit.row)
            out.append(Skipped(unit.kind.name, name, unit.id, reason, owned))
        return sorted(out, key=lambda s: (k.STAGE[s.kind], s.name.casefold(), s.id))

    def _units(self, kind: k.RecordKind) -> Iterator[_Unit]:
        return (u for u in sorted(self.units.values(), key=lambda u: u.address) if u.kind is kind)


def _pk(kind: k.RecordKind) -> str:
    return kind.table.primary_key


def _by_id(kind: k.RecordKind) -> Callable[[Row], str]:
    key = _pk(kind)
    return lambda row: str(row[key])


def _order(unit: _Unit) -> tuple[int, str]:
    return k.STAGE[unit.kind.name], unit.address


def _environ(assembled: Assembled) -> dict[str, str]:
    """The environment a plan of the documents needs: each variable as a user sets it (the
    key file's text for a service account key, which planning encodes again)."""
    environ: dict[str, str] = {}
    for name, value in assembled.secrets.items():
        _, path = assembled.holders[name]
        text = _key_text(value) if path in BASE64 else value.reveal()
        if text is not None:
            environ[name] = text
    return environ


def variable_values(export: Export) -> dict[str, str]:
    """What to set each variable to for a plan of the export to show no change."""
    return _environ(Assembled(secrets=export.secrets, holders=export.holders))


def _unit_of(address: str) -> str:
    """The unit a planned record belongs to: a page or agent is its own, routing records
    belong to their workstream or rule set."""
    kind, _, rest = address.partition("/")
    owner = registry.BY_KIND.get(kind)
    if owner is not None and owner.children_key is None:
        return f"{kind}/{rest.split('/', 1)[0]}"
    return address


def _unit_at(source: SourceDocument, diagnostic: Diagnostic) -> str:
    """The unit a diagnostic is about: the page or agent at its path, else the document."""
    assert diagnostic.location is not None
    where = (diagnostic.location.line, diagnostic.location.column)
    paths = [path for path, position in source.positions.items() if position == where]
    path = max(paths, key=len, default=())
    lists = {("spec", kind.children_key) for kind in registry.MANIFEST_KINDS if kind.children_key}
    if len(path) > 2 and path[:2] in lists:
        index = path[2]
        items = source.data["spec"][path[1]]
        if isinstance(index, int) and isinstance(items[index], dict):
            name, _ = substitute(items[index].get("name"), {})  # as written: "$${" for "${"
            return f"{source.file}/{name}"
    return source.file


def build_export(
    snapshot: Snapshot,
    namespace: uuid.UUID,
    today: datetime.date | None = None,
    previous: Mapping[tuple[str, str], str] | None = None,
) -> Export:
    """The manifests for ``snapshot``; a plan of them against it shows only ``noop``.
    ``previous`` maps (kind, id) to the name an earlier export gave the record."""
    return _Exporter(snapshot, namespace, today or datetime.date.today(), previous or {}).run()
