"""One safe way to run a command (timeout, process-group kill, capped output, scrubbed
environment, chosen working folder), shared by terminal sessions and the agent's tools."""
