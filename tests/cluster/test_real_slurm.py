"""`make cluster-test`: part of the CI workflow submitted through profiles/slurm and snakemake-executor-plugin-slurm
to a real one-node Slurm (tests/cluster/one_node_slurm.py), not to a stand-in.

One Snakemake run covers a training rule of each family (SeTok's train_tokenizer, SemHiTok's
train_semantic_codebook, the MLLM's train_stage1 on a connector baseline), a prediction, two scoring jobs and a
table; its SeTok training job is cancelled with ``scancel`` once it has written a checkpoint, and the profile's
retries must resubmit it and resume. The same targets are then run locally (``--cores``), and every result must
equal the Slurm run's: the resumed ``model.pt`` included. What one node cannot show (8 nodes, ``srun`` across
nodes) stays with the stand-in Slurm of test_slurm_profile.py.

Skipped unless SETOK_REAL_SLURM=1 (set by ``make cluster-test``, which also installs slurm-wlm and munge): it needs
root and starts daemons.
"""
from __future__ import annotations

import json
import os
import re
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import torch
from one_node_slurm import OneNodeSlurm
from profile_tools import BIN, ROOT, clean_env, job_stats, write_small_node_profile

from evaluation import registry
from setok.resources import CPU_SCORING_GROUP, JOBS, REPORT_GROUP, REPORT_RULES, SCORING, SCORING_RULES
from setok.stages import STAGES

pytestmark = pytest.mark.skipif(os.environ.get("SETOK_REAL_SLURM") != "1",
                                reason="starts a real Slurm as root: run `make cluster-test`")

CONFIGS = ["config/paper.yaml", "config/ci.yaml", "tests/cluster/real_slurm.yaml"]
OVERRIDES = ["--config", "run_variants=[no_pe]"]  # the tokenizer table of one variant
TARGETS = ["reports/tables/tokenizer.md", "results/semhitok/semantic_codebook/model.pt",
           "results/mlp_connector/stage1/model.pt"]
MODELS = ["results/no_pe/tokenizer/model.pt", "results/semhitok/semantic_codebook/model.pt",
          "results/mlp_connector/stage1/model.pt"]
CANCELLED = ("train_tokenizer", "no_pe")  # the job cancelled mid-run: rule, variant
SITE = {"SBATCH_PARTITION": "cpu", "SETOK_GPU_PARTITION": "gpu"}
TIMEOUT = 1500  # seconds for each of the two runs


@dataclass
class ClusterRun:
    work: Path  # the Slurm run's working copy
    local: Path  # the local run's working copy
    output: str  # Snakemake's output of the Slurm run
    jobs: list[dict[str, str]]  # `scontrol show job` of every Slurm job, in submission order
    cancelled: str  # the Slurm job id cancelled mid-run
    local_output: str
    seconds: dict[str, float]


def copy_repository(dest: Path) -> Path:
    """The repository's tracked and untracked-but-not-ignored files, without results/ (a fresh clone's tree)."""
    dest.mkdir(parents=True)
    files = subprocess.run(["git", "ls-files", "-co", "--exclude-standard"], cwd=ROOT, capture_output=True,
                           text=True, check=True).stdout.split("\n")
    tar_in = subprocess.Popen(["tar", "-cf", "-", "-T", "-"], cwd=ROOT, stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE)
    tar_out = subprocess.Popen(["tar", "-xf", "-"], cwd=dest, stdin=tar_in.stdout)
    tar_in.stdin.write("\n".join(f for f in files if f and not f.startswith("results/")).encode())
    tar_in.stdin.close()
    assert tar_out.wait() == 0 and tar_in.wait() == 0
    return dest


def show_job(job_id: str, env: dict[str, str]) -> dict[str, str]:
    """``scontrol show job -o`` as {field: value}."""
    out = subprocess.run(["scontrol", "show", "job", "-o", job_id], env=env, capture_output=True, text=True,
                         check=True).stdout
    return dict(m.groups() for m in re.finditer(r"(\S+?)=(\S*)", out))


def slurm_jobs(env: dict[str, str]) -> list[dict[str, str]]:
    """Every job the cluster has seen (finished ones stay for MinJobAge), oldest first."""
    out = subprocess.run(["squeue", "--states=all", "--noheader", "--format=%i"], env=env, capture_output=True,
                         text=True, check=True).stdout
    return [show_job(i, env) for i in sorted(out.split(), key=int)]


def rule_of(job: dict[str, str]) -> str:
    """The rule of a job from the plugin's ``--comment rule_<name>[_wildcards_<values>]``."""
    return re.fullmatch(r"rule_(\w+?)(_wildcards_.*)?", job["Comment"]).group(1)


