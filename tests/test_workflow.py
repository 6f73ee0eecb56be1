"""The Snakemake DAG: plans per variant, one-variant ablation targets, lint clean (dry runs only, no jobs)."""
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


def snakemake(*args: str) -> str:
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}"}
    r = subprocess.run([str(BIN / "snakemake"), *args], cwd=ROOT, capture_output=True, text=True, env=env)
    assert r.returncode == 0, r.stdout + r.stderr
    return r.stdout + r.stderr


def planned(out: str) -> dict[str, int]:
    """Job counts from the dry-run summary table."""
    stats = out[out.index("Job stats:"):]
    return {m.group(1): int(m.group(2)) for m in re.finditer(r"^(\w+)\s+(\d+)$", stats, re.M)}


@pytest.fixture(scope="module")
def ci_plan() -> str:
    return snakemake("-n", "--forceall", "--configfile", "config/ci.yaml")


def test_ci_dry_run_plans_one_training_per_configured_variant(ci_plan):
    jobs = planned(ci_plan)
    assert jobs["train_tokenizer"] == 2  # config/ci.yaml run_variants: hard_cluster, no_pe
    assert jobs["score_tokenizer"] == 2 * 2 + 1  # x (fid, imagenet); SemHiTok: rFID only
    assert "results/hard_cluster/tokenizer/model.pt" in ci_plan and "results/no_pe/tokenizer/model.pt" in ci_plan
    # SemHiTok (run_variants: semhitok): its four stages in order, then its predictions and table.
    for rule in ("train_semantic_codebook", "train_pixel_codebook", "train_pixel_finetune", "train_pixel_decoder",
                 "semhitok_predictions", "semhitok_table", "comparison_table"):
        assert jobs[rule] == 1, rule
    assert jobs["train_stage1"] == jobs["train_stage2"] == 2 and jobs["train_mask_decoder"] == 1  # + SemHiTok MLLM
    assert re.search(r"rule train_pixel_decoder:\s+input: results/semhitok/config.yaml, "
                     r"results/data/checked/bundled.json, results/semhitok/pixel_finetune/model.pt, "
                     r"results/weights.json\s+"
                     r"output: results/semhitok/tokenizer/model.pt", ci_plan)


def test_paper_dry_run_plans_every_table_variant(tmp_path):
    # The official benchmark files are not in a fresh clone: plan against the CI fixtures in their place.
    import yaml

    benchmarks = yaml.safe_load((ROOT / "config" / "ci.yaml").read_text())["benchmarks"]
    overlay = tmp_path / "fixtures.yaml"
    overlay.write_text(yaml.safe_dump({"benchmarks": benchmarks}))
    plan = snakemake("-n", "--forceall", "--configfile", "config/paper.yaml", str(overlay))
    jobs = planned(plan)
    # 13 SeTok run variants (Tables 5, 6, 11, 12) + setok_llava (Table 14, an MLLM variant with its own tokenizer)
    assert jobs["train_tokenizer"] == 14
    assert jobs["tokenizer_table"] == 1
    # SemHiTok: 11 run variants (Tables 2, 7, 9 and the text's sub-codebook 8) + 6 MLLM-only variants' tokenizers
    assert jobs["train_semantic_codebook"] == jobs["train_pixel_decoder"] == 17
    # rFID and top-1 per SeTok run variant; rFID per SemHiTok run variant, for the comparison row and for Table 7's
    # "+ Dual MLP" row (a paper table asks for it)
    assert jobs["semhitok_table"] == jobs["comparison_table"] == 1 and jobs["score_tokenizer"] == 13 * 2 + 11 + 1 + 1
    # 14 SeTok MLLMs + 3 Table 13 connectors + the SemHiTok MLLMs (unified, SeTokIM's recipe, LLaVA-v1.5 setting)
    paper = yaml.safe_load((ROOT / "config/paper.yaml").read_text())
    semhitok = [v for v in paper["mllm_variants"] if v.startswith("semhitok")]
    assert len(semhitok) == 10  # semhitok_llava is in no table (paper-notes H12)
    assert jobs["train_stage1"] == jobs["train_stage2"] == 14 + 3 + len(semhitok)
    assert jobs["train_mask_decoder"] == 14  # connector baselines read images only; SemHiTok has no mask decoder
    own = sum(len(paper["variants"][v]["mllm_benchmarks"]) for v in [*semhitok, "setok_llava"])
    reference = len(paper["variants"]["llava15_7b"]["mllm_benchmarks"])  # validate_eval's public checkpoint
    # connectors: the 8 understanding benchmarks
    assert jobs["score_benchmark"] == 13 * 15 + 3 * 8 + own + reference
    assert jobs["validation_table"] == 1
    # every paper table once; TFLOPs for the MLLMs of Tables 5 and 13; a bar chart per table with >= 2 variants
    assert jobs["make_tables"] == len(yaml.safe_load((ROOT / "reports/tables.yaml").read_text())["tables"]) == 17
    assert jobs["model_cost"] == 6 + 3 and jobs["ablation_figure"] == 11 and jobs["report"] == 1
    assert jobs["mllm_table"] == 1
    # calibrate_clustering before every SeTok tokenizer in hard or soft mode (paper-notes C7); fixed-K and SemHiTok
    # variants train with their config as written
    from setok.config import resolve

    raw = yaml.safe_load((ROOT / "config/paper.yaml").read_text())
    trained = {j["wildcards"] for j in plan_jobs(plan, "train_tokenizer")}
    calibrated = {j["wildcards"] for j in plan_jobs(plan, "calibrate_clustering")}
    assert calibrated == {v for v in trained if resolve(raw, v).tokenizer.clustering.mode != "fixed"}
    assert {"hard_cluster", "soft_cluster", "no_pe", "setok_llava"} <= calibrated and len(calibrated) == 10
    assert not calibrated & {"fixed_8", "fixed_256", "semhitok", "mlp_connector"}
    assert_calibrated_before_training(plan, calibrated)
    from setok.configtools import deep_merge

    assert_weights_fetched_before_gpu_jobs(plan, deep_merge(raw, {"benchmarks": benchmarks}), min_gpu_jobs=500)


