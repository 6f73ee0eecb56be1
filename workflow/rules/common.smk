# Helpers and validation only; no rules here.
import os
import re
from pathlib import Path

from snakemake.exceptions import WorkflowError
from snakemake.utils import validate

from evaluation import registry
from setok.config import ConfigError, config_sha, dump, resolve, validate_all
from setok.stages import STAGES, start_of, takes_stage_flag, trains
from setok.weights import OFFLINE_ENV

# Every job runs offline: pretrained weights come from the cache fetch_weights filled on the submit host (its own
# command switches downloads back on). Set here, so local jobs and jobs on a cluster node (which parse this file
# again) inherit it; a missing artifact then fails with one line naming it and fetch_weights (setok.weights).
os.environ.update(OFFLINE_ENV)
# results/weights.json: written by fetch_weights; an input of every job that loads pretrained weights.
# ancient(): a gate, not a trigger (a rewritten record after a config edit must not rerun every trained model).
WEIGHTS = ancient("results/weights.json")

# Fail before any job is planned: first the generated JSON schema, then the typed loader (every variant).
validate(config, "../schemas/config.schema.yaml")
try:
    BASE = validate_all(config)
except ConfigError as e:
    raise WorkflowError(f"config error: {e}") from None

VARIANTS = sorted(BASE.variants)
RUN_VARIANTS = list(BASE.run_variants)
TOKENIZER_BENCHMARKS = list(BASE.eval.benchmarks)
MLLM_VARIANTS = list(BASE.mllm_variants)
# A variant may score its own benchmark list (SemHiTok's MLLM: SEED, MMB, MMMU, MJHQ ...); the DAG knows their union.
MLLM_BENCHMARKS = list(dict.fromkeys([*BASE.mllm_benchmarks,
                                      *(b for v in VARIANTS for b in resolve(config, v).mllm_benchmarks)]))
# results/{variant}/predictions/<name> -> benchmark; a name with a suffix is a file, the others are folders.
PREDICTION_BENCHMARK = {BASE.benchmarks[b].predictions: b for b in MLLM_BENCHMARKS}
# benchmarks.<name>.shards > 1: predict_shard jobs + a local merge write the predictions (docs/cluster.md); the others
# keep one predict_file / predict_folder job.
PREDICTION_SHARDS = {p: BASE.benchmarks[b].shards for p, b in PREDICTION_BENCHMARK.items()}
SHARDED_PREDICTIONS = [p for p, n in PREDICTION_SHARDS.items() if n > 1]
PREDICTION_FILES = [p for p in PREDICTION_BENCHMARK if "." in p and p not in SHARDED_PREDICTIONS]
PREDICTION_FOLDERS = [p for p in PREDICTION_BENCHMARK if "." not in p and p not in SHARDED_PREDICTIONS]
SHARDED_FILES = [p for p in SHARDED_PREDICTIONS if "." in p]
SHARDED_FOLDERS = [p for p in SHARDED_PREDICTIONS if "." not in p]
# Benchmarks whose answers are images or masks (each benchmark's class declares its output): the Table 13 connector
# baselines read images only and skip them.
GENERATIVE_BENCHMARKS = {b for b in MLLM_BENCHMARKS if b in registry.names() and registry.get(b).generative}
BASELINES = {v for v in VARIANTS if resolve(config, v).mllm.connector.kind != "setok"}
# Public checkpoints run through the evaluation pipeline with no training (config `reference_variants`, the
# `reference` section of each; `snakemake validate_eval`): prediction and scoring jobs only.
REFERENCE_VARIANTS = list(BASE.reference_variants)
# The tokenizer axis: SemHiTok variants train through semhitok.smk, the others through train_tokenizer (SeTok).
TOKENIZER_KIND = {v: resolve(config, v).tokenizer.kind for v in VARIANTS}  # setok or semhitok
SEMHITOK_VARIANTS = [v for v in VARIANTS if TOKENIZER_KIND[v] == "semhitok"]
SETOK_VARIANTS = [v for v in VARIANTS if v not in SEMHITOK_VARIANTS]
SETOK_RUN_VARIANTS = [v for v in RUN_VARIANTS if v in SETOK_VARIANTS]
SEMHITOK_RUN_VARIANTS = [v for v in RUN_VARIANTS if v in SEMHITOK_VARIANTS]
# SeTok variants whose clustering values come from calibrate_clustering (hard or soft mode, tokenizer.calibration.enabled;
# not the connector baselines, which never run a SeTok tokenizer): results/{variant}/config.yaml waits for it.
CALIBRATED_VARIANTS = [v for v in SETOK_VARIANTS
                       if v not in BASELINES and v not in REFERENCE_VARIANTS and resolve(config, v).tokenizer.calibrates]
