"""``ctx.livekit``: the contract's first face, kept so plugins written against it work.

It delegates every documented name to :class:`~.rooms.Rooms`, :class:`~.tokens.Tokens`
and nothing else; new plugins use ``ctx.rooms``, ``ctx.tokens`` and ``ctx.joins``.
"""

from __future__ import annotations

from .models import Participant, RoomInfo, RoomPage
from .rooms import Rooms
from .tokens import Tokens

__all__ = ["Gateway"]


class Gateway:
    """The names ``PluginContext.livekit`` documented before 0.2, on today's parts."""

    def __init__(self, rooms: Rooms, tokens: Tokens) -> None:
        """Delegate to ``rooms`` and ``tokens``."""
        self._rooms = rooms
        self._tokens = tokens

    @property
    def public_url(self) -> str:
        """Same as ``ctx.tokens.public_url``."""
        return self._tokens.public_url

    async def get_room(self, room_id: str) -> RoomInfo:
        """Same as ``await ctx.rooms.get(room_id)``."""
        return await self._rooms.get(room_id)

    async def list_rooms(
        self, *, limit: int | None = None, after: tuple[int, str] | None = None
    ) -> RoomPage:
        """Same as ``await ctx.rooms.list(limit=…, after=…)``."""
        return await self._rooms.list(limit=limit, after=after)

    async def create_room(
        self, *, topic: str, description: str, max_participants: int, created_by: str
    ) -> RoomInfo:
        """Same as ``await ctx.rooms.create(…)``."""
        return await self._rooms.create(
            topic=topic,
            description=description,
            max_participants=max_participants,
            created_by=created_by,
        )

    async def update_room(
        self,
        room_id: str,
        *,
        topic: str | None = None,
        description: str | None = None,
        max_participants: int | None = None,
    ) -> RoomInfo:
        """Same as ``await ctx.rooms.update(…)``."""
        return await self._rooms.update(
            room_id, topic=topic, description=description, max_participants=max_participants
        )

    async def delete_room(self, room_id: str) -> RoomInfo:
        """Same as ``await ctx.rooms.delete(room_id)``."""
        return await self._rooms.delete(room_id)

    async def list_participants(self, room_id: str) -> tuple[RoomInfo, list[Participant]]:
        """Same as ``await ctx.rooms.participants(room_id)``."""
        return await self._rooms.participants(room_id)

    async def is_connected(self, room: str, identity: str) -> bool:
        """Same as ``await ctx.rooms.is_connected(room, identity)``."""
        return await self._rooms.is_connected(room, identity)

    async def remove_participant(self, room_id: str, identity: str) -> RoomInfo:
        """Same as ``await ctx.rooms.remove_participant(room_id, identity)``."""
        return await self._rooms.remove_participant(room_id, identity)

    def mint_token(self, *, identity: str, name: str, room: str) -> str:
        """Same as ``ctx.tokens.mint(…)`` (not async)."""
        return self._tokens.mint(identity=identity, name=name, room=room)

    async def ping(self) -> None:
        """Same as ``await ctx.rooms.ping()``."""
        await self._rooms.ping()
