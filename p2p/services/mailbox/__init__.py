"""Store-and-forward through NATS JetStream mailboxes run by a practice group.

``server_config.py`` writes the server's configuration, ``connection.py`` keeps
one server's session and ``stream.py`` our stream on it (the only users of
``nats-py``), ``service.py`` keeps the mailboxes joined and posts envelopes.
docs/mailbox.md explains running one; docs/protocol.md the frames and subjects
(``protocol/mailbox.py``).

Importing this package, or ``service.py``, does not import ``nats-py`` (~2 MB
of RSS): ``connection.py`` and ``stream.py`` are imported once a mailbox is joined.
"""

#: How long the server keeps a message nobody read (a practice on holiday); the
#: setting ``mailbox_retention`` may change it. The sender leaves it again after that.
RETENTION = 30 * 24 * 3600.0
