"""Error types that the CLI turns into one-line messages."""


class CurateError(Exception):
    """A failure the user can act on; the CLI prints its message on one line and exits with code 1."""


class ConfigError(CurateError):
    """A bad configuration value: the message names the key, the value and the fix."""

    def __init__(self, key: str, value: object, fix: str) -> None:
        self.key = key
        self.value = value
        self.fix = fix
        super().__init__(f"config key '{key}' = {value!r}: {fix}")


class SchemaVersionError(CurateError):
    """A manifest written with a schema major version this code does not understand."""
