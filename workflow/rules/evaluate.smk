rule score_tokenizer:
    """One result JSON per variant x tokenizer benchmark: results/{variant}/eval/{benchmark}.json."""
    wildcard_constraints:
        benchmark="|".join(re.escape(b) for b in TOKENIZER_BENCHMARKS),
    input:
        unpack(score_inputs),
        model="results/{variant}/tokenizer/model.pt",
        # Written by the same prediction job: its `provenance` says what the evaluation set is (eval.dataset,
        # eval.limit), merged into the result's.
        tokens="results/{variant}/tokenizer/tokens.json",
    output:
        result="results/{variant}/eval/{benchmark}.json",
        samples="results/{variant}/eval/{benchmark}.samples.jsonl",
    params:
        bootstrap=BASE.eval.bootstrap,
        sha=variant_sha,
        device=score_device_flag,  # --device for a scorer that runs a model (FID's Inception), else nothing
    log:
        "logs/{variant}/score_{benchmark}.log",
    resources:
        **scoring_resources(),
    conda:
        ENV
    shell:
        "sha=$( [ -f results/{wildcards.variant}/config.yaml ] && "
        "python -m setok.config sha results/{wildcards.variant}/config.yaml || echo {params.sha} ); "
        "python -m evaluation score {wildcards.benchmark} --predictions {input.predictions} "
        "--annotations {input.annotations} --out {output.result} --variant {wildcards.variant} "
        "--checkpoint {input.model} --config-sha $sha --bootstrap {params.bootstrap} "
        "--provenance-from {input.tokens} {params.device} > {log} 2>&1"


rule score_benchmark:
    """One result JSON per variant x MLLM benchmark, from results/{variant}/predictions/ and official references."""
    wildcard_constraints:
        benchmark="|".join(re.escape(b) for b in MLLM_BENCHMARKS),
    input:
        unpack(benchmark_inputs),
    output:
        result="results/{variant}/eval/{benchmark}.json",
        samples="results/{variant}/eval/{benchmark}.samples.jsonl",
    params:
        flags=benchmark_flags,
        bootstrap=BASE.eval.bootstrap,
        sha=variant_sha,
        device=score_device_flag,  # --device for a scorer that runs a model (FID's Inception), else nothing
        checkpoint=checkpoint_flag,  # a reference variant: the public checkpoint's name
    log:
        "logs/{variant}/score_{benchmark}.log",
    group:
        cpu_scoring_group
    resources:
        **scoring_resources(),
    conda:
        ENV
    shell:
        # The Stage-II model that wrote the predictions is recorded when it exists (predictions placed by hand under
        # results/{variant}/predictions/ are scored too, with checkpoint null).
        "model=results/{wildcards.variant}/stage2/model.pt; "
        "sha=$( [ -f results/{wildcards.variant}/config.yaml ] && "
        "python -m setok.config sha results/{wildcards.variant}/config.yaml || echo {params.sha} ); "
        "python -m evaluation score {wildcards.benchmark} --predictions {input.predictions} {params.flags} "
        "--out {output.result} --variant {wildcards.variant} --config-sha $sha "
        '{params.checkpoint} $( [ -f "$model" ] && echo --checkpoint "$model" ) --bootstrap {params.bootstrap} '
        "{params.device} > {log} 2>&1"


# A reference variant's `ablation_<v>` is its benchmarks alone (it trains nothing); `validate_eval` runs them all.
for _v in VARIANTS:

    rule:
        name:
            f"ablation_{_v}"
        input:
            [] if _v in BASELINES or _v in REFERENCE_VARIANTS else tokenizer_results([_v]),
            [] if _v in BASELINES or _v in REFERENCE_VARIANTS else expand(
                "results/{variant}/tokenizer/tokens.json", variant=_v),
            mllm_results([_v]) if _v in MLLM_VARIANTS or _v not in SEMHITOK_VARIANTS else [],
