"""The Flask configurator and report pages, installed as rrdalarm.web."""
