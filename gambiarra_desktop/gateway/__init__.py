"""The layered LLM gateway of seeds 002/003, served by the hub on its own port.

Admin login (:mod:`accounts`, :mod:`tokens`), models by layer (:mod:`model_entries`,
:mod:`registry`), providers and their health (:mod:`providers`), the ``auto`` decision
(:mod:`routing`, a plain function), running it with escalation and cross-check
(:mod:`completions`, :mod:`cross_check`) and the HTTP routes (:mod:`routes`).
"""
