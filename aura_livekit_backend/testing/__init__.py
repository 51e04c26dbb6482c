"""Testing aids that ship with the service, for its own tests and for plugin authors."""
