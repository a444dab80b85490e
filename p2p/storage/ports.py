"""The peer port's default (docs/protocol.md: one TCP port, default 7717).

In its own module so that ``config.py`` and ``settings.py`` (which ``config`` imports
only when a file is loaded) both read it without importing each other.
"""

DEFAULT_PORT = 7717
