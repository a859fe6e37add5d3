"""An org made the way the admin center makes it, written over the Web API of a served emulator.

Every row is modelled on what real orgs hold (tests/fixtures/realorg/, each file naming its
source): the ALM export's workstream contract (its chat channel's engagement context swapped
for Facebook's, as docs/routing-xml.md explains), rule sets of type 192350000 whose kind their
contracts tell, steps 192350000 / 192350002, names and unique names in the admin center's
``new_<hex>`` style, rule XML indented as exported with GUIDs in braces (VRT captures). What it
makes:

- queues "General support" and "VIP support", plus the org's own "Default messaging queue";
- a Facebook app with two pages, each serving a workstream;
- "Facebook support": a contract declaring context variable ``Segment`` (and its
  ``msdyn_ocliveworkstreamcontextvariable`` row), a classification set writing it, and a
  route-to-queue set with an equality rule, a 60/40 split and a rule with no condition;
- "Facebook deals": falling back to the default messaging queue (the admin center's default,
  docs/adopting.md), with a contract and routing of its own and no rule set.
"""

from __future__ import annotations

import uuid
from typing import Any

from served import Served

from reconciler.mapping import kinds

SECRETS = {
    "app": "realorg-app-secret-31f0",
    "support": "realorg-support-token-8a2c",
    "deals": "realorg-deals-token-52d9",
}
FACEBOOK = kinds.CHANNELS["facebook"]  # msdyn_streamsource, as the reconciler writes it
PUSH = 192350000
DECLARATIVE = 192350000
CLASSIFICATION_STEP, QUEUE_STEP = 192350000, 192350002


def _id() -> str:
    return str(uuid.uuid4())


def _primary(entity_set: str) -> str:
    return "queueid" if entity_set == "queues" else entity_set.removesuffix("s") + "id"


def _unique(record_id: str) -> str:
    """The admin center's unique names: ``new_`` and the id's hex (ALM export)."""
    return "new_" + record_id.replace("-", "")


def contract_xml(variables: dict[str, str]) -> str:
    """The ALM workstream contract (tests/fixtures/realorg/contracts/), Facebook's context."""
    lines = [
        '<contract version="1">',
        '  <entity logical-name="msdyn_ocliveworkitem" key="msdyn_ocliveworkitem" />',
        '  <entity logical-name="msdyn_effortpredictionresult" '
        'key="msdyn_effortpredictionresult" />',
        '  <entity logical-name="msdyn_facebookengagementctx" key="msdyn_facebookengagementctx" />',
        '  <entity logical-name="msdyn_ocliveworkitemcharacteristic" '
        'key="msdyn_ocliveworkitemcharacteristic" is-collection="true" />',
        '  <entity logical-name="msdyn_ocliveworkitemcapacityprofile" '
        'key="msdyn_ocliveworkitemcapacityprofile" is-collection="true" />',
    ]
    if variables:
        lines.append('  <complex key="liveworkitemcontext">')
        lines += [f'    <variable name="{n}" data-type="{t}" />' for n, t in variables.items()]
        lines.append("  </complex>")
    return "\n".join([*lines, "</contract>"])


def classification_xml(rule_id: str) -> str:
    """VRT ENRICHMENT_HIT_FIRST's shape, writing a context variable."""
    return f"""<decision hit-policy="first" version="1">
  <rules>
    <rule id="{rule_id}" name="Dutch customers are gold">
      <logical operator="AND">
        <condition operator="==">
          <lhs type="attribute">msdyn_facebookengagementctx.msdyn_locale</lhs>
          <rhs type="staticvalue">nl_NL</rhs>
        </condition>
      </logical>
      <action>
        <setattribute>
          <lhs type="attribute">liveworkitemcontext.Segment</lhs>
          <rhs type="staticvalue">gold</rhs>
        </setattribute>
      </action>
    </rule>
  </rules>
</decision>"""


