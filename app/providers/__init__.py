"""Upstream model providers: the protocol, the routing table and the adapters."""
