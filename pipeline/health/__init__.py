"""Is this smsrecon well (``/healthz``) and does this process take traffic (``/readyz``)?

``decide`` judges measurements against thresholds (pure); ``measure`` takes them from the
database (indexed reads and one rolled-back write probe); ``check`` reuses an answer for
``health.cache_seconds`` and computes one at a time, off the event loop; ``readiness`` is
this process's own start-up and shutdown; ``routes`` serves both. See docs/operations.md.
"""