def assert_weights_fetched_before_gpu_jobs(plan: str, raw: dict, min_gpu_jobs: int) -> None:
    """fetch_weights is planned once, before every job that asks for a GPU, and each of those reads its record;
    the only GPU jobs exempt are scoring jobs of benchmarks that load no pretrained model (evaluation.weights)."""
    from evaluation.weights import benchmark_artifacts
    from setok.config import resolve

    base = resolve(raw)
    jobs = [(m.start(), m.group(1), m.group(2)) for m in re.finditer(r"^rule (\w+):\n((?:    .*\n)+)", plan, re.M)]
    fetch = [start for start, rule, _ in jobs if rule == "fetch_weights"]
    assert len(fetch) == 1, fetch
    gpu_jobs = 0
    for start, rule, body in jobs:
        gpu = re.search(r"^    resources: .*\bgpu=(\d+)", body, re.M)
        if not gpu or int(gpu.group(1)) == 0:
            continue
        output = re.search(r"^    output: (.*)$", body, re.M).group(1)
        if rule.startswith("score_"):
            benchmark = Path(output.split(",")[0]).stem
            if not benchmark_artifacts(base, benchmark):
                assert "results/weights.json" not in body, (rule, output)
                continue
        gpu_jobs += 1
        assert "results/weights.json" in re.search(r"^    input: (.*)$", body, re.M).group(1), (rule, output)
        assert fetch[0] < start, (rule, output)
    assert gpu_jobs >= min_gpu_jobs, gpu_jobs


UNDERSTANDING = ["vqav2", "gqa", "vizwiz", "okvqa", "pope", "mme", "mmvet", "seed", "mmbench", "mmmu", "flickr30k"]


