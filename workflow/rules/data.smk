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


# Run on the submitting host, never submitted: the dataset checks (before any GPU job) and the rules that only write
# a resolved config (an sbatch each would cost more than the work).
localrules:
    prepare_data,
    resolve_base_config,
    resolve_config,
    resolve_calibration_config,


rule prepare_data:
    """Check one training dataset before anything reads it: its official layout under resources/ and, when a
    SHA256SUMS file sits beside it, its checksums. A local rule (the submit host runs it first); on a problem the
    one-line error (dataset, expected path, where to download it) is printed as well as logged."""
    wildcard_constraints:
        dataset=variant_regex(DATASETS),
    input:
        "results/config.yaml",
    output:
        "results/data/checked/{dataset}.json",
    log:
        "logs/data/prepare_data_{dataset}.log",
    conda:
        ENV
    shell:
        "python -m setok.data.checks --config {input} --dataset {wildcards.dataset} --out {output} > {log} 2>&1 "
        "|| {{ tail -n 1 {log} >&2; exit 2; }}"


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
    resources:
        **job_resources("prepare_eval_data"),
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
    resources:
        **job_resources("prepare_fid_references"),
    conda:
        ENV
    shell:
        "python -m setok.data.prepare --config {input} --dataset {wildcards.dataset} --size {wildcards.size} "
        "--images-only --out results/data/{wildcards.dataset}/fid{wildcards.size} > {log} 2>&1"
