"""VQAv2 scoring speed at full val scale: our vectorised scorer vs lmms-eval's per-question loop.

    python benchmarks/score_speed.py [--questions 214354] [--lmms-subset N] [--seed 0]

Writes 214,354 synthetic questions in the official VQAv2 format (annotations + questions + EvalAI-format predictions;
10 human answers each, drawn from a small per-question pool over a vocabulary so that agreement varies) to a
temporary folder, then times, in this one process:

* ours (core): :func:`evaluation.metrics.vqa.vqa_accuracy` on the in-memory answers (normalise each distinct string
  once, count matches with numpy);
* ours (end to end): ``evaluation.registry.score("vqav2", ...)`` from the JSON files, bootstrap off;
* lmms-eval: ``lmms_eval.tasks.vqav2.utils.vqav2_process_results(doc, [prediction])`` once per question, as
  lmms-eval's task loop calls it (fresh docs shaped like its dataset rows), then the mean of ``exact_match``.

It prints the speed ratios (target >= 10x) and checks that both give the same accuracy, overall and per question, on
the questions lmms-eval scored. The synthetic answers avoid the few inputs where the two evaluators legitimately
disagree (see the report / evaluation.metrics.vqa: unanimous hyphenated answers, "'s", commas), so any difference is
a bug. ``--lmms-subset N`` times lmms-eval on the first N questions only and extrapolates linearly (its loop is
per question); the default runs it on all (about 3 minutes on one core).
"""

from __future__ import annotations

import argparse
import copy
import json
import random
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from evaluation.metrics.vqa import vqa_accuracy  # noqa: E402
from evaluation.registry import get, score  # noqa: E402

YES_NO = ["yes", "no"]
NUMBERS = [str(i) for i in range(0, 21)] + ["25", "30", "100", "1000", "2.5"]
OTHER = (
    "red blue green white black yellow brown gray orange pink purple dog cat horse cow sheep bird giraffe elephant "
    "zebra bear tennis baseball frisbee skateboarding surfing skiing snowboarding kite pizza cake banana apple "
    "sandwich donut hot dog broccoli carrot table chair couch bed toilet sink laptop phone remote keyboard clock "
    "vase scissors umbrella kitchen bathroom bedroom living room street beach snow grass water sky left right "
    "daytime night sunny cloudy wood metal plastic glass stop sign traffic light fire hydrant bench man woman "
    "boy girl child people nothing eating sitting standing walking playing flying"
).split()
NUMBER_WORDS = {"0": "zero", "1": "one", "2": "two", "3": "three", "4": "four", "5": "five", "10": "ten"}


def _style(answer: str, rng: random.Random) -> str:
    """A model-like rendering of ``answer``: capitalised, with a period, an article or a number word."""
    r = rng.random()
    if answer in NUMBER_WORDS and r < 0.3:
        return NUMBER_WORDS[answer].capitalize()
    if r < 0.2:
        return answer.capitalize() + "."
    if r < 0.3 and answer in OTHER:
        return "The " + answer
    if r < 0.4:
        return answer + "\n"
    return answer


