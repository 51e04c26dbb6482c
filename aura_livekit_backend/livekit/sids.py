"""Room sids: what one looks like, and which room each worker has seen it on.

LiveKit keys rooms by name and has no lookup by sid: without the cache, every join
by sid would list every room.
"""

from __future__ import annotations

import re
from collections import OrderedDict

__all__ = ["SidCache", "looks_like_sid"]

# Today's LiveKit writes RM_ + 12 base57 characters; older servers wrote a
# 22-character shortuuid. Anything of that family may be a sid; the by-name lookup
# always comes first, so a name that merely looks like one still works.
_ROOM_SID = re.compile(r"RM_[A-Za-z0-9]{1,64}")


def looks_like_sid(room_id: str) -> bool:
    """True when ``room_id`` could be a LiveKit room sid: ``RM_`` + 1 to 64 letters/digits."""
    return _ROOM_SID.fullmatch(room_id) is not None


class SidCache:
    """Room sid → room name, for at most ``size`` rooms, least recently used out first."""

    def __init__(self, size: int) -> None:
        """Remember at most ``size`` sids (0: remember none)."""
        self._size = size
        self._names: OrderedDict[str, str] = OrderedDict()

    def __len__(self) -> int:
        """How many sids are remembered."""
        return len(self._names)

    def get(self, sid: str) -> str | None:
        """The name last seen with ``sid``, if remembered."""
        name = self._names.get(sid)
        if name is not None:
            self._names.move_to_end(sid)
        return name

    def put(self, sid: str, name: str) -> None:
        """Remember that ``sid`` is the room ``name``."""
        if self._size <= 0:
            return
        self._names[sid] = name
        self._names.move_to_end(sid)
        while len(self._names) > self._size:
            self._names.popitem(last=False)

    def forget(self, sid: str) -> None:
        """Drop ``sid`` (its room is gone or was replaced)."""
        self._names.pop(sid, None)

    def forget_name(self, name: str) -> None:
        """Drop every sid remembered for the room ``name`` (it closed; its sid is not known).

        O(size): a scan, for when an event names a room without its sid.
        """
        for sid in [sid for sid, known in self._names.items() if known == name]:
            del self._names[sid]
