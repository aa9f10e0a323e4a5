"""Turning a check's result into text, HTML, JSON, graphs and alarm wording."""
