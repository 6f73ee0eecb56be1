"""Benchmark inputs for MLLM inference (SeTokIM, the unified MLLM on SemHiTok) ("tasks"): the queries of each
benchmark, read from its official files, and the writer that turns the model's outputs into the official prediction
file the scorer reads.

    task = build_task("vqav2", cfg.benchmarks["vqav2"])
    outputs = {q.id: model(q) for q in task.queries()}      # str | PIL.Image | bool (H, W) mask per query kind
    task.write(outputs, Path("results/<variant>/predictions/vqav2.json"))

==========  ============================  ========  =========================================  ==================
module      benchmarks                    kind      prompt (module constant)                   query id
==========  ============================  ========  =========================================  ==================
caption     flickr30k                     caption   "Provide a one-sentence caption ..."       image id
vqa         vqav2, okvqa                  answer    question + SHORT_ANSWER                    question_id
vqa         vizwiz                        answer    question + VIZWIZ_SUFFIX                   image file name
vqa         gqa                           answer    question + SHORT_ANSWER                    questionId
pope        pope                          answer    question + SHORT_ANSWER                    (split, qid)
mme         mme                           answer    the template question                      (subtask, img, q)
mmvet       mmvet                         answer    the question (256 new tokens)              "v1_<n>"
generation  coco_fid                      generate  the image's first COCO caption             COCO image id
editing     magicbrush, evr, ma5k         edit      the instruction                            target rel. path
segment.    refcoco+, refcocog            segment   "Please segment the {expression}."         sent_id
segment.    reasonseg                     segment   the query text (a phrase: as refcoco)      image stem
mult._ch.   seed (image questions)        answer    question + options + MC_SUFFIX             question_id
mult._ch.   mmbench (every circular row)  answer    hint + question + options + MC_SUFFIX     index
mult._ch.   mmmu (image_1 only)           answer    lmms-eval's construct_prompt               id
text_to_i.  mjhq_fid                      generate  the meta_data.json prompt                  image id
text_to_i.  genai_bench                   generate  the genai_image.json prompt                "00000" ...
==========  ============================  ========  =========================================  ==================

``limit`` keeps the first N queries; ``write`` then also writes the matching subset references to
``<out>.references/`` and ``task.references(out)`` names the files to score with (see :mod:`evaluation.tasks.base`).

The task classes (and their writers) are imported by each benchmark's ``task`` when a task is built, and
``build_task`` / ``task_names`` (which read :mod:`setok.config`) on first use: a scorer that only needs
:func:`~evaluation.tasks.base.configured` or the contract classes starts without them.
"""

from __future__ import annotations

from typing import Any

from evaluation.tasks.base import BenchmarkTask, Query, Task, subset_dir

__all__ = ["BenchmarkTask", "Query", "Task", "build_task", "subset_dir", "task_names"]


def __getattr__(name: str) -> Any:
    """``build_task`` and ``task_names`` from :mod:`evaluation.tasks.build`, imported on first access."""
    if name in ("build_task", "task_names"):
        from evaluation.tasks import build

        return getattr(build, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
