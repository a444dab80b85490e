"""Store-and-forward through NATS JetStream mailboxes run by a practice group.

``server_config.py`` writes the server's configuration, ``connection.py`` is the
only user of ``nats-py`` (one server), ``service.py`` keeps the mailboxes joined
and posts envelopes. docs/mailbox.md explains running one; docs/protocol.md
the frames and subjects (``protocol/mailbox.py``).
"""
