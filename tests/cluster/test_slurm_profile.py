"""profiles/slurm against snakemake-executor-plugin-slurm 2.8.0: the paper-scale plan it sizes, and real submissions
to the stand-in Slurm of tests/cluster/fake_slurm (sbatch argv, task geometry, requeue, the job's outputs)."""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from profile_tools import clean_env, job_stats
from profile_tools import rendered_profile as profile

from evaluation import registry
from setok.resources import CPU_SCORING_GROUP, JOBS, REPORT_GROUP, REPORT_RULES, SCORING, SCORING_RULES, gpu_rules

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
FAKE_SLURM = Path(__file__).resolve().parent / "fake_slurm"
PROFILE = ROOT / "profiles" / "slurm"
CONFIGS = [str(ROOT / "config" / "paper.yaml"), str(ROOT / "config" / "ci.yaml")]
TRAINING = ["train_tokenizer", "train_semantic_codebook", "train_pixel_codebook", "train_pixel_finetune",
            "train_pixel_decoder", "train_stage1", "train_mask_decoder", "train_stage2"]
SITE = {"SBATCH_ACCOUNT": "fakeacct", "SBATCH_PARTITION": "cpu", "SETOK_GPU_PARTITION": "gpu"}


# ------------------------------------------------------------------------------------------------------ helpers


def slurm_env(log: Path, **extra: str) -> dict[str, str]:
    """clean_env with the stand-in Slurm first on PATH, its state in ``log`` and the site variables of SITE."""
    env = clean_env(FAKE_SLURM_LOG=str(log), FAKE_SLURM_PYTHON=sys.executable, FAKE_SLURM_ACCOUNTS="fakeacct",
                    FAKE_SLURM_PARTITIONS="cpu*,gpu", **SITE, **extra)
    env["PATH"] = f"{FAKE_SLURM}{os.pathsep}{env['PATH']}"
    # The profile imports setok and evaluation from the working directory; a stand-in workflow runs elsewhere.
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH", "")]))
    return env


def snakemake(*args: str, env: dict[str, str], cwd: Path = ROOT) -> str:
    r = subprocess.run([str(BIN / "snakemake"), *args], cwd=cwd, capture_output=True, text=True, env=env)
    assert r.returncode == 0, r.stdout[-5000:] + r.stderr[-5000:]
    return r.stdout + r.stderr


def planned_resources(out: str) -> dict[str, list[dict[str, str]]]:
    """rule -> the resources line of each of its planned jobs, from a dry run's job listing (a group job's jobs are
    listed indented under it)."""
    plan: dict[str, list[dict[str, str]]] = {}
    rule = None
    for line in out.splitlines():
        m = re.match(r"(?: {4})?(?:local)?rule (\w+):$", line)
        r = re.match(r"(?: {4})? {4}resources: (.*)$", line)
        if m:
            rule = m.group(1)
        elif rule and r:
            pairs = (p.split("=", 1) for p in r.group(1).split(", "))
            plan.setdefault(rule, []).append({k: v for k, v in pairs})
    return plan


def submissions(out: str, local: set[str]) -> dict[str, int]:
    """What a dry run would submit: ungrouped jobs per rule (less ``local`` rules) and group jobs per group name
    (``cpu_scoring_<variant>`` counted as ``cpu_scoring``)."""
    counts: dict[str, int] = {}
    for m in re.finditer(r"^(?:local)?rule (\w+):$", out, re.M):
        if m.group(1) not in local:
            counts[m.group(1)] = counts.get(m.group(1), 0) + 1
    for m in re.finditer(r"Group job (\S+) \(", out):
        name = CPU_SCORING_GROUP if m.group(1).startswith(CPU_SCORING_GROUP + "_") else m.group(1)
        counts[f"group {name}"] = counts.get(f"group {name}", 0) + 1
    return counts


def jsonl(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()] if path.is_file() else []


def submission(log: Path, rule: str, wildcards: str = ".*") -> dict[str, Any]:
    """The one sbatch call of ``rule`` (found by the plugin's --comment rule_<name>[_wildcards_...])."""
    calls = [c for c in jsonl(log / "sbatch.jsonl")
             if re.fullmatch(rf"rule_{rule}(_wildcards_{wildcards})?", option(c["argv"], "--comment"))]
    assert len(calls) == 1, f"{rule}: {len(calls)} sbatch calls in {log / 'sbatch.jsonl'}"
    return calls[0]


