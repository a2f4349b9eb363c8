"""Read and ownership scopes as SQL predicates, and the 404-before-403 rule.

Each function returns one predicate on columns the row already has (`account_id`, `user_profile_id`,
`id`): no per-profile loops, no COUNT queries, no joins for owned resources. Reads never create rows.

Owned resources (plugins, API keys):
- read scope: superuser -> everything; others -> rows of any of their accounts, or of the platform account;
- ownership scope: superuser -> everything; staff -> rows of their accounts; regular -> rows of their profiles.

"Their accounts" are the principal's memberships: a named key's owner account only, a login token's every
active account of its user. Two rules live here once: which account a caller acts in (`acting_account`)
and whether a caller may manage a user (`user_manage_scope`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal, Protocol, TypeVar

from sqlalchemy import ColumnElement, Select, and_, any_, bindparam, exists, false, select, true
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.ext.asyncio import AsyncSession

from app.errors import Forbidden, NotFound, Unprocessable
from app.identifiers import PLATFORM_ACCOUNT_NUMBER
from app.models import Account, AccountContact, User, UserProfile
from app.services.principals import Membership, Principal

T = TypeVar("T")


class Owned(Protocol):
    # Any: mypy matches the models' `Mapped[int]` descriptors by their instance type (int), which no
    # column type can express; the class attributes are columns at run time.
    account_id: Any
    user_profile_id: Any


def _in(column: Any, values: tuple[int, ...]) -> ColumnElement[bool]:
    return column.in_(values) if values else false()


# The column an owned-resource scope filters on (None: no filter, a superuser's), and the allowed values.
ScopeShape = tuple[Literal["account_id", "user_profile_id"] | None, tuple[int, ...]]


def owned_scope_shape(principal: Principal, kind: Literal["readable", "owned"]) -> ScopeShape:
    """The read (`readable`) or ownership (`owned`) scope as data: prepared statements bind the values."""
    if principal.is_superuser:
        return None, ()
    if kind == "readable":
        return "account_id", principal.readable_account_ids
    if principal.is_staff:
        return "account_id", principal.account_ids
    return "user_profile_id", principal.profile_ids


def in_bound_ids(column: Any, name: str, *, dialect: str) -> ColumnElement[bool]:
    """`column` among the ids bound later as `name`, for a statement built once and executed many times.

    PostgreSQL takes the ids as one array parameter (`= ANY($1)`): the SQL text stays the same whatever
    their number, where an expanding `IN` is re-rendered on every execution (a sixth of a page request's
    CPU) and prepared anew for each list length. Other dialects have no arrays and keep the `IN`.
    """
    predicate: ColumnElement[bool]
    if dialect == "postgresql":
        predicate = column == any_(bindparam(name, type_=ARRAY(column.type)))
    else:
        predicate = column.in_(bindparam(name, expanding=True))
    return predicate


def _scope_predicate(model: type[Owned], shape: ScopeShape) -> ColumnElement[bool]:
    column, values = shape
    return true() if column is None else _in(getattr(model, column), values)


def read_scope(principal: Principal, model: type[Owned]) -> ColumnElement[bool]:
    return _scope_predicate(model, owned_scope_shape(principal, "readable"))


def can_read_owned(principal: Principal, account_id: int) -> bool:
    """`read_scope` for one row already in memory (a cached snapshot): the same rule, evaluated in Python."""
    return principal.is_superuser or account_id in principal.readable_account_ids


def member_scope(principal: Principal, model: type[Owned]) -> ColumnElement[bool]:
    """Owned resources only the members of their account read (connections): superuser all; others the
    rows of their accounts (not the platform account's, unlike `read_scope`)."""
    return true() if principal.is_superuser else _in(model.account_id, principal.account_ids)


def ownership_scope(principal: Principal, model: type[Owned]) -> ColumnElement[bool]:
    return _scope_predicate(model, owned_scope_shape(principal, "owned"))


def account_scope(principal: Principal) -> ColumnElement[bool]:
    """Accounts: superuser all; others the accounts they have a profile in."""
    return true() if principal.is_superuser else _in(Account.id, principal.account_ids)


def can_read_account(principal: Principal, account_id: int) -> bool:
    """`account_scope` for one account already in memory (a cached snapshot): the same rule, in Python."""
    return principal.is_superuser or account_id in principal.account_ids


def _members_of(account_ids: tuple[int, ...]) -> Any:
    return select(UserProfile.user_id).where(_in(UserProfile.account_id, account_ids))


def user_scope(principal: Principal) -> ColumnElement[bool]:
    """Users: superuser all; staff the users of their accounts; regular themselves."""
    if principal.is_superuser:
        return true()
    if principal.is_staff:
        return User.id.in_(_members_of(principal.account_ids))
    return User.id == principal.user_id


def profile_scope(principal: Principal) -> ColumnElement[bool]:
    """Profiles: superuser all; staff the profiles of their accounts; regular their own."""
    if principal.is_superuser:
        return true()
    if principal.is_staff:
        return _in(UserProfile.account_id, principal.account_ids)
    return UserProfile.user_id == principal.user_id


def contact_scope(principal: Principal) -> ColumnElement[bool]:
    """Contacts: read by members of the account and superusers."""
    return true() if principal.is_superuser else _in(AccountContact.account_id, principal.account_ids)


def is_account_admin(principal: Principal, account_id: int) -> bool:
    """Superuser, or staff with a profile in the account."""
    return principal.is_superuser or (principal.is_staff and account_id in principal.account_ids)


def account_admin_scope(principal: Principal, account_id: Any) -> ColumnElement[bool]:
    """`is_account_admin` as a predicate on a row's account column (profiles, contacts)."""
    if principal.is_superuser:
        return true()
    return _in(account_id, principal.account_ids) if principal.is_staff else false()


def require(allowed: bool, message: str) -> None:
    """The 403 half of the rule: the caller can see the object but may not do this to it."""
    if not allowed:
        raise Forbidden(message)


async def get_scoped(
    session: AsyncSession,
    statement: Select[T],
    *,
    write_scope: ColumnElement[bool] | None = None,
    not_found: str,
    forbidden: str = "You do not have permission to change this.",
) -> T:
    """Run a statement already filtered by id and read scope.

    Absent or unreadable -> 404 (never reveal existence); readable but outside `write_scope` -> 403.
    Both facts come back in one query (`write_scope` is evaluated as a column).
    """
    if write_scope is None:
        obj = (await session.execute(statement)).scalars().unique().one_or_none()
        if obj is None:
            raise NotFound(not_found)
        return obj
    row = (await session.execute(statement.add_columns(write_scope.label("writable")))).unique().one_or_none()
    if row is None:
        raise NotFound(not_found)
    obj, writable = row  # the statement's entity, then the flag added above
    require(bool(writable), forbidden)
    return obj  # type: ignore[no-any-return]


@dataclass(frozen=True, slots=True)
class Acting:
    """The account a caller acts in, and their profile there (None: a superuser acting outside their own)."""

    account_id: int
    account_number: str
    membership: Membership | None

    @classmethod
    def of(cls, membership: Membership) -> Acting:
        return cls(membership.account_id, membership.account_number, membership)


NO_ACCOUNT = "You do not belong to any active account."


class NoActingAccount(Unprocessable):
    """The caller named no account and belongs to none (reads of what they can see still work)."""


NOT_A_MEMBER = "You do not belong to an active account with this number."


async def acting_account(
    session: AsyncSession, principal: Principal, account_number: str | None = None, *, where: str = "query"
) -> Acting:
    """Which account this caller acts in: the one rule for REST writes, manifests of every kind and whoami.

    The account named by `accountNumber` when the caller belongs to it (422 otherwise; a superuser may name
    any account), else the caller's first profile's by lowest id, else (a superuser) the platform account.
    A named key's principal has one membership, its owner profile's: the key acts only there. Inactive
    accounts are not memberships of anyone but a superuser (`app.services.principals`).
    """
    known = acting_account_known(principal, account_number, where=where)
    if known is not None:
        return known
    assert account_number is not None  # only a named account is looked up
    statement = select(Account.id).where(Account.account_number == account_number)
    account_id = (await session.execute(statement)).scalar_one_or_none()
    if account_id is None:
        raise Unprocessable.field("accountNumber", "No account has this number.", where=where)
    return Acting(account_id, account_number, None)


def acting_account_known(principal: Principal, account_number: str | None, *, where: str = "query") -> Acting | None:
    """`acting_account` from the principal alone; None when it must look the account up (a superuser naming an
    account they are no member of), for callers that open a session only then."""
    if account_number is not None:
        membership = principal.membership_by_number(account_number)
        if membership is not None:
            return Acting.of(membership)
        if not principal.is_superuser:
            raise Unprocessable.field("accountNumber", NOT_A_MEMBER, where=where)
        return None
    if principal.memberships:
        return Acting.of(principal.memberships[0])
    if principal.is_superuser and principal.platform_account_id is not None:
        return Acting(principal.platform_account_id, PLATFORM_ACCOUNT_NUMBER, None)
    raise NoActingAccount.field("accountNumber", NO_ACCOUNT, where=where)


STAFF_ONLY = "Only staff can create, change or delete other users."
SUPERUSER_TARGET = "Only a superuser can change or delete a superuser."
FOREIGN_ACCOUNTS = (
    "This user also belongs to accounts you do not administer: only a superuser can change or delete them, "
    "or create API keys for them (you can remove their profile in your account)."
)


def foreign_profile(principal: Principal) -> ColumnElement[bool]:
    """The user (a `User` row) has a profile in an account the caller does not belong to."""
    return exists().where(UserProfile.user_id == User.id, UserProfile.account_id.not_in(principal.account_ids))


def acting_required(acting: Acting | None) -> Acting:
    """A broker context's acting account where a write needs one (None: the caller has no account)."""
    if acting is None:
        raise NoActingAccount.field("accountNumber", NO_ACCOUNT, where="query")
    return acting


def owner_in(acting: Acting | None) -> Membership:
    """The caller's profile in the acting account, which owns what they create there (plugins, secrets,
    connections): 422 without an acting account or without a profile in it (a superuser acting elsewhere)."""
    acting = acting_required(acting)
    if acting.membership is None:
        raise Unprocessable.field("accountNumber", f"You have no profile in account {acting.account_number}.")
    return acting.membership


def user_manage_scope(principal: Principal) -> ColumnElement[bool]:
    """May this caller manage this user (their password, email, names, flags, a `User` manifest, a new key)?

    The one rule, as a predicate on `User`: a superuser any user; staff a user who is no superuser and
    every one of whose accounts the caller administers (a user who is also in another tenant's account is
    that tenant's too: 403); nobody else. Acting on oneself is self-service, decided by the caller.
    """
    if principal.is_superuser:
        return true()
    if not principal.is_staff:
        return false()
    return and_(User.id.in_(_members_of(principal.account_ids)), ~User.is_superuser, ~foreign_profile(principal))


def require_manageable(principal: Principal, target_is_superuser: bool, manageable: bool, foreign: bool) -> None:
    """The 403 of `user_manage_scope` (evaluated in the query that found the user), with its reason."""
    if target_is_superuser:
        require(manageable, SUPERUSER_TARGET)
    require(manageable, FOREIGN_ACCOUNTS if foreign and principal.is_staff else STAFF_ONLY)


@dataclass(frozen=True, slots=True)
class UserRights:
    """A user, and what the caller may do to them: both read in the query that finds the user."""

    user: User
    manageable: bool  # `user_manage_scope`
    foreign: bool  # `foreign_profile`

    def require_manageable(self, principal: Principal) -> None:
        require_manageable(principal, self.user.is_superuser, self.manageable, self.foreign)


def user_rights_statement(principal: Principal) -> Select[User, bool, bool]:
    """`select` a `User` with the caller's rights on it (add the conditions; read with `user_rights`)."""
    return select(User, user_manage_scope(principal).label("manageable"), foreign_profile(principal).label("foreign"))


async def user_rights(session: AsyncSession, statement: Select[User, bool, bool]) -> UserRights | None:
    row = (await session.execute(statement)).one_or_none()
    if row is None:
        return None
    return UserRights(user=row.User, manageable=bool(row.manageable), foreign=bool(row.foreign))
