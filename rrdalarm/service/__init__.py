"""The long-running service: scheduler, health, /metrics figures, and the demo tree."""