def option(argv: list[str], name: str) -> str | None:
    """The value of an sbatch option given as ``name value`` or ``name=value``; None when absent."""
    for i, arg in enumerate(argv):
        if arg == name and i + 1 < len(argv):
            return argv[i + 1]
        if arg.startswith(name + "="):
            return arg[len(name) + 1:]
    return None


def resources_sent(argv: list[str]) -> dict[str, Any]:
    """What an sbatch call asked for, in the profile's terms."""
    return {"gpu": option(argv, "--gpus"), "nodes": option(argv, "--nodes"), "runtime": option(argv, "-t"),
            "mem_mb": option(argv, "--mem"), "cpus_per_task": option(argv, "--cpus-per-task"),
            "account": option(argv, "-A"), "partition": option(argv, "-p")}


# ------------------------------------------------------------------------------------------------- the profile


GPU_SCORED = {"fid", "coco_fid", "mjhq_fid", "evr", "ma5k", "magicbrush", "genai_bench"}  # scorers that run a model
LOCAL = {"prepare_data", "resolve_base_config", "resolve_config", "resolve_calibration_config", "fetch_weights",
         "merge_prediction_file", "merge_prediction_folder", "all"}  # localrules: never sbatch
SIZES = ("gpu", "nodes", "mem_mb", "runtime", "cpus_per_task")


def test_account_and_partitions_come_from_the_environment_only_when_set():
    bare = profile(clean_env())
    assert bare["executor"] == "slurm" and bare["slurm-requeue"] == "True" and bare["rerun-incomplete"] == "True"
    assert {"mem_mb", "runtime", "cpus_per_task"} <= set(bare["default-resources"])
    assert "slurm_account" not in bare["default-resources"] and "slurm_partition" not in bare["default-resources"]
    assert not any("slurm_partition" in r for r in bare["set-resources"].values())
    site = profile(clean_env(**SITE), evaluate=False)
    assert site["default-resources"]["slurm_account"] == "'fakeacct'"
    assert site["default-resources"]["slurm_partition"] == "'cpu'"
    # every GPU rule goes to the GPU partition; a scoring job there only when its scorer runs a model
    assert set(site["set-resources"]) == {*TRAINING, *gpu_rules()}
    for rule, r in site["set-resources"].items():
        want = (f"'gpu' if wildcards.benchmark in {sorted(GPU_SCORED)!r} else 'cpu'" if rule in SCORING_RULES
                else "'gpu'")
        assert r["slurm_partition"] == want, rule
    # without SETOK_GPU_PARTITION the GPU rules use SBATCH_PARTITION too
    cpu_only = profile(clean_env(SBATCH_PARTITION="shared"), evaluate=False)
    assert {r["slurm_partition"] for r in cpu_only["set-resources"].values()} == {
        "'shared'", f"'shared' if wildcards.benchmark in {sorted(GPU_SCORED)!r} else 'shared'"}


def test_the_registry_decides_which_scorers_get_a_gpu():
    assert {b for b in registry.names() if registry.get(b).scoring_needs_gpu} == GPU_SCORED
    assert SCORING[True].gpu == 1 and SCORING[False].gpu == 0


def test_the_profile_sizes_only_training_the_rules_size_every_other_job():
    """One source: a non-training rule's size is its row of setok/resources.py, read by the rule; the profile only
    says where it goes (and switches off the plugin's task per GPU)."""
    rules = profile(clean_env(**SITE))["set-resources"]
    for rule in TRAINING:
        r = rules[rule]
        assert r["tasks_per_gpu"] == 0 and r["mpi"] == 0 and "tasks" not in r, rule
        assert r["gpu"] == 8 * r["nodes"], rule  # gpu is the job's total (sbatch --gpus): 8 per node
    assert rules["train_stage1"]["nodes"] == rules["train_stage2"]["nodes"] == 8  # 64 GPUs, as the paper
    assert rules["train_tokenizer"]["nodes"] == rules["train_semantic_codebook"]["nodes"] == 1
    for rule in gpu_rules():
        assert set(rules[rule]) == {"slurm_partition", "tasks_per_gpu"}, rule
    assert not set(JOBS) & set(TRAINING)


def test_the_profile_sizes_every_training_stage_from_the_stage_table():
    from setok.stages import STAGES

    assert set(TRAINING) == {f"train_{s}" for s in STAGES}
    rules = profile(clean_env(**SITE))["set-resources"]
    for stage in STAGES.values():
        r, c = rules[f"train_{stage.name}"], stage.cluster
        assert (r["nodes"], r["gpu"], r["mem_mb"], r["runtime"], r["cpus_per_task"], r["slurm_partition"]) == \
            (c.nodes, c.gpu, c.mem_mb, c.runtime, c.cpus_per_task, "gpu"), stage.name


