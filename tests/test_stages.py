"""The stage table (setok/stages.py): one order for the trainers, the config and the workflow's training rules."""
from __future__ import annotations

import subprocess
import sys

from setok.config import Config
from setok.stages import MLLM_STAGES, PATH_DEPENDENT_STAGES, SEMHITOK_STAGES, STAGES, tokenizer_stages


def test_the_table_lists_every_stage_in_training_order():
    assert list(STAGES) == ["tokenizer", "semantic_codebook", "pixel_codebook", "pixel_finetune", "pixel_decoder",
                            "stage1", "mask_decoder", "stage2"]
    assert SEMHITOK_STAGES == tokenizer_stages("semhitok") == ("semantic_codebook", "pixel_codebook",
                                                               "pixel_finetune", "pixel_decoder")
    assert tokenizer_stages("setok") == ("tokenizer",) and MLLM_STAGES == ("stage1", "mask_decoder", "stage2")
    for stage in STAGES.values():  # a stage starts from an earlier one, of its own family
        if stage.init is not None:
            assert list(STAGES).index(stage.init) < list(STAGES).index(stage.name)
            assert STAGES[stage.init].family == stage.family


def test_each_stage_has_its_config_section_and_output_folder():
    fields = Config.__dataclass_fields__
    for stage in STAGES.values():
        assert stage.config_key in fields, stage.name
    assert {s.folder for s in STAGES.values()} == {"tokenizer", "semantic_codebook", "pixel_codebook",
                                                   "pixel_finetune", "stage1", "stage1/mask_decoder", "stage2"}
    assert STAGES["pixel_decoder"].folder == STAGES["tokenizer"].folder == "tokenizer"
    assert PATH_DEPENDENT_STAGES == ("train_tokenizer", "train_stage1", "train_stage2")


def test_cluster_sizes_are_the_papers_64_gpus_for_stage1_and_stage2():
    for stage in STAGES.values():
        assert stage.cluster.gpu == 8 * stage.cluster.nodes and stage.local.gpu == 8 * stage.local.nodes
    assert STAGES["stage1"].cluster.nodes == STAGES["stage2"].cluster.nodes == 8
    assert all(STAGES[s].cluster.nodes == 1 for s in ("tokenizer", *SEMHITOK_STAGES, "mask_decoder"))


def test_the_table_imports_no_torch():
    code = "import sys, setok.stages; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"
