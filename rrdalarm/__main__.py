"""`python -m rrdalarm` runs the command line."""

from rrdalarm.cli import main

main()
