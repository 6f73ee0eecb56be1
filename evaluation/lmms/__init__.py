"""The lmms-eval bridge: evaluate any :class:`~evaluation.lmms.model.Answerer` (SeTokIM later) with lmms-eval 0.7.3.

* :mod:`evaluation.lmms.model` -- the lmms-eval model ``setok_harness`` wrapping an Answerer
  (``answer(images, prompts, max_new_tokens) -> list[str]``), registered with lmms-eval on import;
* ``evaluation/lmms/tasks/`` -- task YAMLs ``setok_pope``, ``setok_mme``, ``setok_vqav2_val``, ``setok_gqa`` that read
  LOCAL ``datasets`` copies (``dataset_kwargs: {load_from_disk: true}``; expected columns in each YAML) and reuse
  lmms-eval's own prompt/metric functions by import path;
* :mod:`evaluation.lmms.run` -- ``evaluate(answerer, {"setok_pope": DIR, ...})`` and ``write_predictions(...)``,
  which writes the logged answers in the official format for our scorers.

Command line (lmms-eval's own CLI, with the model registered and the task folder included)::

    python -m evaluation.lmms --model setok_harness --model_args answerer=pkg.mod:make_answerer \\
        --tasks setok_pope --log_samples --output_path results/lmms

The YAMLs read ``data/lmms/<pope|mme|vqav2_val|gqa>`` relative to the working directory; the Python API takes any
folder per task. This package is imported lazily: importing :mod:`evaluation.lmms` does not import lmms-eval.
"""

from pathlib import Path

TASKS_DIR = Path(__file__).resolve().parent / "tasks"
