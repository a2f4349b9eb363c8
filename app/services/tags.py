"""Tags: a list of strings on the API, rows of the shared `tag` table underneath."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.models import Base, Tag
from app.models.base import utcnow
from app.models.tag import TaggableMixin
from app.services.base import assign, flush, insert_ignore


async def resolve(session: AsyncSession, names: list[str]) -> list[Tag]:
    """The Tag rows for `names`, created as needed (concurrent writers may create the same tag)."""
    if not names:
        return []
    # In one global order: concurrent writers inserting the same new tags in different orders would each
    # wait for a row the other inserted (a deadlock, which PostgreSQL breaks by failing one of them).
    await insert_ignore(session, Tag, [{"name": name} for name in sorted(set(names))])
    rows = (await session.execute(select(Tag).where(Tag.name.in_(names)))).scalars().all()
    by_name = {tag.name: tag for tag in rows}
    return sorted((by_name[name] for name in names), key=lambda tag: tag.name)


async def set_tags(session: AsyncSession, obj: TaggableMixin, names: list[str]) -> None:
    """Replace the tags of `obj` (whose `tag_links` must be loaded, or `obj` new)."""
    obj.tag_links = await resolve(session, names)


async def add_tagged(session: AsyncSession, obj: TaggableMixin, names: list[str] | None) -> None:
    """Insert the new `obj` with the tags `names`; constraint violations are 409/422 (`flush`)."""
    await set_tags(session, obj, names or [])
    session.add(obj)
    await flush(session)


async def assign_tagged(session: AsyncSession, obj: TaggableMixin, values: dict[str, Any]) -> bool:
    """Set what differs of `values` (`tags` as names; `obj.tag_links` loaded): the same values twice change
    nothing. True when something changed."""
    values = dict(values)
    tags = values.pop("tags", None)
    changed = assign(obj, values)
    if tags is not None and set(tags) != set(obj.tags):
        await set_tags(session, obj, tags)
        # The links live in their own table; the object is still what was modified.
        setattr(obj, "updated_at", utcnow())  # noqa: B010 (every taggable model has timestamps)
        changed = True
    return changed


async def names_of(session: AsyncSession, model: type[TaggableMixin], ids: Iterable[int]) -> dict[int, list[str]]:
    """The tag names of the `model` rows `ids` (sorted; [] for a row without tags), in one query over its
    link table: for pages read as columns, not objects."""
    tags: dict[int, list[str]] = {id_: [] for id_ in ids}
    if tags:
        links = Base.metadata.tables[f"{model.__tablename__}_tag"]
        statement = (
            select(links.c.object_id, Tag.name)
            .join(Tag, Tag.id == links.c.tag_id)
            .where(links.c.object_id.in_(list(tags)))
            .order_by(Tag.name)
        )
        for object_id, name in (await session.execute(statement)).all():
            tags[object_id].append(name)
    return tags
