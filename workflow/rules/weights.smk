# Pretrained weights (docs/cluster.md "Pretrained weights"): fetched once, on the submit host, before any GPU job.
# Every GPU job runs offline (HF_HUB_OFFLINE=1, set in common.smk) and waits for results/weights.json (the helpers
# training_inputs, prediction_inputs, ... of common.smk add it); a missing artifact fails the job with one line naming
# it and this rule. Caches: HF_HOME (hub: open_clip, timm, transformers), TORCH_HOME (torchvision URLs, the FID
# Inception), both from the environment or the profile.

localrules:
    fetch_weights,


rule fetch_weights:
    """Download every pretrained artifact of the config's variants and scorers into the caches; record each with its
    revision, sha256 and cache path. Online on purpose (the one rule that is): it overrides the offline switches."""
    input:
        "results/config.yaml",
    output:
        "results/weights.json",
    log:
        "logs/fetch_weights.log",
    conda:
        ENV
    shell:
        "HF_HUB_OFFLINE=0 TRANSFORMERS_OFFLINE=0 python -m evaluation.weights fetch --config {input} --out {output} "
        "> {log} 2>&1 || {{ tail -n 1 {log} >&2; exit 2; }}"
