# SeTokIM (Sec. 2.2): Stage-I pretraining -> mask decoder (end of Stage-I) -> Stage-II instruction tuning (each a
# train_<stage> rule, train.smk) ->
# one prediction job per benchmark, written in the benchmark's official format for score_benchmark; or, for a benchmark
# with `shards: N` > 1, N predict_shard jobs and one local merge job writing the same file or folder (docs/cluster.md).


# The merge reads N small shard folders and writes one file: no GPU, seconds; the submitting host runs it.
localrules:
    merge_prediction_file,
    merge_prediction_folder,


rule predict_file:
    """Predictions of one benchmark written as one file (answers, captions, masks)."""
    wildcard_constraints:
        prediction="|".join(re.escape(p) for p in PREDICTION_FILES),
    input:
        unpack(prediction_inputs),
    output:
        "results/{variant}/predictions/{prediction}",
    params:
        benchmark=prediction_name,
        flags=prediction_flags,
        device=DEVICE_FLAG,
    log:
        "logs/{variant}/predict_{prediction}.log",
    resources:
        **job_resources("predict_file"),
    conda:
        ENV
    shell:
        "python -m evaluation.predict.mllm {params.flags} "
        "--config {input.config} --benchmark {params.benchmark} --out {output} {params.device} > {log} 2>&1"


rule predict_folder:
    """Predictions of one benchmark written as a folder (generated / edited images, POPE and MME files)."""
    wildcard_constraints:
        prediction="|".join(re.escape(p) for p in PREDICTION_FOLDERS),
    input:
        unpack(prediction_inputs),
    output:
        directory("results/{variant}/predictions/{prediction}"),
    params:
        benchmark=prediction_name,
        flags=prediction_flags,
        device=DEVICE_FLAG,
    log:
        "logs/{variant}/predict_{prediction}.log",
    resources:
        **job_resources("predict_folder"),
    conda:
        ENV
    shell:
        "python -m evaluation.predict.mllm {params.flags} "
        "--config {input.config} --benchmark {params.benchmark} --out {output} {params.device} > {log} 2>&1"


rule predict_shard:
    """One shard of a sharded benchmark's predictions (benchmarks.<name>.shards > 1): every N-th batch of the batches
    an unsharded run forms, written by query index into a shard folder (evaluation.predict.shards)."""
    wildcard_constraints:
        prediction="|".join(re.escape(p) for p in SHARDED_PREDICTIONS) or "(?!)",
        shard=r"\d+",
    input:
        unpack(prediction_inputs),
    output:
        directory("results/{variant}/prediction_shards/{prediction}/{shard}"),
    params:
        benchmark=prediction_name,
        flags=prediction_flags,
        num_shards=prediction_shards,
        device=DEVICE_FLAG,
    log:
        "logs/{variant}/predict_{prediction}.shard{shard}.log",
    resources:
        **job_resources("predict_shard"),
    conda:
        ENV
    shell:
        "python -m evaluation.predict.mllm {params.flags} "
        "--config {input.config} --benchmark {params.benchmark} "
        "--shard {wildcards.shard} --num-shards {params.num_shards} --out {output} {params.device} > {log} 2>&1"


rule merge_prediction_file:
    """The shards of a sharded benchmark merged into the predictions file an unsharded predict_file writes."""
    wildcard_constraints:
        prediction="|".join(re.escape(p) for p in SHARDED_FILES) or "(?!)",
    input:
        unpack(merge_inputs),
    output:
        "results/{variant}/predictions/{prediction}",
    params:
        benchmark=prediction_name,
    log:
        "logs/{variant}/merge_{prediction}.log",
    conda:
        ENV
    shell:
        "python -m evaluation.predict.merge_shards --config {input.config} --benchmark {params.benchmark} "
        "--out {output} {input.shards} > {log} 2>&1"


rule merge_prediction_folder:
    """The shards of a sharded benchmark merged into the predictions folder an unsharded predict_folder writes."""
    wildcard_constraints:
        prediction="|".join(re.escape(p) for p in SHARDED_FOLDERS) or "(?!)",
    input:
        unpack(merge_inputs),
    output:
        directory("results/{variant}/predictions/{prediction}"),
    params:
        benchmark=prediction_name,
    log:
        "logs/{variant}/merge_{prediction}.log",
    conda:
        ENV
    shell:
        "python -m evaluation.predict.merge_shards --config {input.config} --benchmark {params.benchmark} "
        "--out {output} {input.shards} > {log} 2>&1"
