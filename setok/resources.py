"""What every workflow job outside training asks for: one table, read by the rules (``resources:``) and by
profiles/slurm (which only adds where a job goes: the GPU partition, the plugin's task geometry).

Training jobs are sized by their stage's rows of :mod:`setok.stages` (``local`` in the rules, ``cluster`` in the
profile). A scoring job's row depends on its benchmark: the rules pick ``SCORING[needs_gpu]`` per job from the
benchmark registry's ``scoring_needs_gpu`` (FID, CLIP-I / DINO / LPIPS, VQAScore run a model; answer matching,
counting and mask IoU are seconds of CPU). Light on purpose (no torch, no evaluation import): the profile's YTE
template imports it at Snakemake start-up.

Small CPU jobs are grouped into few Slurm submissions (docs/cluster.md §4): every CPU scoring job of one variant
in one job (``CPU_SCORING_GROUP``), every table, figure and the report in one job (``REPORT_GROUP``).
"""
from __future__ import annotations

from dataclasses import asdict, dataclass


@dataclass(frozen=True)
class JobResources:
    """One job's request on one node: ``gpu`` GPUs (0: a CPU job, sent to the CPU partition), ``mem_mb`` memory,
    ``runtime`` minutes (sbatch -t), ``cpus_per_task`` CPUs. No ``nodes``: Slurm gives one node to a one-task job,
    and Snakemake sums integer resources of the jobs a group runs side by side (four grouped CPU jobs would ask
    ``--nodes=4``)."""

    gpu: int
    mem_mb: int
    runtime: int
    cpus_per_task: int

    def as_resources(self) -> dict[str, int]:
        """The rule's ``resources:`` (Snakemake keywords)."""
        return asdict(self)


REPORT_RULES = ("tokenizer_table", "tokenizer_figures", "semhitok_table", "semhitok_figures", "mllm_table",
                "comparison_table", "make_tables", "ablation_figure", "training_figures", "calibration_report",
                "validation_table", "report")
# A one-GPU model job: 8 CPUs feed the data loader (and the image decoding of the predictions).
_ONE_GPU = dict(gpu=1, cpus_per_task=8)
# A CPU job: the command is one single-threaded Python process.
_CPU = dict(gpu=0, cpus_per_task=1)

JOBS: dict[str, JobResources] = {
    # before a SeTok train_tokenizer in hard / soft mode: the tokenizer's clustering on a calibration sample
    "calibrate_clustering": JobResources(**_ONE_GPU, mem_mb=64000, runtime=60),
    # the trained tokenizer over the evaluation set (tokens, reconstructions, scores)
    "tokenizer_predictions": JobResources(**_ONE_GPU, mem_mb=64000, runtime=240),
    "semhitok_predictions": JobResources(**_ONE_GPU, mem_mb=64000, runtime=240),
    # the MLLM answering one benchmark (a 7B LLM in bf16)
    "predict_file": JobResources(**_ONE_GPU, mem_mb=64000, runtime=720),
    "predict_folder": JobResources(**_ONE_GPU, mem_mb=64000, runtime=720),
    # one of a sharded benchmark's N prediction jobs (the merge is a local rule)
    "predict_shard": JobResources(**_ONE_GPU, mem_mb=64000, runtime=720),
    "model_cost": JobResources(**_ONE_GPU, mem_mb=64000, runtime=60),
    # evaluation images at the FID resolution, labels and class names
    "prepare_eval_data": JobResources(**_CPU, mem_mb=8000, runtime=60),
    "prepare_fid_references": JobResources(**_CPU, mem_mb=8000, runtime=60),
    # tables, figures and the HTML page: read result JSON, write markdown / LaTeX / PNG
    **{rule: JobResources(**_CPU, mem_mb=4000, runtime=10) for rule in REPORT_RULES},
}

# score_tokenizer / score_benchmark: SCORING[benchmark's scoring_needs_gpu].
SCORING: dict[bool, JobResources] = {
    True: JobResources(**_ONE_GPU, mem_mb=32000, runtime=120),
    False: JobResources(**_CPU, mem_mb=8000, runtime=30),
}
SCORING_RULES = ("score_tokenizer", "score_benchmark")

# Job groups (Snakemake `group:`): one Slurm submission runs every job of a group that is ready together.
# score_benchmark's CPU jobs of one variant: group f"{CPU_SCORING_GROUP}_{variant}" (profiles/slurm merges its
# unconnected jobs with group-components). score_tokenizer is not grouped: one CPU job per variant (imagenet),
# wanted by the tokenizer table long before the MLLM's predictions exist.
CPU_SCORING_GROUP = "cpu_scoring"
REPORT_GROUP = "reports"  # every rule of REPORT_RULES
# A group job runs its jobs side by side up to this many threads (profiles/slurm `cores`; each grouped job has one),
# the rest after them: Snakemake's layering, the group asks the sum of one layer's memory and CPUs and the sum of
# the layers' runtimes. Also the most threads any rule may have (calibrate_clustering's 8; Snakemake clips a job's
# threads to it).
GROUP_CORES = 8


def gpu_rules() -> list[str]:
    """The non-training rules that can ask a GPU (every scoring rule: per benchmark)."""
    return [rule for rule, job in JOBS.items() if job.gpu] + list(SCORING_RULES)
