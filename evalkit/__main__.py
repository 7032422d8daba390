"""`python -m evalkit`: the same entry point as the `evalkit` command."""

from evalkit.cli import main

main()
