"""The `pli` command: click commands talking to the daemon through the local API."""
