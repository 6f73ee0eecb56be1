rule resolve_config:
    """The fully resolved config of a variant, written next to its outputs (docs/design.md §3)."""
    output:
        "results/{variant}/config.yaml",
    params:
        text=resolved_config,
    log:
        "logs/{variant}/resolve_config.log",
    run:
        from setok.io import write_text

        write_text(output[0], params.text)


rule tokenizer_predictions:
    """Reconstructions (for rFID), zero-shot class scores (top-1) and token counts on the evaluation set."""
    wildcard_constraints:
        variant=variant_regex(SETOK_VARIANTS),
    input:
        model="results/{variant}/tokenizer/model.pt",
        config="results/config.yaml",
        classes=f"results/data/{EVAL_DATASET}/classes.json",
    output:
        recon=directory("results/{variant}/tokenizer/recon"),
        scores="results/{variant}/tokenizer/imagenet.predictions.jsonl",
        tokens="results/{variant}/tokenizer/tokens.json",
    log:
        "logs/{variant}/tokenizer_predictions.log",
    resources:
        gpu=1,
        mem_mb=64000,
        runtime=240,
    conda:
        ENV
    shell:
        "python -m evaluation.predict.tokenizer --model {input.model} --config {input.config} "
        "--classes {input.classes} --out results/{wildcards.variant}/tokenizer > {log} 2>&1"
