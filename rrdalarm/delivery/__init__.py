"""Deliveries: planning them from events, the outbox, and sending through actions."""
