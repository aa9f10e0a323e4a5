"""Built-in actions, installed as rrdalarm.actions and registered as entry points."""