def test_validate_eval_plans_the_reference_checkpoint_on_every_understanding_benchmark_and_no_training(tmp_path):
    """Issue 20: `snakemake -n validate_eval --configfile config/paper.yaml` (fixtures in place of the official
    files) predicts and scores llava15_7b on each benchmark both papers report for LLaVA-1.5, and trains nothing."""
    import yaml

    benchmarks = yaml.safe_load((ROOT / "config" / "ci.yaml").read_text())["benchmarks"]
    overlay = tmp_path / "fixtures.yaml"
    overlay.write_text(yaml.safe_dump({"benchmarks": benchmarks}))
    plan = snakemake("validate_eval", "-n", "--forceall", "--configfile", "config/paper.yaml", str(overlay))
    jobs = planned(plan)
    assert not [r for r in jobs if r.startswith(("train_", "calibrate")) or r.endswith("_predictions")], jobs
    predicted = {re.search(r"predictions/([^\s,]+)", j["output"]).group(1)
                 for rule in ("predict_file", "predict_folder") for j in plan_jobs(plan, rule)}
    scored = {re.search(r"eval/([^/,]+?)\.json", j["output"]).group(1) for j in plan_jobs(plan, "score_benchmark")}
    assert scored == set(UNDERSTANDING)
    assert len(predicted) == len(UNDERSTANDING) == jobs["predict_file"] + jobs["predict_folder"]
    # the prediction jobs read the config and the weights record, never a trained model or tokenizer
    for rule in ("predict_file", "predict_folder"):
        for j in plan_jobs(plan, rule):
            assert j["wildcards"] == "llava15_7b" and "model.pt" not in j["input"], j
            assert "results/weights.json" in j["input"], j
    assert jobs["validation_table"] == 1 and jobs["fetch_weights"] == 1


def test_fetch_weights_is_a_target_rule_and_gates_every_gpu_job_of_the_ci_plan(ci_plan):
    assert "fetch_weights" in snakemake("--list-target-rules", "--configfile", "config/ci.yaml").split()
    import yaml

    raw = yaml.safe_load((ROOT / "config/paper.yaml").read_text())
    from setok.configtools import deep_merge

    raw = deep_merge(raw, yaml.safe_load((ROOT / "config/ci.yaml").read_text()))
    assert_weights_fetched_before_gpu_jobs(ci_plan, raw, min_gpu_jobs=20)


def plan_jobs(plan: str, rule: str) -> list[dict[str, str]]:
    """The jobs of ``rule`` in a dry run's output, in the order planned: input, output, wildcards (variant) and the
    job's position in the plan."""
    jobs = []
    # a dry run lists a group job's jobs (the reports, CPU scoring: setok/resources.py) indented under it
    for m in re.finditer(rf"^( {{4}}|)rule {rule}:\n((?:\1    .*\n)+)", plan, re.M):
        fields = dict(re.findall(r"^ {4,8}(\w+): (.*)$", m.group(2), re.M))
        variant = re.search(r"variant=([\w+-]+)", fields.get("wildcards", ""))
        jobs.append({"input": fields.get("input", ""), "output": fields["output"], "position": m.start(),
                     "wildcards": variant.group(1) if variant else ""})
    return jobs


def assert_calibrated_before_training(plan: str, calibrated: set[str]) -> None:
    """Each calibrated variant: calibrate_clustering, then resolve_config merging its overlay, then train_tokenizer
    reading that config; every other variant's resolved config reads no overlay."""
    position = {(rule, j["wildcards"] or j["output"]): j["position"]
                for rule in ("calibrate_clustering", "train_tokenizer") for j in plan_jobs(plan, rule)}
    resolved = {j["output"]: j for j in plan_jobs(plan, "resolve_config")}
    for v in calibrated:
        config = resolved[f"results/{v}/config.yaml"]
        assert config["input"] == f"results/{v}/calibration/clustering.yaml", config
        assert position[("calibrate_clustering", v)] < config["position"] < position[("train_tokenizer", v)], v
    for out, job in resolved.items():
        if out.split("/")[1] not in calibrated:
            assert "calibration" not in job["input"], job


def test_calibrate_clustering_is_planned_before_train_tokenizer_of_calibrated_setok_variants_only(ci_plan):
    calibrated = {j["wildcards"] for j in plan_jobs(ci_plan, "calibrate_clustering")}
    assert calibrated == {"hard_cluster", "no_pe"}  # config/ci.yaml's SeTok run variants (hard); not semhitok
    assert {j["wildcards"] for j in plan_jobs(ci_plan, "train_tokenizer")} == calibrated
    assert_calibrated_before_training(ci_plan, calibrated)
    assert "results/semhitok/config.yaml" in {j["output"] for j in plan_jobs(ci_plan, "resolve_config")}
    calibrate = plan_jobs(ci_plan, "calibrate_clustering")[0]
    v = calibrate["wildcards"]
    assert calibrate["input"] == (f"results/{v}/calibration/config.yaml, results/data/checked/bundled.json, "
                                  "results/weights.json")
    assert calibrate["output"] == f"results/{v}/calibration/clustering.yaml, results/{v}/calibration/report.json"
    # the report page shows the calibration
    report = plan_jobs(ci_plan, "report")[0]["input"]
    assert "reports/tables/calibration.md" in report and "reports/figures/calibration/token_histograms.png" in report