@pytest.fixture(scope="module")
def paper_plans(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, str]:
    """The paper DAG planned (``-n --forceall``) through profiles/slurm and without a profile (a local run)."""
    # The official benchmark files are not in a fresh clone: plan against the CI fixtures in their place.
    ci = yaml.safe_load((ROOT / "config" / "ci.yaml").read_text())
    overlay = tmp_path_factory.mktemp("plan") / "fixtures.yaml"
    overlay.write_text(yaml.safe_dump({"benchmarks": ci["benchmarks"]}))
    env = clean_env(**SITE)  # no Slurm commands on PATH: planning works anywhere
    config = ["--configfile", CONFIGS[0], str(overlay)]
    return (snakemake("-n", "--forceall", "--profile", str(PROFILE), *config, env=env),
            snakemake("-n", "--forceall", "--cores", "8", *config, env=env))


def test_paper_dry_run_plans_every_job_with_the_sizes_of_the_one_table(paper_plans):
    slurm, local = paper_plans
    assert job_stats(slurm) == job_stats(local) and job_stats(slurm)["total"] > 500  # every variant, table, report
    with_profile, without = planned_resources(slurm), planned_resources(local)
    assert with_profile.keys() == without.keys()
    from setok.stages import STAGES

    for rule, jobs in with_profile.items():
        if rule in TRAINING:  # the stage table's cluster row under the profile, its local row without
            stage = STAGES[rule.removeprefix("train_")]
            for job in jobs:
                assert {k: job[k] for k in ("gpu", "nodes", "mem_mb", "runtime")} == {
                    k: str(getattr(stage.cluster, k)) for k in ("gpu", "nodes", "mem_mb", "runtime")}, rule
            for job in without[rule]:
                assert job["gpu"] == str(stage.local.gpu) and job["mem_mb"] == str(stage.local.mem_mb), rule
            continue
        if rule in LOCAL:
            continue
        # the rules and the profile agree: the same sizes with and without it, those of setok/resources.py
        assert sorted(({k: j.get(k) for k in SIZES} for j in jobs), key=str) == \
            sorted(({k: j.get(k) for k in SIZES} for j in without[rule]), key=str), rule
        for job in jobs:
            want = SCORING[job["gpu"] == "1"] if rule in SCORING_RULES else JOBS[rule]
            assert {k: job.get(k) for k in SIZES} == {
                "gpu": str(want.gpu), "nodes": None, "mem_mb": str(want.mem_mb), "runtime": str(want.runtime),
                "cpus_per_task": str(want.cpus_per_task)}, (rule, job)
    # a job goes to the GPU partition exactly when it asks a GPU
    for rule, jobs in with_profile.items():
        for job in jobs:
            if rule not in LOCAL:
                assert job["slurm_partition"] == ("gpu" if int(job.get("gpu", 0)) else "cpu"), (rule, job)
    scored = {(j["gpu"]) for j in with_profile["score_benchmark"]}
    assert scored == {"0", "1"}  # both kinds in the paper DAG
    stage2 = with_profile["train_stage2"]
    assert len(stage2) == job_stats(slurm)["train_stage2"] > 1
    assert all(j["gpu"] == "64" and j["nodes"] == "8" and j["tasks_per_gpu"] == "0" and j["mpi"] == "0"
               for j in stage2)


def test_paper_dag_submits_cpu_scoring_per_variant_and_the_reports_as_one_job(paper_plans):
    slurm, local = paper_plans
    counts = submissions(slurm, LOCAL)
    stats = job_stats(slurm)
    gpu_scored = sum(1 for j in planned_resources(slurm)["score_benchmark"] if j["gpu"] == "1")
    assert counts["score_benchmark"] == gpu_scored  # only GPU scorers are submitted one by one
    assert counts[f"group {REPORT_GROUP}"] == 1 and not set(REPORT_RULES) & set(counts)
    variants_scored = len(set(re.findall(rf"Group job {CPU_SCORING_GROUP}_(\w+) \(", slurm)))
    assert counts[f"group {CPU_SCORING_GROUP}"] == variants_scored > 10
    total = sum(counts.values())
    before = stats["total"] - sum(stats.get(r, 0) for r in LOCAL)  # one sbatch per non-local job, ungrouped
    print(f"\npaper DAG: {stats['total']} jobs, {before} sbatch ungrouped, {total} grouped: {counts}")
    assert total < before - 200
    # a local run (--cores) plans the same jobs, and never groups them
    assert job_stats(local) == stats


