"""The life of a chat request: match (``router``), schedule (``scheduler``,
``capacity``), forward (``forward``: direct through ``upstream_client`` under
``endpoint_policy``, or through a ``tunnel``) and meter (``metrics``, ``stats``)."""
