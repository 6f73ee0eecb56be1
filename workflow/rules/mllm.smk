# SeTokIM (Sec. 2.2): Stage-I pretraining -> mask decoder (end of Stage-I) -> Stage-II instruction tuning ->
# one prediction job per benchmark, written in the benchmark's official format for score_benchmark.


rule train_stage1:
    """Stage-I multimodal pretraining: captioning + text-to-image + text corpus at the 7:3 ratio (DeepSpeed)."""
    input:
        unpack(stage_inputs("stage1")),
    output:
        "results/{variant}/stage1/model.pt",
    params:
        flags=optional_flags,
    log:
        "logs/{variant}/train_stage1.log",
    threads: 2
    resources:
        nodes=1,
        gpu=8,
        mem_mb=512000,
        runtime=4320,
    conda:
        ENV
    shell:
        "python -m setok.launch --gpus $(( {resources.gpu} / {resources.nodes} )) --nodes {resources.nodes} -- python -m setok.train.mllm --stage stage1 --config {input.config} {params.flags} "
        "--out results/{wildcards.variant}/stage1 > {log} 2>&1"


rule train_mask_decoder:
    """End of Stage-I: the mask decoder alone on segmentation data, everything else frozen."""
    input:
        unpack(stage_inputs("mask_decoder")),
    output:
        "results/{variant}/stage1/mask_decoder/model.pt",
    params:
        flags=optional_flags,
    log:
        "logs/{variant}/train_mask_decoder.log",
    threads: 2
    resources:
        nodes=1,
        gpu=8,
        mem_mb=256000,
        runtime=240,
    conda:
        ENV
    shell:
        "python -m setok.launch --gpus $(( {resources.gpu} / {resources.nodes} )) --nodes {resources.nodes} -- python -m setok.train.mllm --stage mask_decoder --config {input.config} {params.flags} "
        "--out results/{wildcards.variant}/stage1/mask_decoder > {log} 2>&1"


rule train_stage2:
    """Stage-II instruction tuning with LoRA on the LLM (peft) over the instruction mixture."""
    input:
        unpack(stage_inputs("stage2")),
    output:
        "results/{variant}/stage2/model.pt",
    params:
        flags=optional_flags,
    log:
        "logs/{variant}/train_stage2.log",
    threads: 2
    resources:
        nodes=1,
        gpu=8,
        mem_mb=512000,
        runtime=2880,
    conda:
        ENV
    shell:
        "python -m setok.launch --gpus $(( {resources.gpu} / {resources.nodes} )) --nodes {resources.nodes} -- python -m setok.train.mllm --stage stage2 --config {input.config} {params.flags} "
        "--out results/{wildcards.variant}/stage2 > {log} 2>&1"


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
        gpu=1,
        mem_mb=64000,
        runtime=720,
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
        gpu=1,
        mem_mb=64000,
        runtime=720,
    conda:
        ENV
    shell:
        "python -m evaluation.predict.mllm --model {input.model} {params.flags} "
        "--config {input.config} --benchmark {params.benchmark} --out {output} > {log} 2>&1"
