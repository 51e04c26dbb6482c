"""Who may join which room, as whom: the join rules, returning data or domain errors.

Every create and join is made *by a caller* (:class:`~..auth.callers.Caller`): a
person verified from a JWT joins as itself (the body's userName is only a display
name), a trusted backend or an anonymous caller as the userName it sends. Then, in
order: the caller's rate limit, the room (name or sid), the policies (which may
refuse, or narrow the token's grants), and ``AURA_DUPLICATE_USERNAME`` on the
identity — ``allow`` uses it as it is, ``reject`` refuses one connected in the room
now (a check, not a lock: two joins at one moment both pass it), ``unique`` adds
``#`` and 8 hex digits — and a full room is refused. Nothing here knows about HTTP:
the endpoints turn the domain errors into answers.
"""

from __future__ import annotations

import secrets
from typing import Literal, Protocol

from ..auth.callers import Caller
from .errors import IdentityTaken, RoomFull
from .models import RoomInfo, RoomOptions, Ticket
from .rooms import Rooms
from .tokens import DEFAULT_GRANTS, Grants, Profile, Tokens

__all__ = ["DuplicatePolicy", "Gate", "Joins", "OpenGate"]

DuplicatePolicy = Literal["allow", "reject", "unique"]


class Gate(Protocol):
    """What decides whether a caller may create or join (``auth.gate`` implements it)."""

    async def count(self, caller: Caller, action: Literal["create", "join"], identity: str) -> None:
        """Count the attempt against the caller's rate limit; raise when over it."""

    async def decide(
        self,
        caller: Caller,
        action: Literal["create", "join"],
        *,
        identity: str,
        name: str,
        room: RoomInfo | None = None,
        topic: str | None = None,
        max_participants: int | None = None,
    ) -> Grants:
        """The grants the policies leave, or raise their refusal."""


class OpenGate:
    """No limits and no policies: every caller gets the default grants."""

    async def count(self, caller: Caller, action: Literal["create", "join"], identity: str) -> None:
        """Count nothing."""

    async def decide(
        self,
        caller: Caller,
        action: Literal["create", "join"],
        *,
        identity: str,
        name: str,
        room: RoomInfo | None = None,
        topic: str | None = None,
        max_participants: int | None = None,
    ) -> Grants:
        """The default grants."""
        return DEFAULT_GRANTS


class Joins:
    """The join rules, with the rooms, tokens and gate they need."""

    def __init__(
        self,
        rooms: Rooms,
        tokens: Tokens,
        *,
        duplicates: DuplicatePolicy,
        gate: Gate | None = None,
    ) -> None:
        """Apply ``duplicates`` (``AURA_DUPLICATE_USERNAME``) and ``gate`` to every join."""
        self._rooms = rooms
        self._tokens = tokens
        self._duplicates = duplicates
        self._gate: Gate = gate or OpenGate()

    def identity_for(self, user_name: str) -> str:
        """The identity a token for ``user_name`` carries under the duplicates policy."""
        if self._duplicates == "unique":
            # Always the last 9 characters ('#' and 8 hex digits), so whoever reads the
            # identity can strip it; 32 random bits make a clash within a room negligible.
            return f"{user_name}#{secrets.token_hex(4)}"
        return user_name

    async def _admit(
        self, room_id: str, user_name: str | None, caller: Caller | None
    ) -> tuple[RoomInfo, str, str, Grants]:
        caller = caller or Caller.backend()
        identity, name = caller.acting_as(user_name)
        await self._gate.count(caller, "join", identity)
        room = await self._rooms.get(room_id)
        grants = await self._gate.decide(caller, "join", identity=identity, name=name, room=room)
        if self._duplicates == "reject" and await self._rooms.is_connected(room.name, identity):
            raise IdentityTaken(identity)
        if room.is_full:
            raise RoomFull(room.name)
        return room, self.identity_for(identity), name, grants

    async def admit(
        self, room_id: str, user_name: str | None = None, *, caller: Caller | None = None
    ) -> tuple[RoomInfo, str]:
        """The room ``room_id`` names and the identity to mint for, or a domain error.

        ``caller`` None is the plugin itself, trusted (it acts as ``user_name``).
        Raises :class:`NameRequired`, :class:`RateLimited`, :class:`RoomNotFound`,
        :class:`Forbidden`, :class:`IdentityTaken`, :class:`RoomFull`, or a
        :class:`LiveKitError` when LiveKit cannot answer.
        """
        room, identity, _, _ = await self._admit(room_id, user_name, caller)
        return room, identity

    async def join(
        self,
        room_id: str,
        user_name: str | None = None,
        *,
        caller: Caller | None = None,
        profile: Profile | None = None,
    ) -> Ticket:
        """:meth:`admit`, then a token with the grants the policies leave and the
        ``profile``: the whole join.

        The profile's agents are dispatched to the room explicitly, once per room and
        agent: the room exists, and LiveKit ignores a token's ``roomConfig`` then.
        """
        room, identity, name, grants = await self._admit(room_id, user_name, caller)
        for agent in profile.agents if profile else ():
            await self._rooms.dispatch(room.name, agent)
        return self.ticket(room, name, identity=identity, grants=grants, profile=profile)

    async def create(
        self,
        *,
        topic: str,
        description: str,
        max_participants: int,
        user_name: str | None = None,
        caller: Caller | None = None,
        profile: Profile | None = None,
        options: RoomOptions | None = None,
        name: str | None = None,
    ) -> Ticket:
        """A new room, made by ``caller`` (its ``createdBy`` is the creator's identity),
        with ``options``, and the creator's token for it (with ``profile``). Rate limit
        and policies first. ``name``: that room, created unless it exists (then joined
        as it is, full or not: the caller is its creator only if it made it)."""
        caller = caller or Caller.backend()
        identity, display = caller.acting_as(user_name)
        await self._gate.count(caller, "create", identity)
        grants = await self._gate.decide(
            caller,
            "create",
            identity=identity,
            name=display,
            topic=topic,
            max_participants=max_participants,
        )
        room = await self._rooms.create(
            topic=topic,
            description=description,
            max_participants=max_participants,
            created_by=identity,
            options=options,
            name=name,
        )
        return self.ticket(
            room, display, identity=self.identity_for(identity), grants=grants, profile=profile
        )

    def ticket(
        self,
        room: RoomInfo,
        user_name: str,
        *,
        identity: str | None = None,
        grants: Grants | None = None,
        profile: Profile | None = None,
    ) -> Ticket:
        """A token for ``room`` without the checks (its creator, who just made it);
        ``profile.name``, when set, is the display name instead of ``user_name``."""
        identity = identity or self.identity_for(user_name)
        name = profile.name if profile and profile.name else user_name
        token = self._tokens.mint(
            identity=identity, name=name, room=room.name, grants=grants, profile=profile
        )
        return Ticket(room, identity, name, token, self._tokens.public_url)
