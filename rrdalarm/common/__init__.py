"""Small helpers with no knowledge of alarms: atomic files, secret handling, the store's error."""