def route_xml(ids: list[str], vip: str, general: str, default: str) -> str:
    """VRT's route-to-queue captures: an equality rule (GUID in braces, upper case as the
    admin center may write it), a 60/40 split, and a rule with no condition."""
    return f"""<decision hit-policy="all" version="1">
  <rules>
    <rule id="{ids[0]}" name="Gold to VIP">
      <logical operator="AND">
        <logical operator="AND">
          <condition operator="==">
            <lhs type="attribute">liveworkitemcontext.Segment</lhs>
            <rhs type="staticvalue">gold</rhs>
          </condition>
        </logical>
      </logical>
      <action>
        <setattribute>
          <lhs type="attribute">assign_to.queue</lhs>
          <rhs type="staticvalue">{{{vip.upper()}}}</rhs>
        </setattribute>
      </action>
    </rule>
    <rule id="{ids[1]}" name="Share known customers">
      <logical operator="AND">
        <condition operator="not-null">
          <lhs type="attribute">msdyn_facebookengagementctx.msdyn_customername</lhs>
        </condition>
      </logical>
      <action>
        <upsertrecords>
          <target>percentagebaseddistribution</target>
          <records>
            <record>
              <setattribute>
                <lhs type="attribute">queuedetails.queueid</lhs>
                <rhs type="staticvalue">{{{general}}}</rhs>
              </setattribute>
              <setattribute>
                <lhs type="attribute">queuedetails.percentage</lhs>
                <rhs type="staticvalue">60</rhs>
              </setattribute>
            </record>
            <record>
              <setattribute>
                <lhs type="attribute">queuedetails.queueid</lhs>
                <rhs type="staticvalue">{{{default}}}</rhs>
              </setattribute>
              <setattribute>
                <lhs type="attribute">queuedetails.percentage</lhs>
                <rhs type="staticvalue">40</rhs>
              </setattribute>
            </record>
          </records>
        </upsertrecords>
      </action>
    </rule>
    <rule id="{ids[2]}" name="Everyone else">
      <action>
        <setattribute>
          <lhs type="attribute">assign_to.queue</lhs>
          <rhs type="staticvalue">{general}</rhs>
        </setattribute>
      </action>
    </rule>
  </rules>
</decision>"""


