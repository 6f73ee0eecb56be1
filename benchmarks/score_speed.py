"""Scoring speed end to end: ``python -m evaluation score <benchmark>`` as a fresh process vs lmms-eval's loop.

    python benchmarks/score_speed.py [--questions 100000] [--repeats 1] [--only vqav2,gqa,pope,caption] [--seed 0]

For each scorer it writes synthetic data in the benchmark's OFFICIAL file formats to a temporary folder, then times,
in this one run:

* ours: ``python -m evaluation score <benchmark> --predictions ... --annotations ... --out ... --variant x
  --config-sha x --bootstrap 1000`` as a subprocess, wall clock: process start, imports, parsing, scoring, the
  bootstrap intervals and writing the result JSON and ``samples.jsonl``. "start" is the same command with ``--help``
  (interpreter start and imports alone), the floor of every run;
* lmms-eval: its per-document ``process_results`` loop over fresh docs shaped like its dataset rows (and, where the
  task has them, its aggregation functions), in this process with lmms-eval already imported (its import, dataset
  loading and model are not timed: the most favourable set-up for it).

Our packages are byte-compiled first (as an installed package is). The two sides run alternately, ``--repeats`` times
each (so both see the same machine load), and each side's fastest run counts.

Scorers (sizes are the official splits'; ``--questions`` sets VQAv2's):

* vqav2: ``--questions`` questions (default 100,000; val has 214,354) in the official annotations / questions /
  EvalAI-prediction JSON, 10 human answers each drawn from a small pool so that agreement varies, vs
  ``lmms_eval.tasks.vqav2.utils.vqav2_process_results``. The synthetic answers avoid the few inputs where the two
  evaluators legitimately disagree (evaluation.metrics.vqa: unanimous hyphenated answers, "'s", commas), so accuracy
  must agree per question. Also prints the bootstrap intervals of the index resampling used before the counts path
  (evaluation.bootstrap), same seed, next to ours.
* gqa: 12,578 balanced questions (testdev-balanced) in the official ``testdev_balanced_questions.json`` layout (with
  the semantic program, annotations and entailed ids the real file carries) and GQA-format predictions, vs
  lmms-eval's gqa task: ``exact_match`` (ignore_case, ignore_punctuation) per document through
  ``lmms_eval.api.metrics.exact_match_hf_evaluate`` as ``ConfigurableTask.process_results`` calls it (after its
  ``strip()``), then the mean. Predictions avoid inner punctuation and spaces, where the two rules differ.
* pope: the three official splits (3,000 questions each) as ``coco_pope_<split>.json`` JSON lines and per-split
  answer files, vs ``lmms_eval.tasks.pope.utils.pope_process_results`` per document plus its five aggregations per
  split. Answers are "Yes"/"No" variants both rules read alike; compared: accuracy and F1 per split (lmms-eval's
  yes_ratio counts references, ours the model's answers: documented in the pope scorer).
* caption: 5,000 images (the Karpathy test split) with 5 references each as COCO captions JSON, scored by ``cider``
  (CIDEr-D and BLEU-4) vs ``lmms_eval.tasks.coco_cap.utils.coco_process_result`` per document plus its ``coco_cider``
  and ``coco_bleu4`` aggregations. The Java PTBTokenizer is NOT timed on either side: both use the pure-Python
  stand-in of ``benchmarks/no_java_score.py`` (ours runs through that script as a fresh process). METEOR and SPICE
  (Java too) are not computed by ours and not timed for lmms-eval. pycocoevalcap's Cider/Bleu run on both sides.

"ratio" is lmms-eval's wall clock over ours; "CPU ratio" the same with CPU seconds (user + system, of our process
and of lmms-eval's loop), which a busy machine distorts less than the wall clock.

Checks (a mismatch exits non-zero): vqav2, gqa and pope accuracy (and POPE F1) equal to 0.01 points; caption CIDEr and
BLEU-4 equal to 0.01 (x100). The speed target of issue 21 is ours >= 30x lmms-eval on vqav2 at 100K questions.
"""

from __future__ import annotations

import argparse
import compileall
import contextlib
import copy
import io
import json
import os
import random
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

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
GQA_QUESTIONS = 12578
POPE_SPLITS = ("adversarial", "popular", "random")
POPE_PER_SPLIT = 3000
CAPTION_IMAGES = 5000
TOLERANCE = 0.01  # points


# --------------------------------------------------------------------------------------------------- timing helpers