# ------------------------------------------------------------------------------ submissions to the stand-in


STAND_IN_WORKFLOW = """
rule all:
    input: "stage2.txt", "score/fid.txt", "score/pope.txt"

rule train_stage2:
    output: "stage2.txt"
    resources: gpu=8, nodes=1
    shell:
        "env | grep '^SLURM' | sort > batch_env.txt; "
        "srun --nodes={resources.nodes} --ntasks-per-node=1 sh -c 'echo $SLURM_NODEID $SLURM_PROCID' | sort > {output}"

rule score_benchmark:
    output: "score/{benchmark}.txt"
    resources: gpu=lambda wildcards: int(wildcards.benchmark == "fid")
    shell: "env | grep -E '^SLURM_(STEP_ID|NTASKS)=' | sort > {output}"
"""


def test_multi_node_stage_is_one_allocation_whose_command_starts_a_task_per_node(tmp_path):
    """The profile's Stage-II geometry on a two-rule workflow named like the real rules (jobs run detached)."""
    (tmp_path / "Snakefile").write_text(STAND_IN_WORKFLOW)
    log = tmp_path / "slurm"
    snakemake("--profile", str(PROFILE), "--slurm-init-seconds-before-status-checks", "1", env=slurm_env(log),
              cwd=tmp_path)
    stage2 = submission(log, "train_stage2")["argv"]
    assert resources_sent(stage2) == {"gpu": "64", "nodes": "8", "runtime": "480", "mem_mb": "512000",
                                      "cpus_per_task": "72", "account": "fakeacct", "partition": "gpu"}
    assert "--requeue" in stage2
    assert not any(a.startswith(("--ntasks", "-n")) for a in stage2)  # one task per node, no task per GPU
    steps = jsonl(log / "srun.jsonl")
    stage2_id = next(c["jobid"] for c in jsonl(log / "sbatch.jsonl") if c["argv"] == stage2)
    stage2_steps = [s for s in steps if s["jobid"] == stage2_id]
    # The batch script runs the rule's command itself (no `srun -n1` wrapper), so its own srun spans the 8 nodes.
    assert [s["argv"][:2] for s in stage2_steps] == [["--nodes=8", "--ntasks-per-node=1"]]
    assert (tmp_path / "stage2.txt").read_text().split("\n")[:-1] == sorted(f"{i} {i}" for i in range(8))
    batch_env = dict(line.split("=", 1) for line in (tmp_path / "batch_env.txt").read_text().splitlines())
    assert batch_env["SLURM_JOB_ID"] == stage2_id
    # slurm-jobstep 0.6.1 drops the allocation variables before running the command: counts come from the rule.
    assert "SLURM_NNODES" not in batch_env and "SLURM_JOB_NODELIST" not in batch_env
    # A one-GPU job keeps the plugin's default: its command runs in an `srun -n1 --gpus=1` step.
    score = submission(log, "score_benchmark", "fid")["argv"]
    # one node by default (setok/resources.py sends no --nodes: a group would sum it)
    assert resources_sent(score)["gpu"] == "1" and resources_sent(score)["nodes"] is None and "--requeue" in score
    score_id = next(c["jobid"] for c in jsonl(log / "sbatch.jsonl") if c["argv"] == score)
    wrapper = [s for s in steps if s["jobid"] == score_id]
    assert len(wrapper) == 1 and {"-n1", "--gpus=1", "--nodes=1"} <= set(wrapper[0]["argv"])
    assert "snakemake" in wrapper[0]["command"]
    assert (tmp_path / "score/fid.txt").read_text() == "SLURM_NTASKS=1\nSLURM_STEP_ID=0\n"
    assert resources_sent(score)["partition"] == "gpu"
    # A CPU scorer (the profile's partition expression, per benchmark): the CPU partition, no GPU.
    cpu_score = submission(log, "score_benchmark", "pope")["argv"]
    assert resources_sent(cpu_score)["partition"] == "cpu" and resources_sent(cpu_score)["gpu"] is None
    assert [(log / "jobs" / i / "state").read_text() for i in (stage2_id, score_id)] == ["COMPLETED\n"] * 2


