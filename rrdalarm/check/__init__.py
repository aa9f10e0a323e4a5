"""One check: expand, fetch, evaluate, record transitions, plan deliveries; and its lock."""
