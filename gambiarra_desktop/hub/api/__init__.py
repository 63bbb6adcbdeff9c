"""The HTTP face of the hub: routes, input checks, the one error mapping
(``responses``), event streams, connection caps and the Prometheus page."""
