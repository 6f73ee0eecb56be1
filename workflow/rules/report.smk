rule tokenizer_table:
    """reports/tables/tokenizer.md and .tex: variant, #tokens, rFID, top-1, paper values and deltas."""
    input:
        results=expand(
            "results/{variant}/eval/{benchmark}.json", variant=RUN_VARIANTS, benchmark=TOKENIZER_BENCHMARKS
        ),
        tokens=expand("results/{variant}/tokenizer/tokens.json", variant=RUN_VARIANTS),
        paper="evaluation/paper_numbers.yaml",
    output:
        md="reports/tables/tokenizer.md",
        tex="reports/tables/tokenizer.tex",
    params:
        variants=RUN_VARIANTS,
    log:
        "logs/tokenizer_table.log",
    conda:
        ENV
    shell:
        "python -m evaluation.report.tokenizer_table --results results --variants {params.variants} "
        "--paper {input.paper} --md {output.md} --tex {output.tex} > {log} 2>&1"


rule smoke:
    """`make smoke`: the configured variants end to end, then print the regenerated table."""
    input:
        "reports/tables/tokenizer.md",
    log:
        "logs/smoke.log",
    conda:
        ENV
    shell:
        "cat {input} | tee {log}"


rule tables:
    """Regenerate every table from the results already computed."""
    input:
        "reports/tables/tokenizer.md",
