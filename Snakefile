# The only Snakefile (docs/design.md §2, §7): data -> tokenizer -> evaluation -> tables.
#   snakemake --cores 8                                  full reproduction on this machine (config/paper.yaml)
#   snakemake --configfile config/ci.yaml smoke          the CPU smoke run (`make smoke`)
#   snakemake ablation_no_pe                             one variant end to end
#   snakemake --profile profiles/slurm                   the cluster
from snakemake.utils import min_version

min_version("9.0")


configfile: "config/paper.yaml"


include: "workflow/rules/common.smk"
include: "workflow/rules/data.smk"
include: "workflow/rules/weights.smk"
include: "workflow/rules/train.smk"
include: "workflow/rules/tokenizer.smk"
include: "workflow/rules/semhitok.smk"
include: "workflow/rules/mllm.smk"
include: "workflow/rules/evaluate.smk"
include: "workflow/rules/report.smk"


rule all:
    """Everything: every table, figure and the HTML report (which depends on all of them)."""
    default_target: True
    input:
        rules.tables.input,
        "reports/index.html",