def cancel_after_checkpoint(work: Path, env: dict[str, str], proc: subprocess.Popen[str]) -> str:
    """Wait until the CANCELLED job has written its first checkpoint, then ``scancel`` it; returns its job id."""
    rule, variant = CANCELLED
    latest = work / "results" / variant / "tokenizer" / "checkpoints" / "latest"
    deadline = time.monotonic() + TIMEOUT
    while not latest.is_file():
        assert proc.poll() is None, "the Slurm run ended before the job to cancel wrote a checkpoint"
        assert time.monotonic() < deadline, f"no checkpoint at {latest} after {TIMEOUT} s"
        time.sleep(0.05)
    comment = f"rule_{rule}_wildcards_{variant}"
    running = subprocess.run(["squeue", "--noheader", "--states=RUNNING", "--format=%i %k"], env=env,
                             capture_output=True, text=True, check=True).stdout.split("\n")
    ids = [line.split()[0] for line in running if line.endswith(" " + comment)]
    assert len(ids) == 1, f"expected one running {comment} job, squeue says: {running}"
    subprocess.run(["scancel", ids[0]], env=env, check=True)
    return ids[0]


def snakemake_command(*extra: str) -> list[str]:
    return [str(BIN / "snakemake"), *TARGETS, "--configfile", *CONFIGS, *OVERRIDES, *extra]


def finish(proc: subprocess.Popen[str], log: Path) -> str:
    """Wait for ``proc`` (killed after TIMEOUT or on an error) and return its output; fails on a non-zero exit."""
    try:
        rc = proc.wait(timeout=TIMEOUT)
    finally:
        if proc.poll() is None:
            proc.kill()
    output = log.read_text()
    assert rc == 0, output[-6000:]
    return output


def start(command: list[str], cwd: Path, env: dict[str, str], log: Path) -> subprocess.Popen[str]:
    with open(log, "w") as out:  # the child keeps its own descriptor
        return subprocess.Popen(command, cwd=cwd, env=env, stdout=out, stderr=subprocess.STDOUT, text=True)


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> ClusterRun:
    root = tmp_path_factory.mktemp("real_slurm")
    work, local = copy_repository(root / "work"), copy_repository(root / "local")
    seconds: dict[str, float] = {}
    t0 = time.monotonic()
    # The local run goes alongside: the Slurm run spends much of its time waiting on the plugin's status checks.
    local_proc = start(snakemake_command("--cores", str(os.cpu_count() or 1)), local, clean_env(), root / "local.log")
    try:
        with OneNodeSlurm(root / "slurm") as slurm:
            env = slurm.env(clean_env(**SITE))
            # The node's CPUs and memory, halved per job so two one-CPU jobs run side by side; at most 30 min each.
            overlay = write_small_node_profile(
                root / "small_node", env, cpus=1, mem_mb=slurm.memory_mb // 2, gpus=slurm.gpus,
                extra={"slurm-status-command": "squeue",  # no slurmdbd, so no sacct
                       "slurm-init-seconds-before-status-checks": 1, "slurm-no-account": True})
            proc = start(snakemake_command("--profile", "profiles/slurm", "--profile", str(overlay)), work, env,
                         root / "slurm.log")
            try:
                cancelled = cancel_after_checkpoint(work, env, proc)
            except BaseException:
                proc.kill()
                raise
            output = finish(proc, root / "slurm.log")
            seconds["slurm"] = time.monotonic() - t0
            jobs = slurm_jobs(env)
        local_output = finish(local_proc, root / "local.log")
        seconds["local"] = time.monotonic() - t0
    finally:
        if local_proc.poll() is None:
            local_proc.kill()
    print(f"\nreal Slurm run {seconds['slurm']:.0f} s, local run beside it {seconds['local']:.0f} s")
    return ClusterRun(work=work, local=local, output=output, jobs=jobs, cancelled=cancelled,
                      local_output=local_output, seconds=seconds)


def local_rules(output: str) -> set[str]:
    return set(re.findall(r"^localrule (\w+):$", output, re.M))


def rules_of(job: dict[str, str]) -> set[str]:
    """The rules a Slurm job ran: its rule, or a group job's (the plugin's comment names a group job
    ``rule_<group id>_<its rules joined by _>``)."""
    name = rule_of(job)
    if name.startswith(REPORT_GROUP + "_"):
        return {r for r in REPORT_RULES if re.search(rf"(^|_){r}(_|$)", name.removeprefix(REPORT_GROUP + "_"))}
    if name.startswith(CPU_SCORING_GROUP + "_"):
        return {"score_benchmark"}
    return {name}


