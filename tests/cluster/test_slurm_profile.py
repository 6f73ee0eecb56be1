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
    return env


def snakemake(*args: str, env: dict[str, str], cwd: Path = ROOT) -> str:
    r = subprocess.run([str(BIN / "snakemake"), *args], cwd=cwd, capture_output=True, text=True, env=env)
    assert r.returncode == 0, r.stdout[-5000:] + r.stderr[-5000:]
    return r.stdout + r.stderr


def planned_resources(out: str) -> dict[str, list[dict[str, str]]]:
    """rule -> the resources line of each of its planned jobs, from a dry run's job listing."""
    plan: dict[str, list[dict[str, str]]] = {}
    rule = None
    for line in out.splitlines():
        m = re.match(r"(?:local)?rule (\w+):$", line)
        if m:
            rule = m.group(1)
        elif rule and line.startswith("    resources: "):
            pairs = (p.split("=", 1) for p in line[len("    resources: "):].split(", "))
            plan.setdefault(rule, []).append({k: v for k, v in pairs})
    return plan


def jsonl(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()] if path.is_file() else []


def submission(log: Path, rule: str) -> dict[str, Any]:
    """The one sbatch call of ``rule`` (found by the plugin's --comment rule_<name>[_wildcards_...])."""
    calls = [c for c in jsonl(log / "sbatch.jsonl")
             if re.fullmatch(rf"rule_{rule}(_wildcards_.*)?", option(c["argv"], "--comment"))]
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


def test_account_and_partitions_come_from_the_environment_only_when_set():
    bare = profile(clean_env())
    assert bare["executor"] == "slurm" and bare["slurm-requeue"] == "True" and bare["rerun-incomplete"] == "True"
    assert {"mem_mb", "runtime", "cpus_per_task"} <= set(bare["default-resources"])
    assert "slurm_account" not in bare["default-resources"] and "slurm_partition" not in bare["default-resources"]
    assert not any("slurm_partition" in r for r in bare["set-resources"].values())
    site = profile(clean_env(**SITE))
    assert site["default-resources"]["slurm_account"] == "fakeacct"
    assert site["default-resources"]["slurm_partition"] == "cpu"
    assert {r["slurm_partition"] for r in site["set-resources"].values()} == {"gpu"}
    # without SETOK_GPU_PARTITION the GPU rules use SBATCH_PARTITION too
    cpu_only = profile(clean_env(SBATCH_PARTITION="shared"))
    assert {r["slurm_partition"] for r in cpu_only["set-resources"].values()} == {"shared"}


def test_training_rules_are_one_job_per_stage_without_a_task_per_gpu():
    rules = profile(clean_env())["set-resources"]
    for rule in TRAINING:
        r = rules[rule]
        assert r["tasks_per_gpu"] == 0 and r["mpi"] == 0 and "tasks" not in r, rule
        assert r["gpu"] == 8 * r["nodes"], rule  # gpu is the job's total (sbatch --gpus): 8 per node
    assert rules["train_stage1"]["nodes"] == rules["train_stage2"]["nodes"] == 8  # 64 GPUs, as the paper
    assert rules["train_tokenizer"]["nodes"] == rules["train_semantic_codebook"]["nodes"] == 1
    for rule in ("score_benchmark", "score_tokenizer", "predict_file", "predict_folder", "predict_shard",
                 "tokenizer_predictions", "semhitok_predictions", "model_cost"):
        assert rules[rule]["gpu"] == 1 and rules[rule]["nodes"] == 1 and "mpi" not in rules[rule], rule


def test_the_profile_sizes_every_training_stage_from_the_stage_table():
    from setok.stages import STAGES

    assert set(TRAINING) == {f"train_{s}" for s in STAGES}
    rules = profile(clean_env(**SITE))["set-resources"]
    for stage in STAGES.values():
        r, c = rules[f"train_{stage.name}"], stage.cluster
        assert (r["nodes"], r["gpu"], r["mem_mb"], r["runtime"], r["cpus_per_task"], r["slurm_partition"]) == \
            (c.nodes, c.gpu, c.mem_mb, c.runtime, c.cpus_per_task, "gpu"), stage.name


def test_paper_dry_run_plans_every_gpu_rule_with_the_profiles_resources(tmp_path):
    # The official benchmark files are not in a fresh clone: plan against the CI fixtures in their place.
    ci = yaml.safe_load((ROOT / "config" / "ci.yaml").read_text())
    overlay = tmp_path / "fixtures.yaml"
    overlay.write_text(yaml.safe_dump({"benchmarks": ci["benchmarks"]}))
    env = clean_env(**SITE)  # no Slurm commands on PATH: planning works anywhere
    out = snakemake("-n", "--forceall", "--profile", str(PROFILE), "--configfile", CONFIGS[0], str(overlay), env=env)
    assert job_stats(out)["total"] > 500  # every variant, table, figure and the report (892)
    plan = planned_resources(out)
    sized = profile(env)["set-resources"]
    gpu_rules = {rule for rule, jobs in plan.items() if any("gpu" in job for job in jobs)}
    assert gpu_rules <= set(sized), f"GPU rules the profile does not size: {sorted(gpu_rules - set(sized))}"
    assert set(TRAINING) <= gpu_rules and "score_benchmark" in gpu_rules
    for rule in gpu_rules:
        for job in plan[rule]:
            for name in ("gpu", "nodes", "mem_mb", "runtime", "cpus_per_task", "slurm_partition"):
                assert job[name] == str(sized[rule][name]), (rule, name, job)
    stage2 = plan["train_stage2"]
    assert len(stage2) == job_stats(out)["train_stage2"] > 1
    assert all(j["gpu"] == "64" and j["nodes"] == "8" and j["tasks_per_gpu"] == "0" and j["mpi"] == "0"
               for j in stage2)


# ------------------------------------------------------------------------------ submissions to the stand-in


STAND_IN_WORKFLOW = """
rule all:
    input: "stage2.txt", "score.txt"

rule train_stage2:
    output: "stage2.txt"
    resources: gpu=8, nodes=1
    shell:
        "env | grep '^SLURM' | sort > batch_env.txt; "
        "srun --nodes={resources.nodes} --ntasks-per-node=1 sh -c 'echo $SLURM_NODEID $SLURM_PROCID' | sort > {output}"

rule score_benchmark:
    output: "score.txt"
    resources: gpu=1
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
    score = submission(log, "score_benchmark")["argv"]
    assert resources_sent(score)["gpu"] == "1" and resources_sent(score)["nodes"] == "1" and "--requeue" in score
    score_id = next(c["jobid"] for c in jsonl(log / "sbatch.jsonl") if c["argv"] == score)
    wrapper = [s for s in steps if s["jobid"] == score_id]
    assert len(wrapper) == 1 and {"-n1", "--gpus=1", "--nodes=1"} <= set(wrapper[0]["argv"])
    assert "snakemake" in wrapper[0]["command"]
    assert (tmp_path / "score.txt").read_text() == "SLURM_NTASKS=1\nSLURM_STEP_ID=0\n"
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
