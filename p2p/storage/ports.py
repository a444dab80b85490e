"""The default ports: the peer port (docs/protocol.md: one TCP port, default 7717), the
practice's page (loopback only, default 7718) and the local API's TCP port for other
software (loopback only, off unless ``api_listen`` is set; 7719 when no port is given).

In its own module so that ``config.py`` and ``settings.py`` (which ``config`` imports
only when a file is loaded) both read it without importing each other.
"""

DEFAULT_PORT = 7717
DEFAULT_WEB_PORT = 7718
DEFAULT_API_PORT = 7719
