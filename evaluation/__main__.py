"""``python -m evaluation``: see :mod:`evaluation.cli`."""

from evaluation.cli import main

raise SystemExit(main())