def _env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def time_process(cmd: list[str]) -> tuple[float, float]:
    """Wall-clock and CPU seconds (user + system) of ``cmd`` as a fresh process (it must exit 0)."""
    c0, t0 = _children_cpu(), time.perf_counter()
    done = subprocess.run(cmd, cwd=ROOT, env=_env(), capture_output=True, text=True, check=False)
    wall = time.perf_counter() - t0
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed:\n{done.stderr}")
    return wall, _children_cpu() - c0


def time_call(fn: Callable[[], Any]) -> tuple[float, float, Any]:
    """Wall-clock and CPU seconds of ``fn()`` in this process, and its value."""
    c0, t0 = time.process_time(), time.perf_counter()
    value = fn()
    return time.perf_counter() - t0, time.process_time() - c0, value


def compare(ours: list[str], lmms: Callable[[], Callable[[], Any]], repeats: int) -> dict[str, Any]:
    """Time ``ours`` (a command) and lmms-eval's loop alternately, ``repeats`` times each, so that both sides see the
    same load; keep each side's fastest run (wall clock) and its CPU seconds.

    Args:
        ours: The scoring command.
        lmms: Prepares one lmms-eval run (fresh docs, outside the timing) and returns the callable to time.
        repeats: Runs per side.

    Returns:
        ``{"ours": (wall, cpu), "lmms": (wall, cpu), "value": the last lmms-eval run's value}``.
    """
    best_ours, best_lmms, value = (float("inf"), 0.0), (float("inf"), 0.0), None
    for _ in range(repeats):
        best_ours = min(best_ours, time_process(ours))
        wall, cpu, value = time_call(lmms())
        best_lmms = min(best_lmms, (wall, cpu))
    return {"ours": best_ours, "lmms": best_lmms, "value": value}


def ours_command(benchmark: str, out: Path, files: dict[str, Path | list[Path]], script: list[str] | None = None
                 ) -> list[str]:
    """``python -m evaluation score <benchmark> ... --bootstrap 1000`` (or ``script`` instead of ``-m evaluation``)."""
    cmd = [sys.executable, *(script or ["-m", "evaluation"]), "score", benchmark]
    for flag, value in files.items():
        for v in value if isinstance(value, list) else [value]:
            cmd += [f"--{flag}", str(v)]
    return cmd + ["--out", str(out), "--variant", "x", "--config-sha", "x", "--bootstrap", "1000"]


def start_seconds(benchmark: str, repeats: int) -> float:
    """Wall clock of ``python -m evaluation score <benchmark> --help``: interpreter start plus imports (fastest)."""
    return min(time_process([sys.executable, "-m", "evaluation", "score", benchmark, "--help"])[0]
               for _ in range(repeats))


def read_samples(result: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in result.with_name(f"{result.stem}.samples.jsonl").read_text().splitlines()]


# ---------------------------------------------------------------------------------------------------------- VQAv2


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


def lmms_vqav2(annotations: list[dict[str, Any]], predictions: list[str]) -> Callable[[], np.ndarray]:
    """One run of lmms-eval's ``vqav2_process_results`` per question over fresh docs (it edits ``doc["answers"]`` in
    place, as on a dataset row copy; the copies are made here, outside the timed call); the per-question scores."""
    from lmms_eval.tasks.vqav2.utils import vqav2_process_results

    docs = [{"question_id": a["question_id"], "question": "What is it?", "answers": copy.deepcopy(a["answers"])}
            for a in annotations]
    return lambda: np.asarray([vqav2_process_results(d, [p])["exact_match"] for d, p in zip(docs, predictions)])


def old_index_intervals(scores: np.ndarray, types: list[str], seed: int) -> dict[str, tuple[float, float]]:
    """The intervals the index resampling (the only path before the counts path) gives: same seed, same groups."""
    from evaluation.bootstrap import bootstrap_statistic, percentile_interval
    from evaluation.metrics.vqa import sanitize_type

    def ci(v: np.ndarray) -> tuple[float, float]:
        reps = bootstrap_statistic(v.size, lambda idx: v[idx].mean(axis=1), n_boot=1000, seed=seed)
        return tuple(100.0 * x for x in percentile_interval(reps))  # type: ignore[return-value]

    labels = np.asarray([sanitize_type(t) for t in types])
    out = {"accuracy": ci(scores)}
    out.update({f"accuracy_{t}": ci(scores[labels == t]) for t in sorted(set(labels.tolist()))})
    return out