# Every benchmark a tokenizer can be scored on (a variant picks its own with eval.benchmarks).
TOKENIZER_BENCHMARKS = sorted({b for v in VARIANTS for b in resolve(config, v).eval.benchmarks} | set(
    TOKENIZER_BENCHMARKS))


def tokenizer_benchmarks(variant):
    """The tokenizer benchmarks of one variant (its eval.benchmarks: SemHiTok is scored on rFID alone)."""
    return list(resolve(config, variant).eval.benchmarks)


def tokenizer_results(variants):
    """results/{variant}/eval/{benchmark}.json of every tokenizer benchmark of each variant."""
    return [f"results/{v}/eval/{b}.json" for v in variants for b in tokenizer_benchmarks(v)]


def variant_regex(variants):
    """A wildcard constraint matching exactly these variant names (one that matches nothing when empty)."""
    return "|".join(re.escape(v) for v in variants) or "(?!)"


DATASETS = sorted(BASE.datasets)


def dataset_checks(variant, stage):
    """The prepare_data records of the datasets ``train_<stage>`` of ``variant`` reads: every training job waits for
    its datasets' layout (and checksum) check, so a missing download fails before any GPU job is submitted."""
    sources = getattr(resolve(config, variant), STAGES[stage].config_key).sources
    return [f"results/data/checked/{d}.json" for d in sources]


def training_variants(name):
    """The variants that train stage ``name`` (a wildcard constraint): a tokenizer stage those of its tokenizer kind,
    an MLLM stage every variant (the workflow's own constraint)."""
    family = STAGES[name].family
    if family == "setok":
        return variant_regex(SETOK_VARIANTS)
    if family == "semhitok":
        return variant_regex(SEMHITOK_VARIANTS)
    return "|".join(re.escape(v) for v in VARIANTS)


def training_inputs(stage):
    """Inputs of a training stage: the resolved config, its datasets' checks, the trained tokenizer (MLLM stages, not
    for connector baselines) and the model of the previous stage the variant runs."""

    def inputs(wildcards):
        v = wildcards.variant
        files = {"config": f"results/{v}/config.yaml", "datasets": dataset_checks(v, stage)}
        if STAGES[stage].reads_tokenizer and v not in BASELINES:
            files["tokenizer"] = f"results/{v}/tokenizer/model.pt"
        init = start_of(stage, tokenizer_kind=TOKENIZER_KIND[v], connector_baseline=v in BASELINES)
        if init is not None:
            files["init"] = f"results/{v}/{STAGES[init].folder}/model.pt"
        files["weights"] = WEIGHTS
        return files

    return inputs


def training_command(stage):
    """The trainer of a stage and its arguments: ``--stage`` (a trainer of several stages), --config, --tokenizer,
    --init (the job's inputs)."""
    words = [STAGES[stage].trainer, *([f"--stage {stage}"] if takes_stage_flag(stage) else [])]

    def command(wildcards, input):
        return " ".join([*words, f"--config {input.config}", optional_flags(wildcards, input)]).rstrip()

    return command


# ------------------------------------------------------------------------- GPUs asked are GPUs used (docs/cluster.md)
# compute.allow_cpu (config/paper.yaml: false; config/ci.yaml: true) is the only way a job runs on the CPU: training
# rules pass --allow-cpu to setok.launch (which still fails when a node shows some GPUs but fewer than asked), every
# other job that runs a model passes --device explicitly: cuda, or cpu where the config allows it (CI: CPU machines;
# a GPU workstation running the CI config computes on the CPU too, so its numbers match CI's).
ALLOW_CPU = BASE.compute.allow_cpu
LAUNCH_FLAGS = "--allow-cpu" if ALLOW_CPU else ""
DEVICE = "cpu" if ALLOW_CPU else "cuda"
DEVICE_FLAG = f"--device {DEVICE}"


def score_device_flag(wildcards):
    """``--device cuda|cpu`` for a scorer that runs a model (the registry's ``scoring_needs_gpu``, which also sizes the
    job: setok/resources.py SCORING; every such scorer takes ``--device``, tests/evaluation/test_eval_registry.py),
    else nothing."""
    b = wildcards.benchmark
    return DEVICE_FLAG if b in registry.names() and registry.get(b).scoring_needs_gpu else ""


def variant_benchmarks(variant):
    """The MLLM benchmarks a variant is scored on: its mllm_benchmarks (connector baselines: understanding only)."""
    own = list(resolve(config, variant).mllm_benchmarks)
    if variant in BASELINES:
        return [b for b in own if b not in GENERATIVE_BENCHMARKS]
    return own


