"""Pairing with a colleague: by one-time code or by fingerprint."""
