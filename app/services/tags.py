"""Tags: a list of strings on the API, rows of the shared `tag` table underneath."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.models import Tag
from app.models.tag import TaggableMixin
from app.services.base import insert_ignore


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