COMPARISON_VARIANTS = list(BASE.comparison_variants)


def comparison_benchmarks():
    """The MLLM benchmarks every comparison variant is scored on (the rows of reports/tables/comparison.md)."""
    lists = [variant_benchmarks(v) for v in COMPARISON_VARIANTS]
    return [b for b in lists[0] if all(b in other for other in lists[1:])] if lists else []


def comparison_inputs(wildcards):
    """Result files of the comparison table: configs, tokens per image, tokenizer rFID and the shared benchmarks."""
    files = [f"results/{v}/config.yaml" for v in COMPARISON_VARIANTS]
    for v in COMPARISON_VARIANTS:
        if v not in BASELINES:
            files += [f"results/{v}/tokenizer/tokens.json", f"results/{v}/eval/fid.json"]
        files += [f"results/{v}/eval/{b}.json" for b in comparison_benchmarks()]
    return files


def mllm_results(variants):
    """results/{variant}/eval/{benchmark}.json of every MLLM benchmark each variant is scored on."""
    return [f"results/{v}/eval/{b}.json" for v in variants for b in variant_benchmarks(v)]
EVAL_DATASET = BASE.eval.dataset
ENV = "../../environment.yml"  # the conda environment every rule runs in (`--use-conda`)


wildcard_constraints:
    variant="|".join(re.escape(v) for v in VARIANTS),
    dataset="|".join(re.escape(d) for d in BASE.datasets),
    benchmark="|".join(re.escape(b) for b in [*TOKENIZER_BENCHMARKS, *MLLM_BENCHMARKS]),


def resolved_config(wildcards):
    """YAML of the fully resolved config of one variant (a param, so a config change reruns the jobs)."""
    return dump(resolve(config, wildcards.variant))


def calibration_inputs(wildcards):
    """The calibration overlay results/{variant}/config.yaml merges in (calibrated variants), else nothing."""
    if wildcards.variant in CALIBRATED_VARIANTS:
        return {"overlay": f"results/{wildcards.variant}/calibration/clustering.yaml"}
    return {}


def variant_sha(wildcards):
    """Content hash of a variant's config as the config gives it (before calibration). A scoring job records the hash
    of results/{variant}/config.yaml, the config the model was trained with (a calibrated variant's includes its
    calibration, paper-notes C7: `python -m setok.config sha`), and this one only when that file is absent
    (predictions placed by hand)."""
    return config_sha(resolve(config, wildcards.variant))


def base_config(wildcards):
    """YAML of the base config (datasets, evaluation settings) without any variant applied."""
    return dump(BASE)


def fid_size(wildcards):
    """The resolution a variant's reconstructions are compared at (its eval.fid_image_size; SemHiTok-384: 384)."""
    return resolve(config, wildcards.variant).eval.fid_image_size


def scorer_weights(benchmark):
    """{"weights": results/weights.json} when scoring ``benchmark`` loads a pretrained model (FID's Inception, the
    editing metrics' CLIP / DINO / LPIPS, a VQAScore grader: evaluation.weights), else nothing."""
    from evaluation.weights import benchmark_artifacts

    return {"weights": WEIGHTS} if benchmark_artifacts(BASE, benchmark) else {}


def score_inputs(wildcards):
    """Predictions and references of one tokenizer benchmark (docs/design.md §5: the scoring CLI reads official formats)."""
    data = f"results/data/{EVAL_DATASET}"
    tok = f"results/{wildcards.variant}/tokenizer"
    size = fid_size(wildcards)
    references = f"{data}/images" if size == BASE.eval.fid_image_size else f"{data}/fid{size}/images"
    files = {
        "fid": {"predictions": f"{tok}/recon", "annotations": references},
        "imagenet": {"predictions": f"{tok}/imagenet.predictions.jsonl", "annotations": f"{data}/labels.jsonl"},
    }[wildcards.benchmark]
    return {**files, **scorer_weights(wildcards.benchmark)}


def benchmark_inputs(wildcards):
    """Predictions of one variant and the official reference files of one benchmark (config `benchmarks`)."""
    b = BASE.benchmarks[wildcards.benchmark]
    files = {"predictions": f"results/{wildcards.variant}/predictions/{b.predictions}"}
    files.update({k: getattr(b, k) for k in ("annotations", "questions") if getattr(b, k)})
    return {**files, **scorer_weights(wildcards.benchmark)}


