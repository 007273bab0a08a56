"""Roles, role assignments and the principal a request acts as, as ARM's RBAC has them.

A role (Reader, Contributor, Owner) is assigned over a scope: ``/subscriptions/<guid>``, or
``/`` for every subscription, to a principal (:class:`PrincipalId`). Locally minted tokens
carry their assignments; for tokens from an external identity provider the assignments are
read from the store (``opstatus role``).

A principal is named by its issuer as well as its id, because ids are only unique within one
identity provider: two providers may both have a user ``4f0c...``, and only one of them is
the one an assignment was made for. Within a provider, a token's ``oid`` names it; a token
without ``oid`` is named by its ``sub``, in a namespace of its own (``claim``), so that a
``sub`` equal to someone's ``oid`` does not make its holder that someone.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal, NamedTuple

from ..errors import NotAuthorized

Role = Literal["Reader", "Contributor", "Owner"]
Action = Literal["read", "write", "admin"]
ROLES: tuple[Role, ...] = ("Reader", "Contributor", "Owner")
ROLE_ACTIONS: dict[str, frozenset[str]] = {
    "Reader": frozenset({"read"}),
    "Contributor": frozenset({"read", "write"}),
    "Owner": frozenset({"read", "write", "admin"}),
}
#: The issuer of locally minted tokens.
LOCAL_ISSUER = "opstatus"
#: The claims a principal id may come from: ``oid``, else (a token without one) ``sub``.
OID = "oid"
SUB = "sub"
CLAIMS = (OID, SUB)
#: The issuer of assignments made before assignments named one (schema version 2): they
#: belong to no provider until bound to one (:func:`opstatus.stores.roles.bind_unbound`).
UNBOUND = ""


class PrincipalId(NamedTuple):
    """Whom a role assignment names: an issuer, the claim the id comes from, and the id."""

    issuer: str
    claim: str
    value: str


@dataclass(frozen=True, slots=True)
class RoleAssignment:
    """``role`` over ``scope``, held by ``principal``."""

    role: str
    scope: str
    principal: PrincipalId

    def covers(self, subscription_id: str, action: str) -> bool:
        if action not in ROLE_ACTIONS.get(self.role, frozenset()):
            return False
        return self.scope == "/" or self.scope.lower() == f"/subscriptions/{subscription_id}"


@dataclass(frozen=True, slots=True)
class Principal:
    """Who a verified token speaks for.

    ``object_id`` is the token's ``oid``, else its ``sub``; ``claim`` says which.
    ``external`` principals come from an identity provider: their ``roles`` are filled from
    the store on every request (by :attr:`id`), never from the token.
    """

    subject: str
    object_id: str
    roles: tuple[RoleAssignment, ...]
    expires_at: float
    issuer: str = LOCAL_ISSUER
    external: bool = False
    claim: str = OID
    #: Answers of :meth:`can` so far: a verified token's principal is reused for every
    #: request that token makes, and its roles never change.
    _answers: dict[tuple[str, str], bool] = field(
        default_factory=dict, init=False, repr=False, compare=False, hash=False
    )

    @property
    def id(self) -> PrincipalId:
        """What role assignments name this principal by."""
        return PrincipalId(self.issuer, self.claim, self.object_id)

    @property
    def key(self) -> str:
        """Unique across issuers: what rate limits and audit lines are keyed by."""
        if self.issuer == LOCAL_ISSUER:
            return self.object_id
        if self.claim == SUB:
            return f"{self.issuer}#sub:{self.object_id}"
        return f"{self.issuer}#{self.object_id}"

    def with_roles(self, roles: tuple[RoleAssignment, ...]) -> Principal:
        """This principal holding ``roles`` (cheaper than dataclasses.replace, per request)."""
        return Principal(
            self.subject,
            self.object_id,
            roles,
            self.expires_at,
            self.issuer,
            self.external,
            self.claim,
        )

    def can(self, action: str, subscription_id: str) -> bool:
        key = (action, subscription_id)
        answer = self._answers.get(key)
        if answer is None:
            if len(self._answers) >= 1024:  # a caller trying every subscription
                self._answers.clear()
            answer = self._answers[key] = any(r.covers(subscription_id, action) for r in self.roles)
        return answer


def normalize_scope(scope: str) -> str:
    """Accept ``/`` or ``/subscriptions/<guid>``; the GUID is lower-cased."""
    from ..models import validate_subscription_id

    if scope == "/":
        return scope
    parts = scope.strip("/").split("/")
    if len(parts) != 2 or parts[0].lower() != "subscriptions":
        raise ValueError(f"scope must be '/' or '/subscriptions/<guid>', got {scope!r}")
    return f"/subscriptions/{validate_subscription_id(parts[1])}"


def canonical_role(role: str) -> Role:
    """``reader`` -> ``Reader``; anything else is a ValueError naming the known roles."""
    for known in ROLES:
        if known.lower() == role.lower():
            return known
    raise ValueError(f"role must be one of {', '.join(ROLES)}, got {role!r}")


def authorize(
    principal: Principal, action: str, subscription_id: str, scope: str, arm_action: str
) -> None:
    """Raise ARM's 403 unless a role allows ``action``; the message never depends on data."""
    if not principal.can(action, subscription_id):
        raise NotAuthorized(
            f"The client '{principal.subject}' with object id '{principal.object_id}' does not "
            f"have authorization to perform action '{arm_action}' over scope '{scope}' or the "
            "scope is invalid. If access was recently granted, please refresh your credentials."
        )
