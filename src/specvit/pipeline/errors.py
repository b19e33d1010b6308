"""The one exception every config check raises: a list of problems, each naming its config key."""
from __future__ import annotations


class ConfigError(ValueError):
    """Problems of the config, reported together: ``messages`` holds one line per problem."""

    def __init__(self, messages, header: str = "invalid config"):
        self.messages = list(messages)
        self.header = header
        super().__init__(f"{header}:\n  - " + "\n  - ".join(self.messages))


def messages_of(error: ValueError) -> list[str]:
    """The problems an error reports: a ConfigError's messages, or the text of any other ValueError."""
    return list(error.messages) if isinstance(error, ConfigError) else [str(error)]
