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
    group:
        REPORT_GROUP
    resources:
        **job_resources("tokenizer_table"),
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
    group:
        REPORT_GROUP
    resources:
        **job_resources("tokenizer_figures"),
    conda:
        ENV
    shell:
        "python -m evaluation.report.tokenizer_figures --results results --images {input.images} --variants {params.variants} "
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
    group:
        REPORT_GROUP
    resources:
        **job_resources("semhitok_table"),
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
    group:
        REPORT_GROUP
    resources:
        **job_resources("semhitok_figures"),
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
    group:
        REPORT_GROUP
    resources:
        **job_resources("mllm_table"),
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
    group:
        REPORT_GROUP
    resources:
        **job_resources("comparison_table"),
    conda:
        ENV
    shell:
        "python -m evaluation.report.comparison_table --results results --variants {params.variants} "
        "--benchmarks {params.benchmarks:q} --md {output.md} --tex {output.tex} > {log} 2>&1"


rule model_cost:
    """Visual tokens and TFLOPs per image on the trained MLLM, by torch's FLOP counter (Tables 5 and 13)."""
    wildcard_constraints:
        variant=variant_regex(MLLM_VARIANTS),
    input:
        unpack(lambda w: {"model": f"results/{w.variant}/stage2/model.pt", "images": f"results/data/{EVAL_DATASET}/images",
                          **({} if w.variant in BASELINES else {"tokenizer": f"results/{w.variant}/tokenizer/model.pt"})}),
        weights=WEIGHTS,
    output:
        "results/{variant}/cost.json",
    params:
        flags=optional_flags,
        device=DEVICE_FLAG,
    log:
        "logs/{variant}/model_cost.log",
    resources:
        **job_resources("model_cost"),
    conda:
        ENV
    shell:
        "python -m evaluation.predict.cost --model {input.model} {params.flags} --images {input.images} "
        "--out {output} {params.device} > {log} 2>&1"


rule make_tables:
    """One paper table (reports/tables.yaml): the paper's numbers, ours ± CI and Δ, from exactly its result files."""
    wildcard_constraints:
        table=variant_regex(TABLE_SPECS),
    input:
        results=lambda w: table_results(w.table),
        specs="reports/tables.yaml",
        paper="evaluation/paper_numbers.yaml",
    output:
        md="reports/tables/{table}.md",
        tex="reports/tables/{table}.tex",
    params:
        variants=lambda w: table_variants(w.table),
    log:
        "logs/tables/{table}.log",
    group:
        REPORT_GROUP
    resources:
        **job_resources("make_tables"),
    conda:
        ENV
    shell:
        "python -m evaluation.report.paper_table --specs {input.specs} --table {wildcards.table} "
        "--paper {input.paper} --results results --variants {params.variants} --md {output.md} --tex {output.tex} "
        "> {log} 2>&1"


for _t in TABLE_SPECS:

    rule:
        name:
            table_name(_t)
        input:
            f"reports/tables/{_t}.md",
            f"reports/tables/{_t}.tex",


rule ablation_figure:
    """A paper table as bars: ours with 95% CIs per variant and metric, the paper's value marked."""
    wildcard_constraints:
        table=variant_regex(ABLATION_TABLES),
    input:
        results=lambda w: table_results(w.table),
        paper="evaluation/paper_numbers.yaml",
    output:
        "reports/figures/ablations/{table}.png",
    params:
        variants=lambda w: table_variants(w.table),
        metrics=lambda w: table_metrics(w.table),
        section=lambda w: TABLE_SPECS[w.table].paper,
        number=lambda w: TABLE_SPECS[w.table].table,
        title=lambda w: caption(TABLE_SPECS[w.table]),
    log:
        "logs/figures/ablation_{table}.log",
    group:
        REPORT_GROUP
    resources:
        **job_resources("ablation_figure"),
    conda:
        ENV
    shell:
        "python -m evaluation.report.ablation_figures --results results --variants {params.variants} "
        "--metrics {params.metrics:q} --paper {input.paper} --paper-section {params.section} --paper-table {params.number} "
        "--title {params.title:q} "
        "--out {output} > {log} 2>&1"


rule training_figures:
    """Loss curves of every training stage of every variant this config runs (from train_log.jsonl)."""
    input:
        trained_models(SHOWN_VARIANTS),
    output:
        directory("reports/figures/training"),
    params:
        variants=SHOWN_VARIANTS,
    log:
        "logs/figures/training.log",
    group:
        REPORT_GROUP
    resources:
        **job_resources("training_figures"),
    conda:
        ENV
    shell:
        "python -m evaluation.report.training_figures --results results --variants {params.variants} "
        "--out {output} > {log} 2>&1"


# The calibrated variants this config shows (their clustering values came from calibrate_clustering).
CALIBRATION_VARIANTS = [v for v in SHOWN_VARIANTS if v in CALIBRATED_VARIANTS]


