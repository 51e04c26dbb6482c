"""What one worker's room caches learn from LiveKit's events, as the event log keeps them.

LiveKit's webhooks reach the event log once, through whichever worker or replica
LiveKit called; every worker follows the log (its :class:`~aura_livekit_backend.
event_feed.EventFeed`) and hands the room events here, so that *every* worker's
listing and sid cache learn, not only the one that took the delivery:

- ``livekit.room.started``: the room joins the listing, its sid the sid cache;
- ``livekit.room.finished``: the room leaves both at once (by sid: a new room may
  have taken the name since);
- ``aura.room.created`` / ``aura.room.deleted`` (a room made or closed through
  another worker or replica): the same, so those show at once even without webhooks
  (the worker that made the change learnt it from LiveKit's answer already);
- ``aura.room.updated`` (a topic, description or limit changed through another worker
  or replica): the listed room takes the new facts and keeps its participant count;
- ``livekit.participant.joined`` / ``left`` / ``connection_aborted``: the listed
  room's participant count becomes the ``num_participants`` LiveKit reported in the
  event's room.

The rules, because LiveKit's deliveries are neither exactly-once nor ordered across
participants (livekit#2399):

- a participant count is LiveKit's own word at the event's ``created_at``; an event
  older than the newest one already applied to that room is skipped (same second:
  the later arrival wins, ``created_at`` has whole seconds only);
- an event about a room whose ``room_finished`` was applied is skipped: a late
  delivery never brings a closed room back;
- what was learnt lasts until the next listing (``AURA_ROOM_LIST_CACHE_SECONDS``),
  which replaces it with LiveKit's answer. Joins never rely on it: a join always asks
  LiveKit about the room (LiveKit stays the authority for joins and limits).

Each entry costs O(1): the ``learn_*`` calls only note the change, applied when the
listing is next read.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from ..events import (
    ParticipantConnectionAborted,
    ParticipantJoined,
    ParticipantLeft,
    RoomCreated,
    RoomDeleted,
    RoomFinished,
    RoomStarted,
    RoomUpdated,
)
from .models import RoomInfo
from .rooms import Rooms

__all__ = ["LEARNT_EVENTS", "RoomLearner", "read_room"]

logger = logging.getLogger("aura_livekit_backend.livekit")

_PARTICIPANT_EVENTS = frozenset(
    {ParticipantJoined.name, ParticipantLeft.name, ParticipantConnectionAborted.name}
)
_CLOSED = frozenset({RoomFinished.name, RoomDeleted.name})
#: The event names the caches learn from: LiveKit's, and the service's own creates,
#: updates and deletes (made through another worker or replica).
LEARNT_EVENTS: frozenset[str] = frozenset(
    {RoomStarted.name, RoomCreated.name, RoomUpdated.name, *_CLOSED, *_PARTICIPANT_EVENTS}
)
#: Rooms (by sid) whose ordering and closing are remembered: a bound on memory.
_REMEMBERED = 10_000


def read_room(data: Mapping[str, Any]) -> RoomInfo:
    """The :class:`RoomInfo` an event's ``room`` was written from (``Event.data()``).

    Raises ValueError (or TypeError) when ``data`` is not such a room.
    """
    created_at = datetime.fromisoformat(_text(data, "created_at"))
    agents = data.get("agents", [])
    if not isinstance(agents, list) or not all(isinstance(agent, str) for agent in agents):
        raise ValueError("room.agents is not a list of names")
    return RoomInfo(
        name=_text(data, "name"),
        sid=_text(data, "sid"),
        topic=_text(data, "topic"),
        description=_text(data, "description"),
        max_participants=_count(data, "max_participants"),
        created_by=_text(data, "created_by"),
        created_at=created_at,
        num_participants=_count(data, "num_participants"),
        empty_timeout=_count(data, "empty_timeout", 0),
        departure_timeout=_count(data, "departure_timeout", 0),
        metadata=_text(data, "metadata", ""),
        agents=tuple(agents),
    )


def _text(data: Mapping[str, Any], key: str, default: str | None = None) -> str:
    value = data.get(key, default)
    if not isinstance(value, str):
        raise ValueError(f"room.{key} is not a string")
    return value


def _count(data: Mapping[str, Any], key: str, default: int | None = None) -> int:
    value = data.get(key, default)
    # bool is an int in Python, never a count.
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise ValueError(f"room.{key} is not a count")
    return value


class RoomLearner:
    """Applies LiveKit's room and participant events to one worker's :class:`Rooms`."""

    def __init__(self, rooms: Rooms) -> None:
        """Teach ``rooms`` (its listing and sid cache)."""
        self._rooms = rooms
        #: Events handed to :meth:`learn`, and how many of them were applied.
        self.seen = self.applied = 0
        # sid → created_at of the newest event applied to the room.
        self._newest: OrderedDict[str, float] = OrderedDict()
        # sids of rooms whose room_finished was applied.
        self._finished: OrderedDict[str, None] = OrderedDict()

    def learn(self, name: str, data: Mapping[str, Any], at: float) -> bool:
        """Apply the event ``name`` with payload ``data`` (``Event.data()``) created at
        ``at`` (Unix seconds); True when it was applied, False when skipped (another
        event, older than what is known, about a closed room, or unreadable)."""
        if name not in LEARNT_EVENTS:
            return False
        self.seen += 1
        applied = self._apply(name, data, at)
        self.applied += applied
        return applied

    def _apply(self, name: str, data: Mapping[str, Any], at: float) -> bool:
        raw = data.get("room")
        try:
            room = read_room(raw if isinstance(raw, Mapping) else {})
        except (ValueError, TypeError) as exc:
            # Logged by the receiver as LiveKit sent it; a bad one only teaches nothing.
            logger.warning("a %s event in the log has no usable room: %s", name, exc)
            return False
        if room.sid in self._finished:
            return False
        if name in _CLOSED:
            self._remember(self._finished, room.sid, None)
            self._newest.pop(room.sid, None)
            self._rooms.learn_finished(room.name, room.sid)
            return True
        if name == RoomCreated.name:
            # The service's own word, from CreateRoom's answer: LiveKit's events on the
            # room, when any were applied, are as new or newer; and the worker that
            # created it learnt it then.
            if room.sid in self._newest or self._rooms.created_here(room.sid):
                return False
            self._rooms.learn_started(room)
            return True
        if name == RoomUpdated.name:
            # The service's facts (topic, description, limit), ordered by the service's
            # clock; not LiveKit's counts, which the event may carry older than a join
            # since (LiveKit's whole-second times are not compared with it).
            return self._rooms.learn_facts(room, at)
        if at < self._newest.get(room.sid, float("-inf")):
            return False
        self._remember(self._newest, room.sid, at)
        if name == RoomStarted.name:
            self._rooms.learn_started(room)
        else:
            self._rooms.learn_participants(room.name, room.num_participants, room.sid)
        return True

    @staticmethod
    def _remember(kept: OrderedDict[str, Any], sid: str, value: Any) -> None:
        kept[sid] = value
        kept.move_to_end(sid)
        if len(kept) > _REMEMBERED:
            kept.popitem(last=False)