def bench_vqav2(tmp: Path, args: argparse.Namespace) -> dict[str, Any]:
    anns, qs, preds = synthesize(args.questions, args.seed)
    files = {name: tmp / f"vqav2_{name}.json" for name in ("annotations", "questions", "predictions")}
    for name, obj in (("annotations", anns), ("questions", qs), ("predictions", preds)):
        files[name].write_text(json.dumps(obj), encoding="utf-8")
    out = tmp / "vqav2_result.json"
    texts = [p["answer"] for p in preds]
    timed = compare(ours_command("vqav2", out, files), lambda: lmms_vqav2(anns["annotations"], texts), args.repeats)
    result = json.loads(out.read_text())
    ours = np.asarray([r["accuracy"] for r in read_samples(out)])
    lmms = timed["value"]
    old = old_index_intervals(ours, [a["answer_type"] for a in anns["annotations"]], seed=0)
    return {
        "name": "vqav2", "n": args.questions, **timed, "start": start_seconds("vqav2", args.repeats),
        "checks": {"accuracy": (result["metrics"]["accuracy"], 100.0 * float(np.mean(lmms)))},
        "per_sample_diff": int((np.abs(ours - lmms) > 1e-9).sum()),
        "intervals": {k: (old[k], tuple(result["ci95"][k])) for k in old},
    }


# ------------------------------------------------------------------------------------------------------------ GQA

GQA_TYPES = {"verify": ("attr", "obj", "rel"), "query": ("attr", "cat", "rel", "global"), "choose": ("attr", "rel"),
             "logical": ("obj", "attr"), "compare": ("attr",)}


