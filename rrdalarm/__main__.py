"""`python -m rrdalarm` runs the command line."""

from rrdalarm.cli.main import program

program()
