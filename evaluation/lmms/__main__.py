"""``python -m evaluation.lmms ARGS``: lmms-eval's CLI with ``setok_harness`` registered and our tasks included.

ARGS are lmms-eval's (``--model setok_harness --model_args answerer=MODULE:ATTR --tasks setok_pope ...``);
``--include_path evaluation/lmms/tasks`` is added unless ARGS give one.
"""

from __future__ import annotations

import sys

from evaluation.lmms import TASKS_DIR


def main(argv: list[str] | None = None) -> None:
    """Register the model, add the task folder, and hand over to ``lmms_eval.cli.dispatch.main``."""
    from lmms_eval.cli.dispatch import main as lmms_main

    import evaluation.lmms.model  # noqa: F401  (registers setok_harness)

    args = list(sys.argv[1:] if argv is None else argv)
    if "--include_path" not in args:
        args += ["--include_path", str(TASKS_DIR)]
    sys.argv = [sys.argv[0], *args]
    lmms_main()


if __name__ == "__main__":
    main()
