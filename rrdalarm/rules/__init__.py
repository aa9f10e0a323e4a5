"""Pure rules: time windows and the evaluation of points against a threshold (no I/O, no clock)."""
