"""Checks split across workers next to each RRD tree, over Celery (imported only when a threshold names a tree)."""
