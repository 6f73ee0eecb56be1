"""What every command-line entry point shares: logging set-up and one-line errors for bad input."""
from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Callable

from setok.config import ConfigError
from setok.io import DataError


def run(job: Callable[[], object]) -> int:
    """Run ``job`` with INFO logging; a :class:`ConfigError` or :class:`DataError` becomes ``error: <message>`` on
    stderr and exit code 2 (never a traceback), anything else propagates."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    try:
        job()
    except (ConfigError, DataError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return 0


def config_parser(prog: str, description: str | None) -> argparse.ArgumentParser:
    """The command line every trainer and the calibration share: ``--config`` (files merged in order) and
    ``--variant``; each adds its own ``--out`` and the rest."""
    ap = argparse.ArgumentParser(prog=prog, description=description,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--config", action="append", required=True, help="config file(s), merged in order")
    ap.add_argument("--variant", help="variant to apply (omit for an already resolved config)")
    return ap
