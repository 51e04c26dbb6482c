"""Who is calling: a :class:`Caller`, decided once per request by the access check.

Three kinds:

- a **person**, verified from an identity provider's JWT: ``identity`` and ``name``
  come from its claims, and it acts only as itself;
- a **trusted backend**, holding one of the service's API keys: it may act for any
  ``userName`` (the service's behaviour before identities existed);
- **anonymous**, when nothing authenticates callers (``AURA_AUTH=none``): it names
  itself with ``userName``, and rate limits count it by its address.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from .errors import NameRequired

__all__ = ["Caller"]

_NO_CLAIMS: Mapping[str, Any] = MappingProxyType({})


@dataclass(frozen=True, slots=True)
class Caller:
    """Who made a request, as the service established it."""

    #: The verified identity (a JWT's identity claim); None for a backend or anonymous.
    identity: str | None = None
    #: The display name the claims give (name, preferred_username, or the identity).
    name: str | None = None
    #: The verified claims, read-only (empty for a backend or anonymous).
    claims: Mapping[str, Any] = field(default_factory=lambda: _NO_CLAIMS)
    #: True for a caller holding one of the service's API keys: a trusted backend.
    trusted: bool = False
    #: The client's address (the proxy settings decide whose), for per-address limits.
    address: str = ""

    @classmethod
    def person(
        cls, identity: str, name: str, claims: Mapping[str, Any], address: str = ""
    ) -> Caller:
        """A caller verified from a JWT."""
        return cls(identity, name, MappingProxyType(dict(claims)), False, address)

    @classmethod
    def backend(cls, address: str = "") -> Caller:
        """A trusted backend (an API key, or a plugin acting on its own account)."""
        return cls(trusted=True, address=address)

    @classmethod
    def nobody(cls, address: str = "") -> Caller:
        """An anonymous caller (``AURA_AUTH=none``)."""
        return cls(address=address)

    @property
    def verified(self) -> bool:
        """True for a person whose identity a JWT proved."""
        return self.identity is not None

    @property
    def anonymous(self) -> bool:
        """True when nothing vouches for the caller."""
        return self.identity is None and not self.trusted

    def acting_as(self, user_name: str | None) -> tuple[str, str]:
        """The identity and display name a token for this caller carries.

        A person is always itself (``user_name``, when given, is only the display
        name); a backend or anonymous caller is whoever ``user_name`` says.
        Raises :class:`NameRequired` when that is nobody.
        """
        if self.identity is not None:
            return self.identity, user_name or self.name or self.identity
        if not user_name:
            raise NameRequired("userName is required")
        return user_name, user_name

    def limit_key(self, identity: str) -> str:
        """Whom rate limits count this request against: ``identity`` for a person or a
        backend acting for someone, the client's address for an anonymous caller."""
        if self.anonymous:
            return f"address:{self.address}"
        return f"identity:{identity}"