def test_fixed_mode_ablation_plans_no_calibration():
    out = snakemake("ablation_fixed_8", "-n", "--forceall", "--configfile", "config/ci.yaml")
    assert "rule calibrate_clustering" not in out and "rule train_tokenizer" in out


def test_ablation_target_runs_only_that_variant():
    out = snakemake("ablation_fixed_8", "-n", "--forceall", "--configfile", "config/ci.yaml")
    trained = set(re.findall(r"results/(\w+)/tokenizer/model\.pt", out))
    assert trained == {"fixed_8"}
    assert planned(out)["train_tokenizer"] == 1


def test_semhitok_ablation_target_trains_its_stages_and_scores_rfid_only():
    out = snakemake("ablation_semhitok_concat_dim_16", "-n", "--forceall", "--configfile", "config/paper.yaml")
    jobs = planned(out)
    assert set(re.findall(r"results/(\w+)/tokenizer/model\.pt", out)) == {"semhitok_concat_dim_16"}
    assert jobs["train_semantic_codebook"] == jobs["train_pixel_codebook"] == jobs["score_tokenizer"] == 1
    assert "train_tokenizer" not in jobs and "train_stage1" not in jobs
    assert "results/semhitok_concat_dim_16/eval/fid.json" in out and "eval/imagenet.json" not in out


def test_every_variant_has_an_ablation_target():
    out = snakemake("--list-target-rules", "--configfile", "config/ci.yaml")
    for v in ("hard_cluster", "soft_cluster", "fixed_8", "fixed_32", "fixed_64", "fixed_256", "no_contrastive",
              "no_pe", "no_inter", "no_inner", "no_merger"):
        assert f"ablation_{v}" in out


def test_workflow_lint_is_clean():
    assert "Congratulations" in snakemake("--lint", "--configfile", "config/ci.yaml")


def test_score_benchmark_scores_predictions_placed_under_results(tmp_path):
    """The DAG fan-out: results/<variant>/predictions/<file> + official references -> eval/<benchmark>.json."""
    import json

    (tmp_path / "ref").mkdir()
    labels = ["yes", "no", "yes", "no"]
    (tmp_path / "ref/coco_pope_random.json").write_text("".join(
        json.dumps({"question_id": i, "image": f"{i}.jpg", "text": "Is there a cat?", "label": lab}) + "\n"
        for i, lab in enumerate(labels, 1)))
    preds = tmp_path / "results/no_pe/predictions/pope"
    preds.mkdir(parents=True)
    # yes, no, no, yes against yes, no, yes, no: TP = TN = FP = FN = 1.
    (preds / "random.jsonl").write_text("".join(
        json.dumps({"question_id": i, "text": t}) + "\n" for i, t in enumerate(["Yes, a cat.", "No.", "No", "Yes"], 1)))
    (tmp_path / "bench.yaml").write_text("benchmarks:\n  pope: {predictions: pope, annotations: ref}\n")
    configs = [str(ROOT / "config/paper.yaml"), str(ROOT / "config/ci.yaml"), str(tmp_path / "bench.yaml")]
    snakemake("-s", str(ROOT / "Snakefile"), "-d", str(tmp_path), "--cores", "1", "results/no_pe/eval/pope.json",
              "--configfile", *configs)
    result = json.loads((tmp_path / "results/no_pe/eval/pope.json").read_text())
    assert result["variant"] == "no_pe" and result["n"] == 4 and result["config_sha"]
    assert result["metrics"]["accuracy"] == 50.0 and result["metrics"]["yes_ratio"] == 50.0
    assert (tmp_path / "results/no_pe/eval/pope.samples.jsonl").is_file()
    assert result["checkpoint"] is None  # placed by hand: no model wrote them
    model = tmp_path / "results/no_pe/stage2/model.pt"
    model.parent.mkdir(parents=True)
    model.write_bytes(b"")
    snakemake("-s", str(ROOT / "Snakefile"), "-d", str(tmp_path), "--cores", "1", "results/no_pe/eval/pope.json",
              "--forcerun", "score_benchmark", "--configfile", *configs)
    result = json.loads((tmp_path / "results/no_pe/eval/pope.json").read_text())
    assert result["checkpoint"] == "results/no_pe/stage2/model.pt"


