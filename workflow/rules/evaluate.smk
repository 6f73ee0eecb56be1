def score_inputs(wildcards):
    """Predictions and references of one tokenizer benchmark (DESIGN.md §6 formats)."""
    data = f"results/data/{EVAL_DATASET}"
    tok = f"results/{wildcards.variant}/tokenizer"
    return {
        "fid": {"predictions": f"{tok}/recon", "annotations": f"{data}/images"},
        "imagenet": {"predictions": f"{tok}/imagenet.predictions.jsonl", "annotations": f"{data}/labels.jsonl"},
    }[wildcards.benchmark]


rule score_tokenizer:
    """One result JSON per variant x tokenizer benchmark: results/{variant}/eval/{benchmark}.json."""
    input:
        unpack(score_inputs),
        model="results/{variant}/tokenizer/model.pt",
    output:
        result="results/{variant}/eval/{benchmark}.json",
        samples="results/{variant}/eval/{benchmark}.samples.jsonl",
    params:
        bootstrap=BASE.eval.bootstrap,
    log:
        "logs/{variant}/score_{benchmark}.log",
    resources:
        gpu=1,
        mem_mb=32000,
        runtime=120,
    shell:
        "{PY} -m evaluation score {wildcards.benchmark} --predictions {input.predictions} "
        "--annotations {input.annotations} --out {output.result} --variant {wildcards.variant} "
        "--checkpoint {input.model} --bootstrap {params.bootstrap} > {log} 2>&1"


for _v in VARIANTS:

    rule:
        name:
            f"ablation_{_v}"
        input:
            expand("results/{variant}/eval/{benchmark}.json", variant=_v, benchmark=TOKENIZER_BENCHMARKS),
            expand("results/{variant}/tokenizer/tokens.json", variant=_v),
