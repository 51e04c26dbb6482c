"""Who may join which room, as whom: the join rules, returning data or domain errors.

A join finds the room (name or sid), refuses a full one, and under
``AURA_DUPLICATE_USERNAME`` decides the identity: ``allow`` uses the userName,
``reject`` refuses a userName connected in the room now (a check, not a lock: two
joins at one moment both pass it), ``unique`` adds ``#`` and 8 hex digits. Nothing
here knows about HTTP: the endpoints turn :class:`~.errors.RoomFull`,
:class:`~.errors.IdentityTaken` and :class:`~.errors.RoomNotFound` into answers.
"""

from __future__ import annotations

import secrets
from typing import Literal

from .errors import IdentityTaken, RoomFull
from .models import RoomInfo, Ticket
from .rooms import Rooms
from .tokens import Tokens

__all__ = ["DuplicatePolicy", "Joins"]

DuplicatePolicy = Literal["allow", "reject", "unique"]


class Joins:
    """The join rules, with the rooms and tokens they need."""

    def __init__(self, rooms: Rooms, tokens: Tokens, *, duplicates: DuplicatePolicy) -> None:
        """Apply ``duplicates`` (``AURA_DUPLICATE_USERNAME``) to every join."""
        self._rooms = rooms
        self._tokens = tokens
        self._duplicates = duplicates

    def identity_for(self, user_name: str) -> str:
        """The identity a token for ``user_name`` carries under the duplicates policy."""
        if self._duplicates == "unique":
            # Always the last 9 characters ('#' and 8 hex digits), so whoever reads the
            # identity can strip it; 32 random bits make a clash within a room negligible.
            return f"{user_name}#{secrets.token_hex(4)}"
        return user_name

    async def admit(self, room_id: str, user_name: str) -> tuple[RoomInfo, str]:
        """The room ``room_id`` names and the identity to mint for, or a domain error.

        Raises :class:`RoomNotFound`, :class:`RoomFull`, :class:`IdentityTaken`, or a
        :class:`LiveKitError` when LiveKit cannot answer.
        """
        room = await self._rooms.get(room_id)
        if self._duplicates == "reject" and await self._rooms.is_connected(room.name, user_name):
            raise IdentityTaken(user_name)
        if room.is_full:
            raise RoomFull(room.name)
        return room, self.identity_for(user_name)

    async def join(self, room_id: str, user_name: str) -> Ticket:
        """:meth:`admit`, then a token: the whole join."""
        room, identity = await self.admit(room_id, user_name)
        return self.ticket(room, user_name, identity=identity)

    def ticket(self, room: RoomInfo, user_name: str, *, identity: str | None = None) -> Ticket:
        """A token for ``room`` without the checks (its creator, who just made it)."""
        identity = identity or self.identity_for(user_name)
        token = self._tokens.mint(identity=identity, name=user_name, room=room.name)
        return Ticket(room, identity, user_name, token, self._tokens.public_url)
