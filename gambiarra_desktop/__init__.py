"""Gambiarra Desktop: pool the local LLM servers on a LAN behind one OpenAI-compatible API."""

__version__ = "0.1.0"
