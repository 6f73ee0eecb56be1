# SemHiTok (its Sec. 4.1 stage table): semantic codebook -> pixel codebook (ImageNet) -> pixel fine-tune (COYO) ->
# enhanced pixel decoder, whose model.pt is the variant's tokenizer; then reconstructions and codebook usage for
# rFID (score_tokenizer). A stage configured with steps 0 passes its input model through.


rule train_semantic_codebook:
    """Sec. 3.1: projection + EMA codebook + semantic decoder, distilled from the frozen SigLIP (Eq. 1-4)."""
    wildcard_constraints:
        variant=variant_regex(SEMHITOK_VARIANTS),
    input:
        unpack(semhitok_init("semantic_codebook")),
    output:
        "results/{variant}/semantic_codebook/model.pt",
    log:
        "logs/{variant}/train_semantic_codebook.log",
    threads: 2
    resources:
        nodes=1,
        gpu=8,
        mem_mb=256000,
        runtime=2880,
    conda:
        ENV
    shell:
        "python -m setok.launch --gpus $(( {resources.gpu} / {resources.nodes} )) --nodes {resources.nodes} -- python -m setok.train.semhitok --stage semantic_codebook --config {input.config} "
        "--out results/{wildcards.variant}/semantic_codebook > {log} 2>&1"


rule train_pixel_codebook:
    """Sec. 3.2: pixel encoder + SGHC + pixel decoder by Eq. (7) with the PatchGAN; the semantic branch frozen."""
    wildcard_constraints:
        variant=variant_regex(SEMHITOK_VARIANTS),
    input:
        unpack(semhitok_init("pixel_codebook")),
    output:
        "results/{variant}/pixel_codebook/model.pt",
    log:
        "logs/{variant}/train_pixel_codebook.log",
    threads: 2
    resources:
        nodes=1,
        gpu=8,
        mem_mb=256000,
        runtime=2880,
    conda:
        ENV
    shell:
        "python -m setok.launch --gpus $(( {resources.gpu} / {resources.nodes} )) --nodes {resources.nodes} -- python -m setok.train.semhitok --stage pixel_codebook --config {input.config} --init {input.init} "
        "--out results/{wildcards.variant}/pixel_codebook > {log} 2>&1"


rule train_pixel_finetune:
    """The second pixel-reconstruction stage: the same modules fine-tuned on the COYO subset."""
    wildcard_constraints:
        variant=variant_regex(SEMHITOK_VARIANTS),
    input:
        unpack(semhitok_init("pixel_finetune")),
    output:
        "results/{variant}/pixel_finetune/model.pt",
    log:
        "logs/{variant}/train_pixel_finetune.log",
    threads: 2
    resources:
        nodes=1,
        gpu=8,
        mem_mb=256000,
        runtime=2880,
    conda:
        ENV
    shell:
        "python -m setok.launch --gpus $(( {resources.gpu} / {resources.nodes} )) --nodes {resources.nodes} -- python -m setok.train.semhitok --stage pixel_finetune --config {input.config} --init {input.init} "
        "--out results/{wildcards.variant}/pixel_finetune > {log} 2>&1"


rule train_pixel_decoder:
    """"Enhance decoder": a larger pixel decoder trained alone; its model.pt is the variant's tokenizer."""
    wildcard_constraints:
        variant=variant_regex(SEMHITOK_VARIANTS),
    input:
        unpack(semhitok_init("pixel_decoder")),
    output:
        "results/{variant}/tokenizer/model.pt",
    log:
        "logs/{variant}/train_pixel_decoder.log",
    threads: 2
    resources:
        nodes=1,
        gpu=8,
        mem_mb=256000,
        runtime=2880,
    conda:
        ENV
    shell:
        "python -m setok.launch --gpus $(( {resources.gpu} / {resources.nodes} )) --nodes {resources.nodes} -- python -m setok.train.semhitok --stage pixel_decoder --config {input.config} --init {input.init} "
        "--out results/{wildcards.variant}/tokenizer > {log} 2>&1"


rule semhitok_predictions:
    """Reconstructions (for rFID), tokens per image and codebook usage (Tables 2, 7, 9) on the evaluation set."""
    wildcard_constraints:
        variant=variant_regex(SEMHITOK_VARIANTS),
    input:
        model="results/{variant}/tokenizer/model.pt",
        config="results/config.yaml",
    output:
        recon=directory("results/{variant}/tokenizer/recon"),
        tokens="results/{variant}/tokenizer/tokens.json",
        codes="results/{variant}/tokenizer/codes.npz",
    params:
        size=fid_size,
    log:
        "logs/{variant}/semhitok_predictions.log",
    resources:
        gpu=1,
        mem_mb=64000,
        runtime=240,
    conda:
        ENV
    shell:
        "python -m evaluation.predict.semhitok --model {input.model} --config {input.config} "
        "--fid-size {params.size} --out results/{wildcards.variant}/tokenizer > {log} 2>&1"