def synthesize_gqa(n: int, seed: int) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Official testdev-balanced questions (all fields of the release) and GQA-format predictions."""
    rng = random.Random(seed)
    questions, preds = {}, []
    for i in range(n):
        qid = str(20000000 + 37 * i)
        structural = rng.choices(list(GQA_TYPES), weights=[25, 45, 12, 10, 8])[0]
        semantic = rng.choice(GQA_TYPES[structural])
        answer = rng.choice(YES_NO) if structural in ("verify", "logical", "compare") else rng.choice(OTHER)
        obj = rng.choice(OTHER)
        questions[qid] = {
            "semantic": [{"operation": "select", "dependencies": [], "argument": f"{obj} ({rng.randrange(10**6)})"},
                         {"operation": f"verify {semantic}", "dependencies": [0], "argument": answer}],
            "entailed": [str(20000000 + 37 * rng.randrange(n)) for _ in range(rng.randrange(4))],
            "equivalent": [qid], "question": f"Is the {obj} {answer}?", "imageId": f"n{rng.randrange(10**6)}",
            "isBalanced": True, "groups": {"global": None, "local": f"10c-{obj}_{answer}"}, "answer": answer,
            "semanticStr": f"select: {obj}->verify {semantic}: {answer}",
            "annotations": {"answer": {}, "question": {"2": str(rng.randrange(10**6))}, "fullAnswer": {}},
            "types": {"detailed": f"{semantic}{structural.capitalize()}", "semantic": semantic,
                      "structural": structural},
            "fullAnswer": f"The {obj} is {answer}.",
        }
        guess = answer if rng.random() < 0.6 else rng.choice(YES_NO + OTHER)
        r = rng.random()
        text = guess.capitalize() + "." if r < 0.3 else guess.capitalize() if r < 0.5 else guess
        preds.append({"questionId": qid, "prediction": text})
    return questions, preds


def bench_gqa(tmp: Path, args: argparse.Namespace) -> dict[str, Any]:
    questions, preds = synthesize_gqa(GQA_QUESTIONS, args.seed)
    files = {"questions": tmp / "testdev_balanced_questions.json", "predictions": tmp / "gqa_predictions.json"}
    files["questions"].write_text(json.dumps(questions), encoding="utf-8")
    files["predictions"].write_text(json.dumps(preds), encoding="utf-8")
    out = tmp / "gqa_result.json"

    from lmms_eval.api.metrics import exact_match_hf_evaluate

    docs = [{"answer": q["answer"], "question": q["question"]} for q in questions.values()]
    texts = [p["prediction"] for p in preds]

    def run() -> float:  # ConfigurableTask.process_results for generate_until + metric exact_match, then "mean"
        scores = []
        for doc, text in zip(docs, texts):
            result = [res.strip() for res in [text]]
            score = exact_match_hf_evaluate(references=[doc["answer"]], predictions=result, ignore_case=True,
                                            ignore_punctuation=True)
            scores.append(score["exact_match"])
        return float(np.mean(scores))

    timed = compare(ours_command("gqa", out, files), lambda: run, args.repeats)
    result = json.loads(out.read_text())
    return {"name": "gqa", "n": GQA_QUESTIONS, **timed, "start": start_seconds("gqa", args.repeats),
            "checks": {"accuracy": (result["metrics"]["accuracy"], 100.0 * timed["value"])}}


# ----------------------------------------------------------------------------------------------------------- POPE


def bench_pope(tmp: Path, args: argparse.Namespace) -> dict[str, Any]:
    rng = random.Random(args.seed)
    refs, preds_dir = tmp / "pope_refs", tmp / "pope_preds"
    refs.mkdir()
    preds_dir.mkdir()
    docs: dict[str, list[tuple[dict[str, Any], str]]] = {}
    for split in POPE_SPLITS:
        ref_rows, pred_rows, docs[split] = [], [], []
        for i in range(POPE_PER_SPLIT):
            label = "yes" if i % 2 == 0 else "no"
            obj = rng.choice(OTHER)
            ref_rows.append({"question_id": i + 1, "image": f"COCO_val2014_{rng.randrange(10**6):012d}.jpg",
                             "text": f"Is there a {obj} in the image?", "label": label})
            said = label if rng.random() < 0.85 else YES_NO[label == "yes"]
            text = rng.choice([said, said.capitalize()])
            pred_rows.append({"question_id": i + 1, "prompt": "Is there a ...?", "text": text, "answer_id": "x",
                              "model_id": "m", "metadata": {}})
            docs[split].append(({"question_id": str(i + 1), "answer": label, "category": split}, text))
        (refs / f"coco_pope_{split}.json").write_text("".join(json.dumps(r) + "\n" for r in ref_rows))
        (preds_dir / f"{split}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in pred_rows))
    out = tmp / "pope_result.json"

    from lmms_eval.tasks.pope import utils as pope

    def run() -> dict[str, dict[str, float]]:
        per_split = {}
        for split, pairs in docs.items():
            results = [pope.pope_process_results(doc, [text]) for doc, text in pairs]
            per_split[split] = {
                "accuracy": pope.pope_aggregate_accuracy([r["pope_accuracy"] for r in results]),
                "precision": pope.pope_aggregate_precision([r["pope_precision"] for r in results]),
                "recall": pope.pope_aggregate_recall([r["pope_recall"] for r in results]),
                "f1": pope.pope_aggregate_f1_score([r["pope_f1_score"] for r in results]),
                "yes_ratio": pope.pope_aggregate_yes_ratio([r["pope_yes_ratio"] for r in results]),
            }
        return per_split

    timed = compare(ours_command("pope", out, {"annotations": refs, "predictions": preds_dir}), lambda: run,
                    args.repeats)
    result = json.loads(out.read_text())
    checks = {f"{m}_{s}": (result["metrics"][f"{m}_{s}"], 100.0 * timed["value"][s][m])
              for s in POPE_SPLITS for m in ("accuracy", "f1")}
    return {"name": "pope", "n": POPE_PER_SPLIT * len(POPE_SPLITS), **timed,
            "start": start_seconds("pope", args.repeats), "checks": checks}


# -------------------------------------------------------------------------------------------------------- caption


def bench_caption(tmp: Path, args: argparse.Namespace) -> dict[str, Any]:
    rng = random.Random(args.seed)
    images, anns, preds, docs = [], [], [], []
    words = OTHER + ["a", "the", "on", "in", "with", "of", "and", "is", "near", "two", "small", "large"]
    for i in range(CAPTION_IMAGES):
        image_id = 100000 + 7 * i
        images.append({"id": image_id, "file_name": f"COCO_val2014_{image_id:012d}.jpg", "height": 480, "width": 640})
        topic = rng.sample(OTHER, 3)
        refs = [" ".join(["A"] + rng.sample(topic + rng.sample(words, 6), 7)) + "." for _ in range(5)]
        anns.extend({"image_id": image_id, "id": 10 * i + k, "caption": c} for k, c in enumerate(refs))
        caption = " ".join(["a"] + rng.sample(topic + rng.sample(words, 5), 6))
        preds.append({"image_id": image_id, "caption": caption})
        docs.append(({"question_id": f"COCO_val2014_{image_id:012d}.jpg", "id": i, "answer": refs}, caption))
    files = {"annotations": tmp / "captions_val2014.json", "predictions": tmp / "caption_predictions.json"}
    files["annotations"].write_text(json.dumps({"images": images, "annotations": anns, "info": {}, "licenses": []}))
    files["predictions"].write_text(json.dumps(preds))
    out = tmp / "caption_result.json"
    script = [str(ROOT / "benchmarks" / "no_java_score.py")]

    from lmms_eval.tasks.coco_cap import utils as coco
    from loguru import logger

    import benchmarks.no_java_score as no_java

    no_java.patch()
    logger.remove()
    lmms_args = argparse.Namespace(output_path=str(tmp / "lmms_out"))

    def run() -> dict[str, float]:
        results = [coco.coco_process_result(doc, [text]) for doc, text in docs]
        with contextlib.redirect_stdout(io.StringIO()):  # pycocotools prints its index building
            return {"cider": coco.coco_cider([r["coco_CIDEr"] for r in results], lmms_args),
                    "bleu4": coco.coco_bleu4([r["coco_Bleu_4"] for r in results], lmms_args)}

    timed = compare(ours_command("cider", out, files, script=script), lambda: run, args.repeats)
    result = json.loads(out.read_text())
    checks = {m: (result["metrics"][m], 100.0 * timed["value"][m]) for m in ("cider", "bleu4")}
    return {"name": "caption (cider, no Java)", "n": CAPTION_IMAGES, **timed,
            "start": start_seconds("cider", args.repeats), "checks": checks}


# ------------------------------------------------------------------------------------------------------------ main

BENCHES = {"vqav2": bench_vqav2, "gqa": bench_gqa, "pope": bench_pope, "caption": bench_caption}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--questions", type=int, default=100000, help="VQAv2 synthetic questions (val has 214,354)")
    ap.add_argument("--repeats", type=int, default=1, help="time each side this many times, report the minimum")
    ap.add_argument("--only", default=",".join(BENCHES), help=f"comma-separated subset of {','.join(BENCHES)}")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    chosen = [b.strip() for b in args.only.split(",") if b.strip()]
    unknown = sorted(set(chosen) - set(BENCHES))
    if unknown:
        ap.error(f"unknown scorers {unknown}; choose from {list(BENCHES)}")
    # Byte-compile our packages first, as pip does for an installed package (lmms-eval's are): with
    # PYTHONDONTWRITEBYTECODE set, every timed process would otherwise compile them from source again.
    compileall.compile_dir(ROOT / "evaluation", quiet=1)
    compileall.compile_dir(ROOT / "setok", quiet=1)
    print("importing lmms-eval ...", flush=True)
    import lmms_eval.tasks  # noqa: F401  (import time is not timed)

    failed = []
    print(f"{'scorer':26s} {'n':>7s} {'ours e2e':>9s} {'(start)':>8s} {'lmms-eval':>10s} {'ratio':>7s} "
          f"{'CPU ratio':>10s}   checks")
    with tempfile.TemporaryDirectory() as tmp:
        for name in chosen:
            r = BENCHES[name](Path(tmp), args)
            ok = all(abs(a - b) <= TOLERANCE for a, b in r["checks"].values()) and not r.get("per_sample_diff")
            failed += [] if ok else [name]
            shown = ", ".join(f"{k} {a:.4f} vs {b:.4f}" for k, (a, b) in r["checks"].items())
            (t_ours, c_ours), (t_lmms, c_lmms) = r["ours"], r["lmms"]
            print(f"{r['name']:26s} {r['n']:7d} {t_ours:8.2f}s {r['start']:7.2f}s {t_lmms:9.2f}s "
                  f"{t_lmms / t_ours:6.1f}x {c_lmms / c_ours:9.1f}x   {'ok' if ok else 'MISMATCH'}: {shown}",
                  flush=True)
            if "per_sample_diff" in r:
                print(f"{'':26s} questions whose accuracy differs from lmms-eval's: {r['per_sample_diff']}")
            for k, (old, new) in r.get("intervals", {}).items():
                shift = max(abs(old[0] - new[0]), abs(old[1] - new[1]))
                print(f"{'':26s} ci95 {k:16s} index resampling [{old[0]:.4f}, {old[1]:.4f}]  "
                      f"counts [{new[0]:.4f}, {new[1]:.4f}]  (largest end-point shift {shift:.4f} points)")
    if failed:
        raise SystemExit(f"MISMATCH between the scorers: {failed}")


if __name__ == "__main__":
    main()
