"""Daemon services: outbox, inbox, pairing. They do not import each other."""
