"""OK-VQA: the official VQA accuracy (OK-VQA is scored with the VQA evaluation tools on its own annotations)."""

from __future__ import annotations

from evaluation.registry import register
from evaluation.suite._vqa import VQA_FAMILY_METRICS, VQA_RULES, VqaBenchmark


@register("okvqa")
class OKVQA(VqaBenchmark):
    """OK-VQA val: the VQA files, rules and metrics (:class:`~evaluation.suite._vqa.VqaBenchmark`), on its own
    annotations."""

    help = f"""OK-VQA open-ended accuracy (percent) with the official VQA evaluator (vqaEval.py).

references (--annotations): OK-VQA's annotations JSON in the VQA format, e.g. mscoco_val2014_annotations.json:
    {{"annotations": [{{"question_id": 2971475, "image_id": 297147, "question_type": "one", "answer_type": "other",
                      "answers": [{{"answer_id": 1, "raw_answer": "racing", "answer_confidence": "yes",
                                   "answer": "race"}}, ...10]}}, ...]}}
  the (stemmed) "answer" field is the one compared, as in the official evaluation; "raw_answer" is ignored.
questions (--questions, optional): OpenEnded_mscoco_val2014_questions.json,
    {{"questions": [{{"question_id", "image_id", "question"}}, ...]}}; its ids must be exactly the annotations'.
predictions (--predictions): a JSON array [{{"question_id": 2971475, "answer": "racing"}}, ...], one per question:
  missing, extra and duplicate question ids are errors.

{VQA_RULES}

Metrics: accuracy, and accuracy_<answer_type> for every answer_type present (OK-VQA has only "other":
accuracy_other).
Per-sample rows: {{"question_id", "answer_type", "prediction" (as compared), "matches", "accuracy" (0..1)}}.
ci95: percentile bootstrap over questions. --raw-predictions skips the EvalAI processor."""
    metrics = (VQA_FAMILY_METRICS[0], VQA_FAMILY_METRICS[3])
