rule tokenizer_table:
    """reports/tables/tokenizer.md and .tex: variant, #tokens, rFID, top-1, paper values and deltas."""
    input:
        results=tokenizer_results(SETOK_RUN_VARIANTS),
        tokens=expand("results/{variant}/tokenizer/tokens.json", variant=SETOK_RUN_VARIANTS),
        paper="evaluation/paper_numbers.yaml",
    output:
        md="reports/tables/tokenizer.md",
        tex="reports/tables/tokenizer.tex",
    params:
        variants=SETOK_RUN_VARIANTS,
    log:
        "logs/tokenizer_table.log",
    conda:
        ENV
    shell:
        "python -m evaluation.report.tokenizer_table --results results --variants {params.variants} "
        "--paper {input.paper} --md {output.md} --tex {output.tex} > {log} 2>&1"


rule tokenizer_figures:
    """Token-mask overlays (Figure 6), reconstructions (Figure 7) and token counts per variant (Table 5)."""
    input:
        tokens=expand("results/{variant}/tokenizer/tokens.json", variant=SETOK_RUN_VARIANTS),
        recon=expand("results/{variant}/tokenizer/recon", variant=SETOK_RUN_VARIANTS),
        images=f"results/data/{EVAL_DATASET}/images",
    output:
        expand("reports/figures/tokenizer/{name}.png", name=["token_masks", "reconstructions", "token_counts"]),
    params:
        variants=SETOK_RUN_VARIANTS,
    log:
        "logs/tokenizer_figures.log",
    conda:
        ENV
    shell:
        "python -m evaluation.report.figures --results results --images {input.images} --variants {params.variants} "
        "--out reports/figures/tokenizer > {log} 2>&1"


rule semhitok_table:
    """reports/tables/semhitok.md and .tex: per SemHiTok variant, codes per image, codebook size, usage and rFID."""
    input:
        results=tokenizer_results(SEMHITOK_RUN_VARIANTS),
        tokens=expand("results/{variant}/tokenizer/tokens.json", variant=SEMHITOK_RUN_VARIANTS),
        paper="evaluation/paper_numbers.yaml",
    output:
        md="reports/tables/semhitok.md",
        tex="reports/tables/semhitok.tex",
    params:
        variants=SEMHITOK_RUN_VARIANTS,
    log:
        "logs/semhitok_table.log",
    conda:
        ENV
    shell:
        "python -m evaluation.report.tokenizer_table --family semhitok --results results "
        "--variants {params.variants} --paper {input.paper} --md {output.md} --tex {output.tex} > {log} 2>&1"


rule semhitok_figures:
    """Codebook usage (rank-frequency, Table 9's usage), semantic code maps (Figure 5) and reconstructions."""
    input:
        codes=expand("results/{variant}/tokenizer/codes.npz", variant=SEMHITOK_RUN_VARIANTS),
        recon=expand("results/{variant}/tokenizer/recon", variant=SEMHITOK_RUN_VARIANTS),
        images=f"results/data/{EVAL_DATASET}/images",
    output:
        expand("reports/figures/semhitok/{name}.png", name=["codebook_usage", "code_maps", "reconstructions"]),
    params:
        variants=SEMHITOK_RUN_VARIANTS,
    log:
        "logs/semhitok_figures.log",
    conda:
        ENV
    shell:
        "python -m evaluation.report.semhitok_figures --results results --images {input.images} "
        "--variants {params.variants} --out reports/figures/semhitok > {log} 2>&1"


rule mllm_table:
    """reports/tables/setokim.md and .tex: every SeTokIM benchmark's headline metric per variant, beside the paper."""
    input:
        results=mllm_results(MLLM_VARIANTS),
        paper="evaluation/paper_numbers.yaml",
    output:
        md="reports/tables/setokim.md",
        tex="reports/tables/setokim.tex",
    params:
        variants=MLLM_VARIANTS,
        benchmarks=MLLM_BENCHMARKS,
    log:
        "logs/mllm_table.log",
    conda:
        ENV
    shell:
        "python -m evaluation.report.mllm_table --results results --variants {params.variants} "
        "--benchmarks {params.benchmarks:q} --paper {input.paper} --md {output.md} --tex {output.tex} > {log} 2>&1"


rule comparison_table:
    """reports/tables/comparison.md and .tex: one MLLM recipe over SeTok, SemHiTok and a patch-level connector."""
    input:
        comparison_inputs,
    output:
        md="reports/tables/comparison.md",
        tex="reports/tables/comparison.tex",
    params:
        variants=COMPARISON_VARIANTS,
        benchmarks=comparison_benchmarks(),
    log:
        "logs/comparison_table.log",
    conda:
        ENV
    shell:
        "python -m evaluation.report.comparison_table --results results --variants {params.variants} "
        "--benchmarks {params.benchmarks:q} --md {output.md} --tex {output.tex} > {log} 2>&1"


rule smoke:
    """`make smoke`: the configured variants end to end, then print the regenerated tables."""
    input:
        table="reports/tables/tokenizer.md",
        semhitok="reports/tables/semhitok.md",
        mllm="reports/tables/setokim.md",
        comparison="reports/tables/comparison.md",
        figures="reports/figures/tokenizer/token_masks.png",
        semhitok_figures="reports/figures/semhitok/codebook_usage.png",
    log:
        "logs/smoke.log",
    conda:
        ENV
    shell:
        "cat {input.table} {input.semhitok} {input.mllm} {input.comparison} | tee {log}; "
        "echo 'figures: reports/figures/tokenizer/ reports/figures/semhitok/' | tee -a {log}"


rule tables:
    """Regenerate every table from the results already computed."""
    input:
        "reports/tables/tokenizer.md",
        "reports/tables/semhitok.md",
        "reports/tables/setokim.md",
        "reports/tables/comparison.md",


rule figures:
    input:
        "reports/figures/tokenizer/token_masks.png",
        "reports/figures/semhitok/codebook_usage.png",
