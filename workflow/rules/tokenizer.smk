rule resolve_config:
    """The fully resolved config of a variant, written next to its outputs (docs/design.md §3); for a calibrated
    variant with calibrate_clustering's overlay merged in, so training and every later consumer of the tokenizer read
    the calibrated clustering values from it (docs/paper-notes.md C7)."""
    input:
        unpack(calibration_inputs),
    output:
        "results/{variant}/config.yaml",
    params:
        text=resolved_config,
    log:
        "logs/{variant}/resolve_config.log",
    run:
        from setok.calibration.overlay import apply_overlay
        from setok.io import write_text

        write_text(output[0], apply_overlay(params.text, input.overlay) if "overlay" in input.keys() else params.text)


rule resolve_calibration_config:
    """The variant's resolved config before calibration: what calibrate_clustering reads."""
    wildcard_constraints:
        variant=variant_regex(CALIBRATED_VARIANTS),
    output:
        "results/{variant}/calibration/config.yaml",
    params:
        text=resolved_config,
    log:
        "logs/{variant}/resolve_calibration_config.log",
    run:
        from setok.io import write_text

        write_text(output[0], params.text)


rule calibrate_clustering:
    """Algorithm 1's kernel_c, min_seed_score and beta (the paper gives none) chosen on the variant's initial vision
    features so the mean token count meets Table 5's (docs/paper-notes.md C7): an overlay for resolve_config and a
    report per grid setting. Deterministic (fixed seeds), so a rerun writes the same overlay and the same config_sha."""
    wildcard_constraints:
        variant=variant_regex(CALIBRATED_VARIANTS),
    input:
        config="results/{variant}/calibration/config.yaml",
        datasets=lambda w: dataset_checks(w.variant, "tokenizer"),
        weights=WEIGHTS,
    output:
        overlay="results/{variant}/calibration/clustering.yaml",
        report="results/{variant}/calibration/report.json",
    params:
        device=DEVICE_FLAG,
    log:
        "logs/{variant}/calibrate_clustering.log",
    threads: 8
    resources:
        **job_resources("calibrate_clustering"),
    conda:
        ENV
    shell:
        "python -m setok.calibrate_clustering --config {input.config} --out results/{wildcards.variant}/calibration "
        "{params.device} > {log} 2>&1"


rule tokenizer_predictions:
    """Reconstructions (for rFID), zero-shot class scores (top-1) and token counts on the evaluation set."""
    wildcard_constraints:
        variant=variant_regex(SETOK_VARIANTS),
    input:
        model="results/{variant}/tokenizer/model.pt",
        config="results/config.yaml",
        classes=f"results/data/{EVAL_DATASET}/classes.json",
        weights=WEIGHTS,
    output:
        recon=directory("results/{variant}/tokenizer/recon"),
        scores="results/{variant}/tokenizer/imagenet.predictions.jsonl",
        tokens="results/{variant}/tokenizer/tokens.json",
    params:
        device=DEVICE_FLAG,
    log:
        "logs/{variant}/tokenizer_predictions.log",
    resources:
        **job_resources("tokenizer_predictions"),
    conda:
        ENV
    shell:
        "python -m evaluation.predict.tokenizer --model {input.model} --config {input.config} "
        "--classes {input.classes} --out results/{wildcards.variant}/tokenizer {params.device} > {log} 2>&1"
