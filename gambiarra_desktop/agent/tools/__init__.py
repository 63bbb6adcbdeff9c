"""The agent's tools: what a model may ask this machine to do, each behind a permission."""
