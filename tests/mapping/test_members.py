"""A queue's members as a field (reconciler.mapping.fields.members): read from the expanded
relationship by sign-in name, never written as a column, compared as sets by the plan."""

from __future__ import annotations

from reconciler.dataverse.tables import QUEUE_MEMBERSHIP
from reconciler.kinds.base import Unreadable
from reconciler.mapping.fields import Resolver, members
from reconciler.plan.builder import member_changes, unlisted

ADA, BOB = "0b5c0b5c-0000-4000-8000-000000000ada", "0b5c0b5c-0000-4000-8000-000000000b0b"
FIELD = members("members", QUEUE_MEMBERSHIP)
RESOLVER = Resolver(users={ADA: "ada@contoso.com", BOB: "CONTOSO\\bob"})


def test_members_are_read_by_sign_in_name_in_order_ignoring_case() -> None:
    row = {"queuemembership_association": [{"systemuserid": BOB}, {"systemuserid": ADA}]}
    assert FIELD.read(row, RESOLVER) == ["ada@contoso.com", "CONTOSO\\bob"]
    assert FIELD.read({}, RESOLVER) is None  # not expanded: not known
    assert FIELD.write(["anyone@contoso.com"], {}, "Queue/q", RESOLVER) == {}  # no column


def test_a_user_without_a_sign_in_name_reads_as_its_id_and_is_written_by_it() -> None:
    ghost = "0b5c0b5c-0000-4000-8000-00000000dead"
    row = {"queuemembership_association": [{"systemuserid": ghost}]}
    assert FIELD.read(row, RESOLVER) == [f"<{ghost}>"]
    assert RESOLVER.user_id(f"<{ghost}>") == ghost
    assert RESOLVER.user_id("ADA@contoso.com") == ADA


def test_an_expanded_list_with_more_to_read_is_not_taken_as_complete() -> None:
    row = {
        "queuemembership_association": [{"systemuserid": ADA}],
        "queuemembership_association@odata.nextLink": "https://org/api/data/v9.2/more",
    }
    value = FIELD.read(row, RESOLVER)
    assert isinstance(value, Unreadable)
    assert "more than the 1 members one read returns" in value


def test_member_changes_add_always_and_remove_only_with_prune() -> None:
    before = ["ada@contoso.com", "CONTOSO\\bob"]
    after = ["ADA@contoso.com", "grace@contoso.com"]
    assert member_changes("members", before, after, prune=False) == [
        ('members["grace@contoso.com"]', None, "grace@contoso.com")
    ]
    assert member_changes("members", before, after, prune=True) == [
        ('members["CONTOSO\\\\bob"]', "CONTOSO\\bob", None),
        ('members["grace@contoso.com"]', None, "grace@contoso.com"),
    ]
    assert unlisted(before, after) == ["CONTOSO\\bob"]
    assert member_changes("members", None, [], prune=True) == []