def gpus_wanted(job: dict[str, str]) -> int:
    """The GPUs a Slurm job asks by the one source: the stage table's cluster row (training), setok/resources.py
    (every other rule; a scoring job by its benchmark's scoring_needs_gpu), none for a group of CPU jobs."""
    rules = rules_of(job)
    if len(rules) > 1 or rule_of(job).startswith((REPORT_GROUP + "_", CPU_SCORING_GROUP + "_")):
        return 0
    (rule,) = rules
    if rule.startswith("train_"):
        return STAGES[rule.removeprefix("train_")].cluster.gpu
    if rule in SCORING_RULES:
        wildcards = re.fullmatch(r"rule_\w+?_wildcards_(.*)", job["Comment"]).group(1)
        benchmark = max((b for b in registry.names() if wildcards.endswith("_" + b)), key=len)
        return SCORING[registry.get(benchmark).scoring_needs_gpu].gpu
    return JOBS[rule].gpu


def test_every_job_ran_as_a_slurm_job_with_the_profiles_request(run: ClusterRun) -> None:
    # The rules the local run executed, less the submit host's own (localrules), are exactly the Slurm jobs' rules.
    executed = {r for r, n in job_stats(run.local_output).items() if r != "total" and n > 0}
    submitted = set().union(*(rules_of(j) for j in run.jobs))
    assert submitted == executed - local_rules(run.output), (submitted, executed)
    assert any(rule_of(j).startswith(REPORT_GROUP + "_") for j in run.jobs)  # the table ran in the reports group
    for job in run.jobs:
        gpus = min(gpus_wanted(job), 8)  # the small-node overlay caps at the node's 8 GPUs
        # a job asking a GPU goes to the GPU partition, every other one to the CPU partition
        assert job["Partition"] == (SITE["SETOK_GPU_PARTITION"] if gpus else SITE["SBATCH_PARTITION"]), job
        assert job["Requeue"] == "1", job  # slurm-requeue: true
        assert (job.get("TresPerJob") or "") == (f"gres:gpu:{gpus}" if gpus else ""), job
        assert job["NumNodes"] == "1", job  # multi-node geometry: the stand-in tests
    # both kinds of scoring job ran: rFID on the GPU partition, ImageNet top-1 on the CPU partition
    scoring = {j["Comment"].rsplit("_", 1)[-1]: j["Partition"] for j in run.jobs if rule_of(j) == "score_tokenizer"}
    assert scoring == {"fid": "gpu", "imagenet": "cpu"}, scoring
    training = [j for j in run.jobs if rule_of(j) == "train_tokenizer"]
    print("\n".join(" ".join(f"{k}={j[k]}" for k in ("JobId", "JobState", "Partition", "TresPerJob", "NumNodes",
                                                       "Requeue", "Comment")) for j in training))


def test_a_cancelled_training_job_is_resubmitted_and_resumes_from_its_checkpoint(run: ClusterRun) -> None:
    rule, variant = CANCELLED
    attempts = [j for j in run.jobs if j["Comment"] == f"rule_{rule}_wildcards_{variant}"]
    assert [(j["JobId"], j["JobState"]) for j in attempts] == [
        (run.cancelled, "CANCELLED"), (attempts[-1]["JobId"], "COMPLETED")], attempts
    train_log = (run.work / "logs" / variant / f"{rule}.log").read_text()
    assert re.search(r"resumed from step0*(\d+) at step \1", train_log), train_log[-3000:]


def weights(path: Path) -> dict[str, torch.Tensor]:
    return torch.load(path, map_location="cpu", weights_only=True)["weights"]


@pytest.mark.parametrize("model", MODELS)
def test_models_equal_the_local_runs(run: ClusterRun, model: str) -> None:
    """The resumed SeTok tokenizer and the other stages' weights are bit-identical to the uninterrupted local run."""
    ours, theirs = weights(run.work / model), weights(run.local / model)
    assert ours.keys() == theirs.keys()
    for k in ours:
        torch.testing.assert_close(ours[k], theirs[k], rtol=0, atol=0, msg=k)


def results(folder: Path) -> dict[str, Any]:
    return {p.relative_to(folder).as_posix(): json.loads(p.read_text())
            for p in sorted(folder.glob("results/*/eval/*.json"))}


def test_results_and_table_equal_the_local_runs(run: ClusterRun) -> None:
    ours, theirs = results(run.work), results(run.local)
    assert ours and ours.keys() == theirs.keys()
    assert ours == theirs
    table = "reports/tables/tokenizer.md"
    assert (run.work / table).read_text() == (run.local / table).read_text()


def test_a_failed_jobs_logs_are_where_docs_cluster_md_says(run: ClusterRun) -> None:
    rule, variant = CANCELLED
    slurm_log = run.work / ".snakemake" / "slurm_logs" / f"rule_{rule}" / variant / f"{run.cancelled}.log"
    assert slurm_log.is_file() and slurm_log.stat().st_size > 0
    # Snakemake names both logs in its error report: the rule's own and Slurm's.
    assert f"logs/{variant}/{rule}.log, {slurm_log}" in run.output
    docs = (ROOT / "docs" / "cluster.md").read_text()
    assert ".snakemake/slurm_logs/rule_<rule>/<wildcards>/<jobid>.log" in docs and "logs/<variant>/" in docs
