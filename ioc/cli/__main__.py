"""`python -m ioc.cli`."""

from ioc.cli import main

main()
