"""tminus: executable release and migration runbooks."""

__version__ = "0.1.0"
