# Every training stage of setok/stages.py, in its order, is one rule train_<stage> (SeTok: train_tokenizer; SemHiTok's
# four stages; the MLLM's stage1, mask_decoder, stage2): its command, inputs, output folder, log, threads and resources
# come from the stage table. On DeepSpeed; a rerun resumes from results/{variant}/<folder>/checkpoints. A rule per
# stage rather than one rule with a {stage} wildcard: the log is named by the stage, and results/{variant}/tokenizer
# is written by two stages (SeTok's tokenizer, SemHiTok's pixel_decoder), so the output path cannot name the stage.
for stage in STAGES.values():

    rule:
        name:
            f"train_{stage.name}"
        wildcard_constraints:
            variant=training_variants(stage.name),
        input:
            unpack(training_inputs(stage.name)),
        output:
            f"results/{{variant}}/{stage.folder}/model.pt",
        params:
            command=training_command(stage.name),
            out=f"results/{{variant}}/{stage.folder}",
            launch=LAUNCH_FLAGS,  # --allow-cpu where compute.allow_cpu (docs/cluster.md)
        log:
            f"logs/{{variant}}/train_{stage.name}.log",
        threads: stage.local.threads
        resources:
            nodes=stage.local.nodes,
            gpu=stage.local.gpu,
            mem_mb=stage.local.mem_mb,
            runtime=stage.local.runtime,
        conda:
            ENV
        # No f-string in the command: Snakemake formats it when the job runs, when `stage` is the loop's last.
        shell:
            "python -m setok.launch --gpus $(( {resources.gpu} / {resources.nodes} )) --nodes {resources.nodes} "
            "{params.launch} -- "
            "python -m {params.command} --out {params.out} > {log} 2>&1"
