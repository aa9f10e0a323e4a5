"""Who may use the service: accounts, login records and the API token."""
