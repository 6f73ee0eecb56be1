# SemHiTok (its Sec. 4.1 stage table): semantic codebook -> pixel codebook (ImageNet) -> pixel fine-tune (COYO) ->
# enhanced pixel decoder, whose model.pt is the variant's tokenizer (each stage a train_<stage> rule, train.smk);
# then reconstructions and codebook usage for rFID (score_tokenizer). A stage configured with steps 0 passes its input
# model through.


rule semhitok_predictions:
    """Reconstructions (for rFID), tokens per image and codebook usage (Tables 2, 7, 9) on the evaluation set."""
    wildcard_constraints:
        variant=variant_regex(SEMHITOK_VARIANTS),
    input:
        model="results/{variant}/tokenizer/model.pt",
        config="results/config.yaml",
        weights=WEIGHTS,
    output:
        recon=directory("results/{variant}/tokenizer/recon"),
        tokens="results/{variant}/tokenizer/tokens.json",
        codes="results/{variant}/tokenizer/codes.npz",
    params:
        size=fid_size,
        device=DEVICE_FLAG,
    log:
        "logs/{variant}/semhitok_predictions.log",
    resources:
        **job_resources("semhitok_predictions"),
    conda:
        ENV
    shell:
        "python -m evaluation.predict.semhitok --model {input.model} --config {input.config} "
        "--fid-size {params.size} --out results/{wildcards.variant}/tokenizer {params.device} > {log} 2>&1"
