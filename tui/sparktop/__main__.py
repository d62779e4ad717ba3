"""`python -m sparktop` runs the CLI."""

from sparktop.cli import main

raise SystemExit(main())
