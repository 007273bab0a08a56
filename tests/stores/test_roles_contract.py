"""The RoleAssignmentStore contract, over every backend of the Store contract suite.

The backends (and their ``make_store``/``store`` fixtures) come from ``test_contract``, so a
new backend added there runs here too.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest

from opstatus.auth import OID, SUB, PrincipalId, RoleAssignment
from opstatus.stores.base import Store
from tests.stores import test_contract as contract
from tests.stores.test_contract import PERSISTENT, SUB_A, SUB_B, opened

# The contract suite's fixtures, so that every backend it lists runs here too.
make_store = contract.make_store
store = contract.store

pytestmark = pytest.mark.anyio

ISSUER = "https://login.contoso.example/tenant/v2.0"
OTHER_ISSUER = "https://idp.fabrikam.example/realms/staff"
ALICE = PrincipalId(ISSUER, OID, "alice")
BOB = PrincipalId(ISSUER, OID, "bob")
CAROL = PrincipalId(ISSUER, OID, "carol")
ALICE_READER_A = RoleAssignment("Reader", f"/subscriptions/{SUB_A}", ALICE)
ALICE_OWNER_B = RoleAssignment("Owner", f"/subscriptions/{SUB_B}", ALICE)
BOB_CONTRIBUTOR_ROOT = RoleAssignment("Contributor", "/", BOB)


async def test_empty_store_has_no_assignments(store: Store) -> None:
    assert await store.list_role_assignments() == []
    assert await store.list_role_assignments(ALICE) == []


async def test_assign_then_list_by_principal_and_all(store: Store) -> None:
    assert await store.assign_role(BOB_CONTRIBUTOR_ROOT) is True
    assert await store.assign_role(ALICE_OWNER_B) is True
    assert await store.assign_role(ALICE_READER_A) is True
    # Ordered by principal, then scope (SUB_B sorts before SUB_A), then role.
    assert await store.list_role_assignments(ALICE) == [ALICE_OWNER_B, ALICE_READER_A]
    assert await store.list_role_assignments(BOB) == [BOB_CONTRIBUTOR_ROOT]
    assert await store.list_role_assignments(CAROL) == []
    assert await store.list_role_assignments() == [
        ALICE_OWNER_B,
        ALICE_READER_A,
        BOB_CONTRIBUTOR_ROOT,
    ]


async def test_assign_twice_is_no_change(store: Store) -> None:
    assert await store.assign_role(ALICE_READER_A) is True
    assert await store.assign_role(ALICE_READER_A) is False
    assert await store.list_role_assignments(ALICE) == [ALICE_READER_A]


async def test_same_principal_may_hold_several_roles_on_one_scope(store: Store) -> None:
    owner_a = RoleAssignment("Owner", ALICE_READER_A.scope, ALICE)
    await store.assign_role(ALICE_READER_A)
    await store.assign_role(owner_a)
    assert await store.list_role_assignments(ALICE) == [owner_a, ALICE_READER_A]


async def test_remove_only_the_named_assignment(store: Store) -> None:
    for a in (ALICE_READER_A, ALICE_OWNER_B, BOB_CONTRIBUTOR_ROOT):
        await store.assign_role(a)
    assert await store.remove_role(ALICE_OWNER_B) is True
    assert await store.remove_role(ALICE_OWNER_B) is False
    assert await store.remove_role(RoleAssignment("Owner", "/", BOB)) is False
    assert await store.list_role_assignments() == [ALICE_READER_A, BOB_CONTRIBUTOR_ROOT]


async def test_principal_ids_are_exact(store: Store) -> None:
    await store.assign_role(ALICE_READER_A)
    assert await store.list_role_assignments(ALICE._replace(value="Alice")) == []
    assert await store.list_role_assignments(ALICE._replace(value="alice ")) == []


async def test_the_same_id_of_another_issuer_or_claim_is_another_principal(store: Store) -> None:
    """Ids are unique within one provider only, and a 'sub' is not an 'oid'."""
    others = [
        ALICE._replace(issuer=OTHER_ISSUER),
        ALICE._replace(claim=SUB),
        ALICE._replace(issuer=""),
        ALICE._replace(issuer=ISSUER.upper()),
    ]
    await store.assign_role(ALICE_READER_A)
    for other in others:
        assert await store.list_role_assignments(other) == []
        assert (
            await store.remove_role(RoleAssignment("Reader", ALICE_READER_A.scope, other)) is False
        )
    theirs = [RoleAssignment("Reader", ALICE_READER_A.scope, other) for other in others]
    for a in theirs:
        assert await store.assign_role(a) is True
    for a in theirs:
        assert await store.list_role_assignments(a.principal) == [a]
    assert await store.list_role_assignments(ALICE) == [ALICE_READER_A]
    # By issuer, claim, id, scope, role, as code points compare: "" < "HTTPS" < "https://i".
    expected = [theirs[2], theirs[3], theirs[0], ALICE_READER_A, theirs[1]]
    assert await store.list_role_assignments() == expected


async def test_concurrent_assignments_all_land(store: Store) -> None:
    wanted = [
        RoleAssignment("Reader", "/", PrincipalId(ISSUER, OID, f"p{i:02d}")) for i in range(20)
    ]
    results = await asyncio.gather(*(store.assign_role(a) for a in wanted))
    assert results == [True] * 20
    assert await store.list_role_assignments() == wanted


@pytest.mark.parametrize("make_store", PERSISTENT, indirect=True)
async def test_a_change_is_seen_by_another_instance_at_once(
    make_store: Callable[[], Store],
) -> None:
    """What 'on every instance, on the next request' rests on: no cache in the store."""
    async with opened(make_store) as server_a, opened(make_store) as server_b:
        assert await server_b.list_role_assignments(ALICE) == []
        await server_a.assign_role(ALICE_READER_A)
        assert await server_b.list_role_assignments(ALICE) == [ALICE_READER_A]
        await server_b.remove_role(ALICE_READER_A)
        assert await server_a.list_role_assignments(ALICE) == []
    async with opened(make_store) as reopened:
        assert await reopened.list_role_assignments() == []
