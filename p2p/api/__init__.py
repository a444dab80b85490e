"""The local API: aiohttp handlers on the unix socket."""
