rule resolve_base_config:
    output:
        "results/config.yaml",
    params:
        text=base_config,
    log:
        "logs/resolve_base_config.log",
    run:
        from setok.io import write_text

        write_text(output[0], params.text)


rule prepare_eval_data:
    """Evaluation images at the FID resolution (rFID references), labels and class names (zero-shot top-1)."""
    input:
        "results/config.yaml",
    output:
        images=directory("results/data/{dataset}/images"),
        labels="results/data/{dataset}/labels.jsonl",
        classes="results/data/{dataset}/classes.json",
    log:
        "logs/prepare_eval_data/{dataset}.log",
    conda:
        ENV
    shell:
        "python -m setok.data.prepare --config {input} --dataset {wildcards.dataset} "
        "--out results/data/{wildcards.dataset} > {log} 2>&1"


rule prepare_fid_references:
    """rFID references at another resolution than the base evaluation (a variant's eval.fid_image_size)."""
    wildcard_constraints:
        size=r"\d+",
    input:
        "results/config.yaml",
    output:
        directory("results/data/{dataset}/fid{size}/images"),
    log:
        "logs/prepare_fid_references/{dataset}_{size}.log",
    conda:
        ENV
    shell:
        "python -m setok.data.prepare --config {input} --dataset {wildcards.dataset} --size {wildcards.size} "
        "--images-only --out results/data/{wildcards.dataset}/fid{wildcards.size} > {log} 2>&1"
