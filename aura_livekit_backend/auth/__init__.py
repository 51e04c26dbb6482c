"""Who is calling, and what they may do: identity, policy and rate limits. Internal.

Plugins never import from here: :mod:`aura_livekit_backend.plugin` hands them
``caller_of(request)``, ``ctx.add_policy`` and re-exports the values they see. Nothing
here knows about HTTP: refusals are the exceptions of :mod:`.errors`, which the access
middleware and ``failing_to`` turn into 401, 403, 429 and 503.

- :mod:`.callers` — :class:`~.callers.Caller`: a verified person, a trusted backend, or anonymous;
- :mod:`.jwks` — an identity provider's public keys, fetched and cached per worker;
- :mod:`.verify` — a bearer JWT checked with PyJWT, into a caller;
- :mod:`.policy` — who may create and join, with which grants; policies compose;
- :mod:`.limits` — rate limits per identity and per address, in memory or Redis;
- :mod:`.gate` — one worker's set of them (:class:`~.gate.Gate`), opened in the worker.

This module imports none of them, so the LiveKit layer's join rules can use
:mod:`.callers` without an import cycle.
"""