def benchmark_references(wildcards, input):
    """The reference files to score with: the configured ones, or under the benchmark's ``limit`` the subset the
    prediction job wrote beside its predictions (``<predictions>.references/``, named by the task itself)."""
    b = BASE.benchmarks[wildcards.benchmark]
    configured = {k: input[k] for k in ("annotations", "questions") if k in input.keys()}
    if b.limit is None:
        return configured
    from evaluation.tasks import build_task

    return {k: str(v) for k, v in build_task(wildcards.benchmark, b).references(Path(input.predictions)).items()}


def benchmark_flags(wildcards, input):
    """The CLI flags of a benchmark: its references, under a ``limit`` the subset record the prediction job writes
    beside them (so the result's provenance says "kept of N queries"), then its configured options."""
    flags = [f"--{k} {v}" for k, v in benchmark_references(wildcards, input).items()]
    b = BASE.benchmarks[wildcards.benchmark]
    if b.limit is not None:
        from evaluation.tasks import build_task

        record = build_task(wildcards.benchmark, b).provenance_record(Path(input.predictions))
        flags.append(f"--provenance-from {record}")
    for key, value in BASE.benchmarks[wildcards.benchmark].options.items():
        flag = f"--{key.replace('_', '-')}"
        if value is True:
            flags.append(flag)
        elif value is not False and value is not None:
            values = value if isinstance(value, list) else [value]
            flags.append(" ".join([flag, *(str(v) for v in values)]))
    return " ".join(flags)


# --------------------------------------------------------------------------------------------- SeTokIM (mllm.smk)


def input_flags(*keys):
    """A params function: ``--<key> <path>`` for each of ``keys`` that is among the job's inputs."""

    def flags(wildcards, input):
        return " ".join(f"--{k} {input[k]}" for k in keys if k in input.keys())

    return flags


optional_flags = input_flags("tokenizer", "init")  # training and cost jobs: the tokenizer, the previous stage's model
# prediction jobs: the Stage-II model and the tokenizer (a reference variant has neither)
prediction_flags = input_flags("model", "tokenizer")


def checkpoint_flag(wildcards):
    """``--checkpoint <hub name>`` for a reference variant's scoring job (the public checkpoint its predictions come
    from; ``random:<name>`` for CI's random stand-in), else nothing (the Stage-II model is recorded when it exists)."""
    if wildcards.variant not in REFERENCE_VARIANTS:
        return ""
    ref = resolve(config, wildcards.variant).reference
    return f"--checkpoint {ref.name}" if ref.source == "pretrained" else f"--checkpoint random:{ref.name}"


def prediction_name(wildcards):
    """The benchmark whose prediction file or folder is results/{variant}/predictions/{prediction}."""
    return PREDICTION_BENCHMARK[wildcards.prediction]


def prediction_inputs(wildcards):
    """The Stage-II model, the tokenizer (neither for a reference variant: its config names the public checkpoint),
    the resolved config and the benchmark's official input files."""
    b = BASE.benchmarks[PREDICTION_BENCHMARK[wildcards.prediction]]
    files = {"config": f"results/{wildcards.variant}/config.yaml"}
    if wildcards.variant not in REFERENCE_VARIANTS:
        files["model"] = f"results/{wildcards.variant}/stage2/model.pt"
    if wildcards.variant not in BASELINES and wildcards.variant not in REFERENCE_VARIANTS:
        files["tokenizer"] = f"results/{wildcards.variant}/tokenizer/model.pt"
    files.update({k: getattr(b, k) for k in ("annotations", "questions", "images", "inputs") if getattr(b, k)})
    files["weights"] = WEIGHTS
    return files


def prediction_shards(wildcards):
    """How many shards the predictions results/{variant}/predictions/{prediction} are split into."""
    return PREDICTION_SHARDS[wildcards.prediction]


def shard_folders(wildcards):
    """The shard folders of a sharded prediction, in shard order (the merge's input)."""
    return [f"results/{wildcards.variant}/prediction_shards/{wildcards.prediction}/{i}"
            for i in range(PREDICTION_SHARDS[wildcards.prediction])]


def merge_inputs(wildcards):
    """A merge's inputs: the shard folders, the resolved config and the benchmark's official files (the merge
    rebuilds the task's query list to check the shards and writes through the task's writer)."""
    files = {k: v for k, v in prediction_inputs(wildcards).items() if k not in ("model", "tokenizer")}
    return {**files, "shards": shard_folders(wildcards)}


# ------------------------------------------------------------------------------------------ paper tables (report)
from evaluation.report.paper_table import caption  # noqa: E402
from evaluation.report.table_specs import load_specs, result_file  # noqa: E402

