"""Tools for trying Gambiarra without a real model server (and for its tests and benchmarks)."""
