"""The network edges: the peer port (transport) and mDNS (discovery)."""
