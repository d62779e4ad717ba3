"""`python -m sparktop` is the `sparktop` command."""

from sparktop.main import main

main()