def test_missing_official_reference_is_named_before_any_job(tmp_path):
    preds = tmp_path / "results/no_pe/predictions"
    preds.mkdir(parents=True)
    (preds / "vqav2.json").write_text("[]")
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}"}
    r = subprocess.run([str(BIN / "snakemake"), "-s", str(ROOT / "Snakefile"), "-d", str(tmp_path), "-n",
                        "results/no_pe/eval/vqav2.json", "--configfile", str(ROOT / "config/paper.yaml")],
                       capture_output=True, text=True, env=env)
    assert r.returncode != 0
    assert "resources/vqav2/v2_mscoco_val2014_annotations.json" in r.stdout + r.stderr


def test_missing_dataset_fails_in_prepare_data_before_any_training_job(tmp_path):
    """A training dataset that is not downloaded stops the run in the local prepare_data job, with the dataset's name
    and the path it is expected at, before the (GPU) training job that reads it is started."""
    import yaml

    missing = tmp_path / "resources/imagenet/train"
    overlay = tmp_path / "missing.yaml"
    overlay.write_text(yaml.safe_dump({"train_tokenizer": {"sources": ["bundled_classes"]},
                                       "datasets": {"bundled_classes": {"kind": "imagenet", "root": str(missing)}}}))
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}"}
    r = subprocess.run([str(BIN / "snakemake"), "-s", str(ROOT / "Snakefile"), "-d", str(tmp_path), "--cores", "1",
                        "results/hard_cluster/tokenizer/model.pt", "--configfile", str(ROOT / "config/paper.yaml"),
                        str(ROOT / "config/ci.yaml"),
                        str(overlay)], capture_output=True, text=True, env=env)
    out = r.stdout + r.stderr
    assert r.returncode != 0
    assert re.search(rf"error: dataset bundled_classes: {re.escape(str(missing))}\S* missing", out), out[-3000:]
    assert "rule prepare_data" in out and "rule train_tokenizer" not in out
    assert not (tmp_path / "logs/hard_cluster/train_tokenizer.log").exists()


def test_limited_benchmark_is_scored_against_the_subset_its_prediction_job_writes(tmp_path):
    """Under `limit`, the prediction job answers the first N questions and writes the matching references beside its
    predictions; the score job must read those, not the full official files (every other id lacks a prediction)."""
    import yaml

    overlay = tmp_path / "limit.yaml"
    overlay.write_text(yaml.safe_dump({"benchmarks": {"vqav2": {"limit": 2}, "mme": {"limit": 3}}}))
    targets = ["results/hard_cluster/eval/vqav2.json", "results/hard_cluster/eval/mme.json"]
    out = snakemake("-n", "-p", "--forceall", *targets, "--configfile", "config/ci.yaml", str(overlay))
    score = {m.group(1): m.group(0) for m in re.finditer(r"python -m evaluation score (\w+) .*", out)}
    refs = "results/hard_cluster/predictions/vqav2.json.references/"
    assert f"--annotations {refs}" in score["vqav2"] and f"--questions {refs}" in score["vqav2"]
    assert "--annotations results/hard_cluster/predictions/mme.references/Your_Results" in score["mme"]
    # ... and record the subset ("kept of N queries") the prediction job wrote there, so the result is marked
    assert f"--provenance-from {refs}provenance.json" in score["vqav2"]
    assert "--provenance-from results/hard_cluster/predictions/mme.references/provenance.json" in score["mme"]
    unlimited = snakemake("-n", "-p", "--forceall", "results/hard_cluster/eval/vqav2.json",
                          "results/hard_cluster/eval/fid.json", "--configfile", "config/ci.yaml")
    assert ".references/" not in unlimited
    score = {m.group(1): m.group(0) for m in re.finditer(r"python -m evaluation score (\w+) .*", unlimited)}
    assert "--provenance-from" not in score["vqav2"]
    # a tokenizer benchmark reads what its evaluation set is (bundled photos in CI) from its prediction job
    assert "--provenance-from results/hard_cluster/tokenizer/tokens.json" in score["fid"]


