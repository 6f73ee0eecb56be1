"""VQAv2: the official VQA accuracy (GT-Vision-Lab vqaEval.py) after LLaVA's EvalAI answer processing, in percent."""

from __future__ import annotations

from evaluation.registry import register
from evaluation.suite._vqa import VQA_FAMILY_METRICS, VQA_RULES, VqaBenchmark


@register("vqav2")
class VQAv2(VqaBenchmark):
    """VQAv2 val (or any split with public annotations) scored as the official evaluator does."""

    help = f"""VQAv2 open-ended accuracy (percent), overall and per answer type, as the official vqaEval.py.

references (--annotations): the official annotations JSON, e.g. v2_mscoco_val2014_annotations.json:
    {{"annotations": [{{"question_id": 262148000, "image_id": 262148, "question_type": "what",
                      "answer_type": "other", "multiple_choice_answer": "down",
                      "answers": [{{"answer": "down", "answer_confidence": "yes", "answer_id": 1}}, ...10]}}, ...]}}
questions (--questions, optional): the official questions JSON, e.g. v2_OpenEnded_mscoco_val2014_questions.json:
    {{"questions": [{{"question_id": 262148000, "image_id": 262148, "question": "..."}}, ...]}}
  when given, its question ids must be exactly the annotations'.
predictions (--predictions): the EvalAI upload format, a JSON array:
    [{{"question_id": 262148000, "answer": "Down."}}, ...]
  one per annotated question: missing, extra and duplicate question ids are errors.

{VQA_RULES}

Metrics: accuracy, and accuracy_<answer_type> for every answer_type present, the official strings with ' ' and '/'
replaced by '_': accuracy_yes_no, accuracy_number, accuracy_other. Unrounded (vqaEval.py rounds to 2 decimals).
Per-sample rows: {{"question_id", "answer_type", "prediction" (as compared), "matches" (humans equal to it),
"accuracy" (0..1)}}. ci95: percentile bootstrap over questions (per type: over that type's questions).
--raw-predictions skips the EvalAI processor (for predictions already processed, or to score as vqaEval.py alone)."""
    metrics = VQA_FAMILY_METRICS