def synthesize(n: int, seed: int) -> tuple[dict[str, Any], dict[str, Any], list[dict[str, Any]]]:
    """``(annotations, questions, predictions)`` JSON objects in the official VQAv2 / EvalAI formats."""
    rng = random.Random(seed)
    anns, qs, preds = [], [], []
    for i in range(n):
        qid = 1000 * (i // 3) + i % 3
        kind = rng.choices(["yes/no", "number", "other"], weights=[38, 12, 50])[0]
        vocab = YES_NO if kind == "yes/no" else NUMBERS if kind == "number" else OTHER
        pool = rng.sample(vocab, min(len(vocab), rng.choice([1, 2, 2, 3, 4])))
        weights = [rng.random() ** 2 for _ in pool]
        humans = rng.choices(pool, weights=weights, k=10)
        anns.append({
            "question_id": qid, "image_id": i // 3, "question_type": "what", "answer_type": kind,
            "multiple_choice_answer": max(set(humans), key=humans.count),
            "answers": [{"answer": a, "answer_confidence": "yes", "answer_id": j + 1} for j, a in enumerate(humans)],
        })
        qs.append({"question_id": qid, "image_id": i // 3, "question": "What is it?"})
        guess = rng.choice(pool) if rng.random() < 0.7 else rng.choice(vocab)
        preds.append({"question_id": qid, "answer": _style(guess, rng)})
    return {"annotations": anns}, {"questions": qs}, preds


def lmms_loop(annotations: list[dict[str, Any]], predictions: list[str]) -> tuple[float, np.ndarray]:
    """Seconds and per-question scores of lmms-eval's ``vqav2_process_results`` over fresh docs."""
    from lmms_eval.tasks.vqav2.utils import vqav2_process_results

    docs = [{"question_id": a["question_id"], "question": "What is it?", "answers": copy.deepcopy(a["answers"])}
            for a in annotations]  # it edits doc["answers"] in place, as on a dataset row copy
    t0 = time.perf_counter()
    scores = [vqav2_process_results(doc, [p])["exact_match"] for doc, p in zip(docs, predictions)]
    return time.perf_counter() - t0, np.asarray(scores, dtype=np.float64)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--questions", type=int, default=214354, help="synthetic questions (VQAv2 val has 214,354)")
    ap.add_argument("--lmms-subset", type=int, default=0, help="time lmms-eval on the first N only (0: all)")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()

    anns, qs, preds = synthesize(args.questions, args.seed)
    answers = [[h["answer"] for h in a["answers"]] for a in anns["annotations"]]
    pred_text = [p["answer"] for p in preds]
    print("importing lmms-eval ...", flush=True)
    from lmms_eval.tasks.vqav2.utils import vqav2_process_results  # noqa: F401  (import time is not timed)

    get("vqav2")  # import the benchmark modules before timing
    with tempfile.TemporaryDirectory() as tmp:
        files = {name: Path(tmp) / f"{name}.json" for name in ("annotations", "questions", "predictions")}
        for name, obj in (("annotations", anns), ("questions", qs), ("predictions", preds)):
            files[name].write_text(json.dumps(obj), encoding="utf-8")

        t0 = time.perf_counter()
        core = vqa_accuracy(pred_text, answers)
        t_core = time.perf_counter() - t0
        t0 = time.perf_counter()
        for path in files.values():
            json.loads(path.read_text(encoding="utf-8"))
        t_json = time.perf_counter() - t0
        t0 = time.perf_counter()
        full = score("vqav2", files["predictions"], files["annotations"], questions=files["questions"], n_bootstrap=0)
        t_full = time.perf_counter() - t0

    m = args.lmms_subset or args.questions
    t_lmms, lmms = lmms_loop(anns["annotations"][:m], pred_text[:m])
    t_lmms_all = t_lmms * args.questions / m
    ours = core.accuracy[:m]
    n_diff = int((np.abs(ours - lmms) > 1e-9).sum())

    print(f"{args.questions} questions x 10 answers; lmms-eval timed on {m}"
          + (" (extrapolated linearly)" if m < args.questions else ""))
    print(f"ours, vqa_accuracy in memory     {t_core:8.2f} s")
    print(f"ours, score('vqav2') from files  {t_full:8.2f} s   accuracy {full.metrics['accuracy']:.4f}")
    print(f"  of which json.loads of the 3 files ~{t_json:.2f} s (stdlib json; no faster parser is installed)")
    print(f"lmms-eval vqav2_process_results  {t_lmms_all:8.2f} s")
    print(f"speed-up: {t_lmms_all / t_core:.0f}x in memory, {t_lmms_all / t_full:.0f}x end to end  (target >= 10x)")
    print(f"accuracy on the {m} questions: ours {100 * ours.mean():.6f}, lmms-eval {100 * lmms.mean():.6f}; "
          f"questions that differ: {n_diff}")
    if n_diff or abs(full.metrics["accuracy"] - 100 * core.accuracy.mean()) > 1e-9:
        raise SystemExit("MISMATCH between the scorers")


if __name__ == "__main__":
    main()
