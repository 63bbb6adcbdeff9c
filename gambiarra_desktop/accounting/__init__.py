"""Who used what: API keys, the usage ledger, cost and budgets, rate limits.

Kept apart from the gateway because keys, limits and the ledger apply to room routes as
much as to the gateway's root; the proxy path only reports what each call used.
"""
