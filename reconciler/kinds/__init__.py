"""Every kind the reconciler manages, one module each (docs/style.md, "A kind is one place").

``MANIFEST_KINDS`` lists the manifest kinds; ``KINDS`` every record kind, in dependency order:
creates run in this order, deletes in reverse (README.md, "apply"; contracts come before the
workstreams that use them, channel instances after the workstreams they serve). A record's
address is also the key its id derives from (``uuid5(namespace, address)``)::

    FacebookAccount/<name>/<page>            FacebookPage (the channel instance)
    GoogleBusinessMessagesAccount/<n>/<a>    GoogleBusinessMessagesAgent
    Workstream/<name>/contract               DecisionContract (one per workstream)
    Workstream/<name>/context.<variable>     ContextVariable
    Workstream/<name>/routing                RoutingConfiguration (one per workstream)
    Workstream/<name>/capacity:<profile>     WorkstreamCapacityProfile (one per profile)
    Workstream/<name>/widget                 ChatWidget (a chat workstream's)
    Workstream/<name>/widget/domain:<host>   ChatWidgetDomain (its allowed domains)
    RoutingRuleSet/<name>/step               RoutingStep (the rule set's place in the routing)
"""

from __future__ import annotations

from reconciler.kinds import capacity, facebook, gbm, queue, routing, workstream
from reconciler.kinds.base import Channel, ManifestKind, RecordKind
from reconciler.kinds.channels import BY_BLOCK, BY_CONTEXT, BY_WORD, CHANNELS

MANIFEST_KINDS: tuple[ManifestKind, ...] = (
    queue.KIND,
    facebook.KIND,
    gbm.KIND,
    capacity.KIND,
    workstream.KIND,
    routing.KIND,
)
BY_KIND: dict[str, ManifestKind] = {kind.name: kind for kind in MANIFEST_KINDS}

KINDS: tuple[RecordKind, ...] = (
    queue.QUEUE,
    facebook.FACEBOOK_ACCOUNT,
    gbm.GBM_ACCOUNT,
    capacity.CAPACITY_PROFILE,
    workstream.CONTRACT,
    workstream.WORKSTREAM,
    workstream.CONTEXT_VARIABLE,
    capacity.WORKSTREAM_PROFILE,
    routing.RULE_SET,
    workstream.ROUTING_CONFIGURATION,
    routing.ROUTING_STEP,
    facebook.FACEBOOK_PAGE,
    gbm.GBM_AGENT,
    *(record for channel in CHANNELS for record in channel.brings),
)
BY_NAME: dict[str, RecordKind] = {kind.name: kind for kind in KINDS}
BY_TABLE: dict[str, RecordKind] = {kind.table.logical_name: kind for kind in KINDS}
STAGE: dict[str, int] = {kind.name: index for index, kind in enumerate(KINDS)}
OWNER: dict[str, ManifestKind] = {
    record.name: kind for kind in MANIFEST_KINDS for record in (kind.record, *kind.brings)
} | {record.name: workstream.KIND for channel in CHANNELS for record in channel.brings}
"""Record kind → the manifest kind whose documents bring it."""

__all__ = [
    "BY_BLOCK",
    "BY_CONTEXT",
    "BY_KIND",
    "BY_NAME",
    "BY_TABLE",
    "BY_WORD",
    "CHANNELS",
    "KINDS",
    "MANIFEST_KINDS",
    "OWNER",
    "STAGE",
    "Channel",
    "ManifestKind",
    "RecordKind",
]
