"""Seed 004: the agent API (its own site, default 127.0.0.1:4000)."""