def test_every_stage_of_the_stage_table_is_a_training_rule(ci_plan):
    from setok.stages import STAGES

    jobs = planned(ci_plan)
    for stage in STAGES.values():
        assert jobs[f"train_{stage.name}"] >= 1, stage.name
        block = re.search(rf"rule train_{stage.name}:\n(.*?resources: [^\n]*\n)", ci_plan, re.S).group(1)
        assert re.search(rf"output: results/\w+/{re.escape(stage.folder)}/model\.pt\n", block), block
        assert re.search(rf"log: logs/\w+/train_{stage.name}\.log\n", block), block
        assert f"nodes={stage.local.nodes}, gpu={stage.local.gpu}, runtime={stage.local.runtime}, " \
               f"mem_mb={stage.local.mem_mb}" in block, block


# --- GPUs asked are GPUs used (docs/cluster.md): the rules pass the device explicitly --------------------------------

DEVICE_TARGETS = ["results/hard_cluster/eval/fid.json", "results/hard_cluster/eval/imagenet.json",
                  "results/hard_cluster/eval/coco_fid.json", "results/hard_cluster/eval/pope.json",
                  "results/hard_cluster/cost.json", "results/semhitok/tokenizer/codes.npz"]
# every job of DEVICE_TARGETS that loads a model: calibration, both tokenizers' predictions, an MLLM prediction
# (file and folder), the model cost, two scorers that run Inception
MODEL_JOBS = [r"python -m setok\.calibrate_clustering ", r"python -m evaluation\.predict\.tokenizer ",
              r"python -m evaluation\.predict\.semhitok ", r"python -m evaluation\.predict\.mllm .*--benchmark pope ",
              r"python -m evaluation\.predict\.mllm .*--benchmark coco_fid ", r"python -m evaluation\.predict\.cost ",
              r"python -m evaluation score fid ", r"python -m evaluation score coco_fid "]


def _device_plan(*configs: str) -> dict[str, list[str]]:
    """The shell commands of DEVICE_TARGETS' dry run: every training launch, every job that loads a model, and the
    scorers that run none (imagenet, pope)."""
    out = snakemake("-n", "-p", "--forceall", *DEVICE_TARGETS, "--configfile", *configs)
    lines = [line for line in out.splitlines() if "python -m " in line]
    found = {"launch": [line for line in lines if "python -m setok.launch " in line],
             "no model": [line for line in lines if re.search(r"python -m evaluation score (imagenet|pope) ", line)]}
    for job in MODEL_JOBS:
        found[job] = [line for line in lines if re.search(job, line)]
    assert all(found.values()), {k: len(v) for k, v in found.items()}  # the plan has every kind of job
    return found


def test_ci_plan_allows_the_cpu_explicitly():
    found = _device_plan("config/ci.yaml")
    assert all(" --allow-cpu -- " in line for line in found["launch"])
    for job in MODEL_JOBS:
        assert all(" --device cpu " in line for line in found[job]), job
    assert not any("--device" in line for line in found["no model"])


def test_paper_plan_asks_for_cuda_and_never_allows_the_cpu(tmp_path):
    import yaml

    benchmarks = yaml.safe_load((ROOT / "config" / "ci.yaml").read_text())["benchmarks"]
    overlay = tmp_path / "fixtures.yaml"  # the official benchmark files are not in a fresh clone
    overlay.write_text(yaml.safe_dump({"benchmarks": benchmarks}))
    found = _device_plan("config/paper.yaml", str(overlay))
    assert not any("--allow-cpu" in line for lines in found.values() for line in lines)
    assert all(re.search(r"--nodes \d+ +-- ", line) for line in found["launch"])
    for job in MODEL_JOBS:
        assert all(" --device cuda " in line for line in found[job]), job
    assert not any("--device" in line for line in found["no model"])
