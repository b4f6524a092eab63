"""A pure Messaging Layer Security core (RFC 9420); see docs/mls.md for what is implemented.

Only `suite.py` calls the `cryptography` library; every other module is logic over it.
"""
