"""The pytest kit for plugin authors (and the service's own tests): ``pytest_plugin``, ``client``,
``memory_log`` (an event log in a list, for tests that read or follow the log).

The LiveKit emulator the kit runs is :mod:`aura_livekit_backend.emulator`.
"""
