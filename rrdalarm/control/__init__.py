"""People over the alarms: silences and acknowledgements, made from the CLI and the HTTP API."""