class Org:
    """Writes the org into ``emulator`` through its Web API, as any Dataverse tool would."""

    def __init__(self, emulator: Served) -> None:
        self.emulator = emulator
        self.ids: dict[str, str] = {}

    def post(self, entity_set: str, key: str, row: dict[str, Any], unique: bool = False) -> str:
        """Create a row; ``unique`` gives it the admin center's unique name."""
        record_id = self.ids[key] = _id()
        if unique:
            row = {**row, "msdyn_uniquename": _unique(record_id)}
        answer = self.emulator.post(entity_set, {_primary(entity_set): record_id, **row})
        assert answer.status_code == 204, (entity_set, answer.text)
        return record_id

    def one(self, entity_set: str, filter: str) -> str:
        rows = self.emulator.get(entity_set, **{"$filter": filter}).json()["value"]
        assert len(rows) == 1, (entity_set, filter, rows)
        return str(rows[0][_primary(entity_set)])

    def make(self) -> Org:
        default = self.ids["default"] = self.one("queues", "name eq 'Default messaging queue'")
        output = self.one(
            "msdyn_decisioncontracts", "msdyn_uniquename eq 'msdyn_demandqueueidentificationoutput'"
        )
        dutch = self.one("msdyn_oclanguages", "msdyn_localecode eq 'nl-NL'")
        queue = {
            "msdyn_isomnichannelqueue": True,
            "msdyn_queuetype": 192350000,
            "msdyn_assignmentstrategy": 192350000,
        }
        general = self.post(
            "queues", "general", {**queue, "name": "General support", "msdyn_priority": 5}
        )
        vip = self.post(
            "queues",
            "vip",
            {
                **queue,
                "name": "VIP support",
                "msdyn_priority": 1,
                "msdyn_assignmentstrategy": 192350001,
            },
        )
        app = self.post(
            "msdyn_ocfbapplications",
            "app",
            {
                "msdyn_name": "Contoso on Facebook",
                "msdyn_fbapplicationid": "300000000000003",
                "msdyn_fbapplicationsecret": SECRETS["app"],
            },
        )
        workstreams = {}
        for key, name, fallback, variables in (
            ("support", "Facebook support", general, {"Segment": "string"}),
            ("deals", "Facebook deals", default, {}),
        ):
            contract = self.post(
                "msdyn_decisioncontracts",
                f"{key}-contract",
                {
                    "msdyn_name": f"{name} contract",
                    "msdyn_contractdefinition": contract_xml(variables),
                },
                unique=True,
            )
            workstream = workstreams[key] = self.post(
                "msdyn_liveworkstreams",
                key,
                {
                    "msdyn_name": name,
                    "msdyn_streamsource": FACEBOOK,
                    "msdyn_workdistributionmode": PUSH,
                    "msdyn_mode": 717210001,
                    "msdyn_capacityformat": 192350000,
                    "msdyn_capacityrequired": 10,
                    "msdyn_maxconcurrentconnection": 2,
                    "msdyn_autocloseafterinactivity": 2880,
                    "msdyn_direction": 0,
                    "msdyn_conversationmode": 192350001,
                    "msdyn_enableautomatedmessages": True,
                    "msdyn_defaultqueue@odata.bind": f"/queues({fallback})",
                    "msdyn_routingcontractid@odata.bind": f"/msdyn_decisioncontracts({contract})",
                },
            )
            link = f"/msdyn_liveworkstreams({workstream})"
            for variable in variables:
                self.post(
                    "msdyn_ocliveworkstreamcontextvariables",
                    f"{key}-{variable}",
                    {
                        "msdyn_name": variable,
                        "msdyn_datatype": 192350000,
                        "msdyn_liveworkstreamid@odata.bind": link,
                    },
                )
            self.post(
                "msdyn_routingconfigurations",
                f"{key}-routing",
                {
                    "msdyn_name": f"{name} routing",
                    "msdyn_isactiveconfiguration": True,
                    "msdyn_liveworkstreamid@odata.bind": f"/msdyn_liveworkstreams({workstream})",
                },
                unique=True,
            )
            self.post(
                "msdyn_ocfbpages",
                f"{key}-page",
                {
                    "msdyn_fbpagename": f"Contoso {key.title()}",
                    "msdyn_fbpageid": "10485760000000" + str(len(self.ids) % 10),
                    "msdyn_fbpageaccesstoken": SECRETS[key],
                    "msdyn_enablefileattachmentsforcustomers": True,
                    "msdyn_ocfbapplicationid@odata.bind": f"/msdyn_ocfbapplications({app})",
                    "msdyn_liveworkstreamid@odata.bind": f"/msdyn_liveworkstreams({workstream})",
                    "msdyn_ocwidgetlanguage@odata.bind": f"/msdyn_oclanguages({dutch})",
                },
            )
        contract = self.ids["support-contract"]
        for key, name, target, xml, step, order in (
            (
                "classify",
                "Facebook support classification",
                contract,
                classification_xml(_id()),
                CLASSIFICATION_STEP,
                1,
            ),
            (
                "route",
                "Facebook support route to queue",
                output,
                route_xml([_id(), _id(), _id()], vip, general, default),
                QUEUE_STEP,
                2,
            ),
        ):
            rule_set = self.post(
                "msdyn_decisionrulesets",
                key,
                {
                    "msdyn_name": name,
                    "msdyn_rulesetdefinition": xml,
                    "msdyn_rulesettype": DECLARATIVE,
                    "msdyn_authoringmode": 192350000,
                    "msdyn_isinputcollection": False,
                    "msdyn_inputcontractid@odata.bind": f"/msdyn_decisioncontracts({contract})",
                    "msdyn_outputcontractid@odata.bind": f"/msdyn_decisioncontracts({target})",
                },
                unique=True,
            )
            self.post(
                "msdyn_routingconfigurationsteps",
                f"{key}-step",
                {
                    "msdyn_name": name,
                    "msdyn_steporder": order,
                    "msdyn_type": step,
                    "msdyn_routingconfigurationid@odata.bind": (
                        f"/msdyn_routingconfigurations({self.ids['support-routing']})"
                    ),
                    "msdyn_rulesetid@odata.bind": f"/msdyn_decisionrulesets({rule_set})",
                },
                unique=True,
            )
        return self