rule calibration_report:
    """reports/tables/calibration.md and the token-count histograms: the clustering values each calibrated variant
    trained with, the token counts they give and how those follow the image content (docs/paper-notes.md C7)."""
    input:
        expand("results/{variant}/calibration/report.json", variant=CALIBRATION_VARIANTS),
    output:
        md="reports/tables/calibration.md",
        figure="reports/figures/calibration/token_histograms.png",
    params:
        variants=CALIBRATION_VARIANTS,
    log:
        "logs/calibration_report.log",
    group:
        REPORT_GROUP
    resources:
        **job_resources("calibration_report"),
    conda:
        ENV
    shell:
        "python -m evaluation.report.calibration --results results --variants {params.variants} "
        "--md {output.md} --figure {output.figure} > {log} 2>&1"


rule validation_table:
    """reports/tables/validation.md and .tex: each reference variant (a public checkpoint, no training) scored through
    this harness's prompts, predictors and scorers, beside its published numbers, with a verdict per benchmark."""
    input:
        results=mllm_results(REFERENCE_VARIANTS),
        configs=expand("results/{variant}/config.yaml", variant=REFERENCE_VARIANTS),
        references="evaluation/references.yaml",
        paper="evaluation/paper_numbers.yaml",
    output:
        md="reports/tables/validation.md",
        tex="reports/tables/validation.tex",
    params:
        variants=REFERENCE_VARIANTS,
    log:
        "logs/validation_table.log",
    group:
        REPORT_GROUP
    resources:
        **job_resources("validation_table"),
    conda:
        ENV
    shell:
        "python -m evaluation.report.validation_table --results results --variants {params.variants} "
        "--references {input.references} --paper {input.paper} --md {output.md} --tex {output.tex} > {log} 2>&1"


# Prints the finished table on the submitting host (a cat, no job to submit).
localrules:
    validate_eval,


rule validate_eval:
    """Is the evaluation pipeline trustworthy? Every reference variant predicted and scored on each of its benchmarks
    (no training job), then the validation table (published / ours with its interval / Δ / verdict)."""
    input:
        "reports/tables/validation.md",
    log:
        "logs/validate_eval.log",
    conda:
        ENV
    shell:
        "cat {input} | tee {log}"


VALIDATION_TABLES = ["reports/tables/validation.md"] if REFERENCE_VARIANTS else []
REPORT_TABLES = [*(f"reports/tables/{t}.md" for t in TABLE_SPECS), "reports/tables/tokenizer.md",
                 "reports/tables/semhitok.md", "reports/tables/setokim.md", "reports/tables/comparison.md",
                 *(["reports/tables/calibration.md"] if CALIBRATION_VARIANTS else []), *VALIDATION_TABLES]
REPORT_FIGURES = [*(f"reports/figures/tokenizer/{n}.png" for n in ("token_masks", "reconstructions", "token_counts")),
                  *(f"reports/figures/semhitok/{n}.png" for n in ("codebook_usage", "code_maps", "reconstructions")),
                  *(f"reports/figures/ablations/{t}.png" for t in ABLATION_TABLES),
                  *(["reports/figures/calibration/token_histograms.png"] if CALIBRATION_VARIANTS else [])]


rule report:
    """reports/index.html: every table and figure, each result's config and revision, and what differs from the
    papers (docs/paper-notes.md). A static page."""
    input:
        tables=REPORT_TABLES,
        figures=REPORT_FIGURES,
        training="reports/figures/training",
        configs=expand("results/{variant}/config.yaml", variant=[*SHOWN_VARIANTS, *REFERENCE_VARIANTS]),
        notes="docs/paper-notes.md",
    output:
        "reports/index.html",
    params:
        variants=[*SHOWN_VARIANTS, *REFERENCE_VARIANTS],
    log:
        "logs/report.log",
    group:
        REPORT_GROUP
    resources:
        **job_resources("report"),
    conda:
        ENV
    shell:
        "python -m evaluation.report.html --tables {input.tables} "
        "--figures {input.figures} $(ls {input.training}/*.png) --results results --variants {params.variants} "
        "--notes {input.notes} --title 'SeTok and SemHiTok: paper vs. this harness' --out {output} > {log} 2>&1"


rule smoke:
    """`make smoke`: the configured variants end to end, then print the regenerated tables and the report's path."""
    input:
        table="reports/tables/tokenizer.md",
        semhitok="reports/tables/semhitok.md",
        mllm="reports/tables/setokim.md",
        comparison="reports/tables/comparison.md",
        ablation="reports/tables/setok_table6.md",
        validation=VALIDATION_TABLES,
        report="reports/index.html",
    log:
        "logs/smoke.log",
    conda:
        ENV
    shell:
        "cat {input.table} {input.ablation} {input.semhitok} {input.mllm} {input.comparison} {input.validation} "
        "| tee {log}; "
        "echo 'every paper table: reports/tables/ (snakemake tables); figures: reports/figures/' | tee -a {log}; "
        "echo \"report: $(realpath {input.report})\" | tee -a {log}"


rule tables:
    """Regenerate every table from the results already computed: every paper table of reports/tables.yaml and the
    harness's summaries (all variants side by side)."""
    input:
        expand("reports/tables/{table}.md", table=TABLE_SPECS),
        "reports/tables/tokenizer.md",
        "reports/tables/semhitok.md",
        "reports/tables/setokim.md",
        "reports/tables/comparison.md",
        ["reports/tables/calibration.md"] if CALIBRATION_VARIANTS else [],
        VALIDATION_TABLES,


rule figures:
    input:
        REPORT_FIGURES,
        "reports/figures/training",
