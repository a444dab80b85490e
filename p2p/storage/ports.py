"""The default ports: the peer port (docs/protocol.md: one TCP port, default 7717) and
the practice's page (loopback only, default 7718).

In its own module so that ``config.py`` and ``settings.py`` (which ``config`` imports
only when a file is loaded) both read it without importing each other.
"""

DEFAULT_PORT = 7717
DEFAULT_WEB_PORT = 7718
