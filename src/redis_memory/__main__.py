"""Run the command line tool: ``python -m redis_memory``."""

from redis_memory.cli import main

raise SystemExit(main())
