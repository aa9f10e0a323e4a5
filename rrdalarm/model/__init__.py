"""The data every stage shares: states and statuses, thresholds and settings, records, results, action events.

It imports nothing of the stages, so that config, sources, rules, the check, the store, the actions and the
faces can all import it without importing each other.
"""