# Read beside the Snakefile, so a run with another working directory (-d) still parses (the rule inputs stay
# relative: `make_tables` needs the specs in the working directory, as every rule needs its inputs).
TABLE_SPECS = load_specs(f"{workflow.basedir}/reports/tables.yaml")
# The variants this config trains: their results fill the "ours" columns; other rows of a table read "—".
SHOWN_VARIANTS = list(dict.fromkeys([*RUN_VARIANTS, *MLLM_VARIANTS]))
TOKENIZER_SIDE = {"tokens", *TOKENIZER_BENCHMARKS}


def produced(variant, key):
    """The file of column ``key`` (benchmark.metric) that this config's DAG produces for ``variant``, or None."""
    benchmark = key.split(".", 1)[0]
    if variant not in SHOWN_VARIANTS or benchmark == "info":
        return None
    if benchmark in TOKENIZER_SIDE:
        trained = variant not in BASELINES and (benchmark == "tokens" or benchmark in tokenizer_benchmarks(variant))
        return str(result_file("results", variant, key)) if trained else None
    if variant not in MLLM_VARIANTS:
        return None
    if benchmark == "cost" or benchmark in variant_benchmarks(variant):
        return str(result_file("results", variant, key))
    return None


def table_variants(table):
    """The variants of a table's rows whose results this config produces (the table's --variants)."""
    return [v for v in TABLE_SPECS[table].variants if v in SHOWN_VARIANTS]


def table_results(table):
    """Every result file a paper table reads (its rule depends on exactly these)."""
    spec = TABLE_SPECS[table]
    files = (produced(r.variant, c.key) for r in spec.rows if r.variant for c in spec.columns)
    return sorted({f for f in files if f})


def table_name(table):
    """setok_table6 -> table_setok_6 (the target that regenerates one paper table)."""
    paper, number = table.split("_table", 1)
    return f"table_{paper}_{number}"


def table_metrics(table):
    """The measured columns of a table (benchmark.metric), for its ablation chart."""
    return [c.key for c in TABLE_SPECS[table].columns if c.kind == "metric"]


# A paper table gets a bar chart (ours ± CI beside the paper) when this config runs two or more of its variants.
ABLATION_TABLES = [t for t in TABLE_SPECS if len(table_variants(t)) >= 2]


def trained_models(variants):
    """The last model each variant trains (its Stage-II model, else its tokenizer): the training logs are complete
    once these exist."""
    return [f"results/{v}/stage2/model.pt" if v in MLLM_VARIANTS else f"results/{v}/tokenizer/model.pt"
            for v in variants]


# ------------------------------------------------------------------------------------------- job resources
# What each job asks for comes from one table, setok/resources.py (training: setok/stages.py); profiles/slurm reads
# the same table and adds only where a job goes. tests/cluster/test_slurm_profile.py plans the paper DAG with and
# without the profile and fails where the two disagree.
from setok.resources import CPU_SCORING_GROUP, JOBS, REPORT_GROUP, SCORING


def job_resources(rule):
    """The ``resources:`` of a non-training, non-scoring rule: its row of setok/resources.py JOBS."""
    return JOBS[rule].as_resources()


def scoring_needs_gpu(benchmark):
    """Whether scoring ``benchmark`` runs a model (the registry's scoring_needs_gpu); an unregistered one does."""
    return benchmark not in registry.names() or registry.get(benchmark).scoring_needs_gpu


def _scoring_resource(name):
    def resource(wildcards):
        return getattr(SCORING[scoring_needs_gpu(wildcards.benchmark)], name)

    resource.__name__ = f"scoring_{name}"
    return resource


def scoring_resources():
    """The ``resources:`` of score_tokenizer / score_benchmark, per job: setok/resources.py SCORING[True] (one GPU)
    for a benchmark whose scorer runs a model, SCORING[False] (CPU) for the others."""
    return {name: _scoring_resource(name) for name in SCORING[True].as_resources()}


def cpu_scoring_group(wildcards):
    """score_benchmark's job group: f"cpu_scoring_{variant}" for a CPU scorer (one Slurm job runs every CPU
    scoring job of a variant), none for a GPU scorer. Recorded as an instance of the group `cpu_scoring`, as
    Snakemake does for a group name with wildcards, so profiles/slurm's `group-components: cpu_scoring=N` merges
    the variant's otherwise unconnected scoring jobs."""
    if scoring_needs_gpu(wildcards.benchmark):
        return None
    group = f"{CPU_SCORING_GROUP}_{wildcards.variant}"
    workflow.parent_groupids[group] = CPU_SCORING_GROUP
    return group
