"""The built-in endpoints, one plugin per module, registered like any third-party plugin."""
