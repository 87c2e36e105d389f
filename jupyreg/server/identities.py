"""Who a workload identity is, and who is in which group: two tables of jupyreg's kept in
the team server's users database, beside MLflow's basic-auth users (admins manage them
through ``jupyreg users link-identity`` and ``jupyreg groups``)."""

from __future__ import annotations

import functools
import json
from collections.abc import Iterable, Mapping
from typing import Any

from jupyreg.errors import InvalidArgument, NotFound
from jupyreg.server.oidc import TokenRefused

MAX_FIELD = 255


@functools.cache
def _tables() -> tuple[Any, Any, Any]:
    import sqlalchemy as sa

    metadata = sa.MetaData()
    links = sa.Table(
        "jupyreg_identity_links",
        metadata,
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("username", sa.String(MAX_FIELD), nullable=False),
        sa.Column("issuer", sa.String(MAX_FIELD), nullable=False),
        sa.Column("claim", sa.String(MAX_FIELD), nullable=False),
        sa.Column("value", sa.String(MAX_FIELD), nullable=False),
        sa.Column("requires", sa.Text, nullable=False),  # JSON: {claim: value}
        sa.UniqueConstraint("issuer", "claim", "value", name="jupyreg_identity_link_claim"),
    )
    members = sa.Table(
        "jupyreg_group_members",
        metadata,
        sa.Column("group_name", sa.String(MAX_FIELD), primary_key=True),
        sa.Column("username", sa.String(MAX_FIELD), primary_key=True),
    )
    return metadata, links, members


@functools.cache
def server_uri() -> str:
    """The users database of the server this process runs (its basic-auth config's)."""
    from jupyreg.compat import default_auth_database_uri

    return default_auth_database_uri()


@functools.cache
def _engine(uri: str) -> Any:
    """The users database, with jupyreg's tables made on first use in this process (kept
    when they exist), whoever started the server."""
    import sqlalchemy as sa

    engine = sa.create_engine(uri, pool_pre_ping=True)
    metadata, _, _ = _tables()
    metadata.create_all(engine)
    return engine


def create_tables(uri: str) -> None:
    """jupyreg's tables in the users database at ``uri`` (kept when they exist)."""
    _engine(uri)


def _text(value: Any, what: str) -> str:
    """``value`` stripped: non-empty text of at most ``MAX_FIELD`` characters, no NUL
    (PostgreSQL's text refuses it), else InvalidArgument naming ``what``."""
    from jupyreg.lifecycle import bounded_text

    text = bounded_text(value, what, MAX_FIELD).strip()
    if not text:
        raise InvalidArgument(f"{what} must be non-empty text")
    return text


def link(
    uri: str, username: str, issuer: str, claim: str, value: str, requires: Mapping[str, str]
) -> dict[str, Any]:
    """Tokens from ``issuer`` whose ``claim`` is ``value`` (and whose claims match each of
    ``requires``) act as ``username``; linking the same claim again replaces the link."""
    from jupyreg.server.oidc import check_issuer

    issuer = check_issuer(_text(issuer, "the issuer"))  # InvalidArgument if not https
    row = {
        "username": _text(username, "the user"),
        "issuer": issuer,
        "claim": _text(claim, "the claim"),
        "value": _text(value, "the claim's value"),
        "requires": json.dumps(
            {
                _text(k, "a required claim"): _text(v, f"required claim {k}")
                for k, v in requires.items()
            },
            sort_keys=True,
        ),
    }
    _, links, _ = _tables()
    with _engine(uri).begin() as connection:
        connection.execute(
            links.delete().where(
                (links.c.issuer == row["issuer"])
                & (links.c.claim == row["claim"])
                & (links.c.value == row["value"])
            )
        )
        connection.execute(links.insert().values(**row))
    return _link_record(row)


def unlink(uri: str, issuer: str, claim: str, value: str) -> None:
    _, links, _ = _tables()
    with _engine(uri).begin() as connection:
        removed = connection.execute(
            links.delete().where(
                (links.c.issuer == issuer.rstrip("/"))
                & (links.c.claim == claim)
                & (links.c.value == value)
            )
        ).rowcount
    if not removed:
        raise NotFound(f"no identity link for {claim}={value} from {issuer}")


def links(uri: str) -> list[dict[str, Any]]:
    _, table, _ = _tables()
    with _engine(uri).connect() as connection:
        rows = connection.execute(table.select().order_by(table.c.username, table.c.id))
        return [_link_record(row._mapping) for row in rows]


def _link_record(row: Mapping[str, Any]) -> dict[str, Any]:
    keys = ("username", "issuer", "claim", "value")
    return {**{k: row[k] for k in keys}, "requires": json.loads(row["requires"])}


def linked_user(uri: str, claims: Mapping[str, Any]) -> str:
    """The user a verified token's claims are linked to; ``TokenRefused`` (403) when no
    link matches, a link's requirement does not (saying which), or links name several."""
    issuer = str(claims["iss"]).rstrip("/")
    candidates = [k for k in links(uri) if k["issuer"] == issuer]
    claimed = [k for k in candidates if str(claims.get(k["claim"], "")) == k["value"]]
    if not claimed:
        raise TokenRefused(
            f"no registry user is linked to this token ({issuer}, subject "
            f"{str(claims.get('sub', ''))[:100]!r}): an admin links one with "
            "jupyreg users link-identity",
            403,
        )
    users = set()
    for candidate in claimed:
        for claim, wanted in candidate["requires"].items():
            if str(claims.get(claim, "")) != wanted:
                raise TokenRefused(
                    f"the token's {claim} is {str(claims.get(claim, ''))[:100]!r}; the link "
                    f"to {candidate['username']} requires {wanted!r}",
                    403,
                )
        users.add(candidate["username"])
    if len(users) > 1:
        raise TokenRefused(
            f"the token matches links to several users: {', '.join(sorted(users))}", 403
        )
    return users.pop()


def change_group(uri: str, group: str, add: Iterable[str] = (), remove: Iterable[str] = ()) -> None:
    """Add and remove members of ``group`` in one transaction."""
    group = _text(group, "the group")
    if group.startswith("group:"):
        group = group[len("group:") :]
    _, _, members = _tables()
    added = [_text(u, "a user") for u in add]
    removed = [_text(u, "a user") for u in remove]
    with _engine(uri).begin() as connection:
        current = {
            row.username
            for row in connection.execute(members.select().where(members.c.group_name == group))
        }
        for user in sorted(set(added) - current):
            connection.execute(members.insert().values(group_name=group, username=user))
        if removed:
            connection.execute(
                members.delete().where(
                    (members.c.group_name == group) & members.c.username.in_(removed)
                )
            )


def groups(uri: str) -> dict[str, list[str]]:
    """Every group and its members."""
    _, _, members = _tables()
    with _engine(uri).connect() as connection:
        rows = connection.execute(
            members.select().order_by(members.c.group_name, members.c.username)
        )
        found: dict[str, list[str]] = {}
        for row in rows:
            found.setdefault(row.group_name, []).append(row.username)
    return found


def groups_of(uri: str, username: str) -> frozenset[str]:
    _, _, members = _tables()
    with _engine(uri).connect() as connection:
        rows = connection.execute(members.select().where(members.c.username == username))
        return frozenset(row.group_name for row in rows)
