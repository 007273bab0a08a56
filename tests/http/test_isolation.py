"""The isolation matrix: who may read and write which subscription's operations.

Nine principals (Reader, Contributor, Owner on subscription A, on B, and on ``/``), with
their roles either inside a locally minted token or assigned in the store to a provider
principal, each try read, create, update and delete under A and under B, on the
subscription's own operation, on the other subscription's operation id, and on an id that
never existed. Every cell is asserted:

- no fitting role on the URL's subscription: 403 ``AuthorizationFailed``, the same answer
  whether the id exists, exists elsewhere, or never existed;
- a fitting role: the other subscription's id behaves exactly as a missing one (404 on
  read and update, 204 on delete, a separate new operation on create), and the other
  subscription's operation is never changed.

To do after the merge with the lifecycle branch: the list endpoint, as a fifth action.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from opstatus.auth import OID, PrincipalId, RoleAssignment, mint_token
from opstatus.auth.local import load_or_create_key
from opstatus.stores import MemoryStore
from tests.idp import IdentityProvider
from tests.support import SUB_A, SUB_B, app_client, bearer, status_path

from .conftest import assert_arm_error

pytestmark = pytest.mark.anyio

SUBS = {"A": SUB_A, "B": SUB_B}
OWN_ID = {"A": "op-a", "B": "op-b"}
MISSING_ID = "op-never"
SEED = {"status": "InProgress", "percentComplete": 10}
ACTIONS = ("read", "create", "update", "delete")
PRINCIPALS = [
    (role, where) for role in ("Reader", "Contributor", "Owner") for where in ("A", "B", "/")
]


@pytest.fixture(scope="module")
def idp(tmp_path_factory: pytest.TempPathFactory) -> IdentityProvider:
    return IdentityProvider(tmp_path_factory.mktemp("idp"))


def scope_of(where: str) -> str:
    return "/" if where == "/" else f"/subscriptions/{SUBS[where]}"


def allowed(role: str, where: str, sub: str, action: str) -> bool:
    if where not in ("/", sub):
        return False
    return action == "read" or role in ("Contributor", "Owner")


async def request(client: httpx.AsyncClient, action: str, url: str, auth: dict[str, str]) -> Any:
    if action == "read":
        return await client.get(url, headers=auth)
    if action == "create":
        return await client.put(url, headers=auth, json=SEED)
    if action == "update":
        return await client.patch(url, headers=auth, json={"percentComplete": 50})
    return await client.delete(url, headers=auth)


class Seeded:
    """Both subscriptions' operations, put back as seeded before every cell."""

    def __init__(self, client: httpx.AsyncClient, admin: dict[str, str]) -> None:
        self.client = client
        self.admin = admin
        self.bodies: dict[str, Any] = {}

    async def reset(self) -> None:
        for name, sub in SUBS.items():
            for op_id in (*OWN_ID.values(), MISSING_ID):
                await self.client.delete(status_path(sub=sub, op_id=op_id), headers=self.admin)
            url = status_path(sub=sub, op_id=OWN_ID[name])
            created = await self.client.put(url, headers=self.admin, json=SEED)
            assert created.status_code == 201, created.text
            self.bodies[name] = created.json()

    async def current(self, name: str) -> Any:
        url = status_path(sub=SUBS[name], op_id=OWN_ID[name])
        response = await self.client.get(url, headers=self.admin)
        return response.status_code, response.json()


@pytest.fixture
def store() -> MemoryStore:
    return MemoryStore()


@pytest.fixture
async def isolated(
    home: Path, idp: IdentityProvider, store: MemoryStore
) -> AsyncIterator[httpx.AsyncClient]:
    # The matrix re-seeds between cells: hundreds of requests, more than the default rate.
    async with app_client(home, store=store, security=idp.security(rate_limit=0)) as client:
        yield client


async def credentials(
    source: str, role: str, where: str, home: Path, idp: IdentityProvider, store: MemoryStore
) -> tuple[dict[str, str], str]:
    """The principal's Authorization header, and the ARM 'client ... object id' it shows."""
    name = f"{role.lower()}-{'root' if where == '/' else where.lower()}"
    if source == "local":
        token = mint_token(load_or_create_key(home), name, [(role, scope_of(where))])
        return {"Authorization": f"Bearer {token}"}, f"The client '{name}' with object id '{name}'"
    await store.assign_role(
        RoleAssignment(role, scope_of(where), PrincipalId(idp.issuer, OID, name))
    )
    shown = f"The client '{name}@contoso.example' with object id '{name}'"
    return {"Authorization": f"Bearer {idp.token(name)}"}, shown


def expected_allowed(action: str, kind: str) -> int:
    if action == "read" or action == "update":
        return 200 if kind == "own" else 404
    if action == "delete":
        return 200 if kind == "own" else 204
    return 200 if kind == "own" else 201  # create: a replay, or a separate new operation


@pytest.mark.parametrize("source", ["local", "provider"])
@pytest.mark.parametrize(("role", "where"), PRINCIPALS)
async def test_isolation_matrix(
    isolated: httpx.AsyncClient,
    home: Path,
    idp: IdentityProvider,
    store: MemoryStore,
    source: str,
    role: str,
    where: str,
) -> None:
    seeded = Seeded(isolated, bearer(home, "Owner", "/", subject="admin"))
    auth, client_text = await credentials(source, role, where, home, idp, store)
    cells = 0
    for sub_name, sub in SUBS.items():
        other_name = "B" if sub_name == "A" else "A"
        ids = {"own": OWN_ID[sub_name], "other": OWN_ID[other_name], "missing": MISSING_ID}
        for action in ACTIONS:
            denials: dict[str, bytes] = {}
            for kind, op_id in ids.items():
                await seeded.reset()
                response = await request(isolated, action, status_path(sub=sub, op_id=op_id), auth)
                cell = (source, role, where, sub_name, action, kind)
                if not allowed(role, where, sub_name, action):
                    error = assert_arm_error(response, 403, "AuthorizationFailed")
                    assert error["message"].startswith(client_text), cell
                    denials[kind] = response.content.replace(op_id.encode(), b"<id>")
                    assert await seeded.current(sub_name) == (200, seeded.bodies[sub_name]), cell
                else:
                    status = expected_allowed(action, kind)
                    assert response.status_code == status, (cell, response.text)
                    if status == 404:
                        assert_arm_error(response, 404, "ResourceNotFound", target="operationId")
                    if status in (200, 201) and action != "delete":
                        assert response.json()["id"].lower().startswith(f"/subscriptions/{sub}/")
                # Whatever happened under this subscription, the other one's is untouched.
                assert await seeded.current(other_name) == (200, seeded.bodies[other_name]), cell
                cells += 1
            if denials:  # identical for existing, elsewhere-existing and missing ids
                assert len(set(denials.values())) == 1, (source, role, where, sub_name, action)
    assert cells == 2 * len(ACTIONS) * 3
