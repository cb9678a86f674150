"""Errors that name a user mistake; the CLI prints them as one line instead of a traceback."""


class ConfigError(ValueError):
    """A configuration value, path or input that the user can fix; the message names the field."""
