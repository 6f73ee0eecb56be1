# SeTokIM (Sec. 2.2): Stage-I pretraining -> mask decoder (end of Stage-I) -> Stage-II instruction tuning (each a
# train_<stage> rule, train.smk) ->
# one prediction job per benchmark, written in the benchmark's official format for score_benchmark.


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
        flags=optional_flags,
    log:
        "logs/{variant}/predict_{prediction}.log",
    resources:
        **job_resources("predict_file"),
    conda:
        ENV
    shell:
        "python -m evaluation.predict.mllm --model {input.model} {params.flags} "
        "--config {input.config} --benchmark {params.benchmark} --out {output} > {log} 2>&1"


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
        flags=optional_flags,
    log:
        "logs/{variant}/predict_{prediction}.log",
    resources:
        **job_resources("predict_folder"),
    conda:
        ENV
    shell:
        "python -m evaluation.predict.mllm --model {input.model} {params.flags} "
        "--config {input.config} --benchmark {params.benchmark} --out {output} > {log} 2>&1"
