"""pli's daemon side: transport, discovery, pairing, outbox/inbox, storage, local API, CLI.

Everything here does I/O with asyncio; the protocol itself lives in ``protocol``.
"""
