"""The command line: click commands and the serve command that starts the web app."""
