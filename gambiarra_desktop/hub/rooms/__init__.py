"""Rooms and participants: the one lifecycle (``lifecycle.py``, its state table in
the docstring), their in-memory state, persistence, liveness, passwords and secrets."""
