"""The pytest kit for plugin authors (and the service's own tests): ``pytest_plugin``, ``client``.

The LiveKit emulator the kit runs is :mod:`aura_livekit_backend.emulator`.
"""