@pytest.mark.slow
def test_train_tokenizer_is_submitted_with_the_profiles_resources_and_trains(tmp_path):
    """The real rule end to end on the CI config: the CPU rules before it locally, then one sbatch through the plugin.
    The stand-in runs the job before sbatch returns (FAKE_SLURM_SYNC), so the plugin's first status query sees it
    done; about 80 s on 2 cores."""
    work, log = tmp_path / "work", tmp_path / "slurm"
    target = "results/no_pe/tokenizer/model.pt"
    common = ["-s", str(ROOT / "Snakefile"), "-d", str(work), target]
    snakemake(*common, "--cores", "2", "--omit-from", "train_tokenizer", "--configfile", *CONFIGS, env=clean_env())
    snakemake(*common, "--profile", str(PROFILE), "--slurm-init-seconds-before-status-checks", "1",
              "--configfile", *CONFIGS, env=slurm_env(log, FAKE_SLURM_SYNC="1"))
    assert (work / target).is_file() and (work / target).stat().st_size > 0
    calls = jsonl(log / "sbatch.jsonl")
    assert len(calls) == 1  # only the GPU rule went to Slurm
    argv = submission(log, "train_tokenizer")["argv"]
    want = profile(slurm_env(log))["set-resources"]["train_tokenizer"]
    assert resources_sent(argv) == {"gpu": str(want["gpu"]), "nodes": str(want["nodes"]),
                                    "runtime": str(want["runtime"]), "mem_mb": str(want["mem_mb"]),
                                    "cpus_per_task": str(want["cpus_per_task"]), "account": "fakeacct",
                                    "partition": "gpu"}
    assert resources_sent(argv)["gpu"] == "8" and "--requeue" in argv
    assert not any(a.startswith(("--ntasks", "-n")) for a in argv)
    assert option(argv, "-D") == str(work)
    wrap = option(argv, "--wrap")
    assert "--target-jobs 'train_tokenizer:variant=no_pe'" in wrap and "--executor slurm-jobstep" in wrap
    assert not jsonl(log / "srun.jsonl")  # the training command ran in the batch script, not in a wrapper step
    status = [c for c in jsonl(log / "calls.jsonl") if c["tool"] in ("sacct", "squeue")]
    assert status and all(option(c["argv"], "--name") == option(argv, "--job-name") for c in status)
    assert (log / "jobs" / calls[0]["jobid"] / "state").read_text() == "COMPLETED\n"
    train_log = (work / "logs/no_pe/train_tokenizer.log").read_text()
    assert "wrote results/no_pe/tokenizer/model.pt" in train_log


GROUPED_WORKFLOW = """
from setok.resources import CPU_SCORING_GROUP, SCORING

def group(wildcards):
    name = f"{CPU_SCORING_GROUP}_{wildcards.variant}"
    workflow.parent_groupids[name] = CPU_SCORING_GROUP
    return name

rule all:
    input: expand("{variant}/{benchmark}.txt", variant=["a"], benchmark=range(10))

rule score_benchmark:
    output: "{variant}/{benchmark}.txt"
    group: group
    resources: **SCORING[False].as_resources()
    shell: "echo {wildcards.benchmark} > {output}"
"""


def test_cpu_scoring_of_a_variant_is_one_submission_sized_by_its_layers(tmp_path):
    """Ten CPU scoring jobs of one variant, grouped as the workflow groups them, through the real profile: one sbatch
    call, 8 jobs side by side (the profile's cores) and 2 after them: the memory and CPUs of 8, two layers' time."""
    (tmp_path / "Snakefile").write_text(GROUPED_WORKFLOW)
    log = tmp_path / "slurm"
    snakemake("--profile", str(PROFILE), "--slurm-init-seconds-before-status-checks", "1", env=slurm_env(log),
              cwd=tmp_path)
    calls = jsonl(log / "sbatch.jsonl")
    assert len(calls) == 1 and option(calls[0]["argv"], "--comment").startswith(f"rule_{CPU_SCORING_GROUP}_a_")
    row = SCORING[False]
    assert resources_sent(calls[0]["argv"]) == {
        "gpu": None, "nodes": None, "runtime": str(2 * row.runtime), "mem_mb": str(8 * row.mem_mb),
        "cpus_per_task": str(8 * row.cpus_per_task), "account": "fakeacct", "partition": "cpu"}
    assert sorted(p.name for p in (tmp_path / "a").iterdir()) == sorted(f"{i}.txt" for i in range(10))
