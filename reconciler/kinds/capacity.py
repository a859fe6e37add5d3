"""``kind: CapacityProfile``: a capacity profile (``msdyn_capacityprofile``), and the rows that
give a workstream its profiles (``msdyn_liveworkstreamcapacityprofile``).

Sources (keys as in ``reconciler.dataverse.tables``): the profile's columns REF-CP, the
workstream's profile rows REF-LWCP, the workstream's capacity format DEV-WS; ALM's exported
solution holds a profile with exactly these columns and two chat workstreams sharing it, each
with ``msdyn_capacityformat`` 192360000 (Profile based) and a profile row of its own.

How the product switches a workstream's capacity: "Capacity: Select one of the following
options. Unit based: Enter a value ... Profile based: Specify a profile in the list"
(MicrosoftDocs/dynamics-365-customer-engagement ce/customer-service/administer/
create-workstreams.md @03682dffcd3d4379129b87335b162e4ab2a1b7ee, "Configure work
distribution"). So a workstream's ``distribution.capacity`` is either ``{units: N}``
(``msdyn_capacityformat`` 192350000, the units in ``msdyn_capacityrequired``) or
``{profiles: [...]}`` (192360000, one profile row per profile); switching is an update.

The reset frequency cannot change: "Once configured, you have to recreate the capacity profile
if you want to change the reset frequency" (ce/customer-service/administer/capacity-profiles.md
@f6c852ce65280215884be2ecd3a676eafeeafe3c), so ``resetAfter`` is set at creation and a change
replaces the profile.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from reconciler.dataverse import tables as t
from reconciler.kinds.base import (
    Assembler,
    Builder,
    ManifestKind,
    Match,
    RecordKind,
    manifest_spec,
    spec_fields,
)
from reconciler.mapping.fields import (
    FieldMap,
    Resolver,
    Row,
    boolean,
    lookup,
    option,
    plain,
    reference,
)
from reconciler.mapping.values import Fields, Value
from reconciler.models.capacity import END_OF_DAY, IMMEDIATELY

RESET_DURATIONS = {IMMEDIATELY: 192350000, END_OF_DAY: 192350001}  # REF-CP: Immediate, Daily
CAPACITY_FORMATS = {"units": 192350000, "profiles": 192360000}  # DEV-WS: Unit/Profile based
CAPACITY = "distribution.capacity"
PROFILE_PREFIX = "capacity:"
"""A workstream's profile row: ``Workstream/<name>/capacity:<profile>``."""


def _unique_name(_f: Fields, address: str, resolver: Resolver) -> Row:
    """REF-CP: msdyn_uniquename is required and set once; the admin center writes its publisher
    prefix and a GUID (ALM: ``new_3518dc8a-…``), the reconciler its own prefix and the id."""
    return {"msdyn_uniquename": "rcn_" + resolver.id_of(address).replace("-", "")}


CAPACITY_PROFILE = RecordKind(
    "CapacityProfile",
    t.TABLES[t.CAPACITY_PROFILE],
    (
        plain("displayName", "msdyn_name", export_always=True),
        plain("defaultMaxUnits", "msdyn_defaultmaxunits", export_always=True),
        boolean("blockAssignment", "msdyn_blockassignment"),
        option("resetAfter", "msdyn_resetduration", RESET_DURATIONS, IMMEDIATELY, create_only=True),
    ),
    on_create=_unique_name,
)


def _profile_row(match: Match) -> Row | None:
    """A workstream's row for a profile: under the workstream, pointing at the profile."""
    workstream, profile = lookup("msdyn_workstream_id"), lookup("msdyn_capacityprofile_id")
    wanted = match.ids.get(f"CapacityProfile/{match.fields.get('profile')}")
    return next(
        (
            row
            for row in match.rows
            if row.get(workstream) == match.parent_id and row.get(profile) == wanted
        ),
        None,
    )


def _link_name(fields: Fields, _a: str, resolver: Resolver) -> Row:
    """The admin center names a workstream's profile row ``<profile name>-<profile id>``
    (ALM: ``ALM Test Chat Capacity Profile-3518dc8a-…``)."""
    profile = resolver.id_of(f"CapacityProfile/{fields.get('profile')}")
    return {"msdyn_name": f"{fields.get('profileName')}-{profile}"[:100]}


WORKSTREAM_PROFILE = RecordKind(
    "WorkstreamCapacityProfile",
    t.TABLES[t.WORKSTREAM_CAPACITY_PROFILE],
    (
        reference("workstream", "msdyn_workstream_id", "Workstream/{}", derived=True),
        # Which profile a row is for never changes: another profile is another row.
        reference(
            "profile",
            "msdyn_capacityprofile_id",
            "CapacityProfile/{}",
            create_only=True,
            derived=True,
        ),
    ),
    on_create=_link_name,
    parent="msdyn_workstream_id",
    child_prefix=PROFILE_PREFIX,
    match=_profile_row,
    noun="capacity profile row",
)


def capacity_format() -> FieldMap:
    """The workstream's capacity format, in the words of its ``distribution.capacity`` block;
    a workstream without one reads as unit-based (DEV-WS: the default, 192350000)."""
    field = option(CAPACITY, "msdyn_capacityformat", CAPACITY_FORMATS, "units", derived=True)

    def read(row: Row, resolver: Resolver) -> Value:
        return "units" if row.get("msdyn_capacityformat") is None else field.read(row, resolver)

    return dataclasses.replace(field, read=read)


def add_profiles(builder: Builder, document: Any, spec: Any) -> dict[str, Value]:
    """A workstream's capacity: its format, and a profile row for each of its profiles. With
    profiles the units are neither written nor compared (ALM's profile-based workstreams keep
    the units they had)."""
    name = document.name
    profiles = spec.distribution.capacity.profiles
    if profiles is None:
        return {CAPACITY: "units"}
    by_name = {d.name: d for d in builder.documents if d.kind == CAPACITY_PROFILE.name}
    for profile in profiles:
        other = by_name.get(profile)
        builder.add(
            WORKSTREAM_PROFILE,
            document,
            f"Workstream/{name}/{PROFILE_PREFIX}{profile}",
            {
                "workstream": name,
                "profile": profile,
                # Carried: the row's name on create (the profile's display name).
                "profileName": other.manifest.display_name if other is not None else profile,
            },
            parent=f"Workstream/{name}",
        )
    return {CAPACITY: "profiles"}


def _desired(_b: Builder, document: Any, spec: Any) -> dict[str, Value]:
    return spec_fields(CAPACITY_PROFILE, spec, {"displayName": document.manifest.display_name})


def _assemble(assembler: Assembler, found: Any) -> dict[str, Any]:
    return manifest_spec(found, assembler.secret)


KIND = ManifestKind(
    "CapacityProfile",
    CAPACITY_PROFILE,
    _desired,
    _assemble,
    file="capacity-profiles.yaml",
    what="capacity profiles",
    noun="capacity profile",
    fallback_name="capacity-profile",
)
