"""The config loader: variants as deltas, unknown keys and wrong types rejected with their key path."""
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from setok.config import ConfigError, dump, json_schema, load_config, resolve, schema_yaml, validate_all

ROOT = Path(__file__).resolve().parents[1]
PAPER, CI = ROOT / "config/paper.yaml", ROOT / "config/ci.yaml"
PAPER_VARIANTS = {"hard_cluster", "soft_cluster", "fixed_8", "fixed_32", "fixed_64", "fixed_256", "no_contrastive",
                  "no_pe", "no_inter", "no_inner", "no_merger"}


def raw(*paths: Path) -> dict:
    out: dict = {}
    from setok.config import deep_merge

    for p in paths:
        out = deep_merge(out, yaml.safe_load(p.read_text()))
    return out


def test_paper_config_has_the_paper_settings_and_every_table_variant():
    cfg = load_config(PAPER)
    t = cfg.tokenizer
    assert t.backbone.model_name == "ViT-SO400M-14-SigLIP-384" and t.backbone.image_size == 384
    assert (t.merger.inner_layers, t.merger.inter_layers, t.merger.dim) == (12, 8, 512)
    assert t.detokenizer.layers == 12
    assert (t.loss.rec_weight, t.loss.contrastive_weight) == (1.0, 1.0)
    # L_rec: the official code's VQGAN objective (paper-notes M3)
    assert (t.loss.objective, t.loss.rec, t.loss.perceptual_net, t.loss.adaptive_weight) == ("vqgan", "l1", "vgg", True)
    assert (t.loss.disc_start, t.loss.disc_layers, t.loss.disc_channels) == (5000, 2, 64)
    assert t.clustering.mode == "hard"
    assert PAPER_VARIANTS <= set(cfg.variants)
    assert set(cfg.train_tokenizer.sources) == {"imagenet", "openimages"}
    validate_all(raw(PAPER))
    validate_all(raw(PAPER, CI))


@pytest.mark.parametrize("variant, path, value", [
    ("soft_cluster", ("clustering", "mode"), "soft"),
    ("fixed_64", ("clustering", "num_clusters"), 64),
    ("no_contrastive", ("loss", "contrastive_weight"), 0.0),
    ("no_pe", ("merger", "position_embedding"), "none"),
    ("no_inter", ("merger", "inter_layers"), 0),
    ("no_inner", ("merger", "inner_layers"), 0),
    ("no_merger", ("merger", "kind"), "average"),
])
def test_variants_are_deltas_over_the_base(variant, path, value):
    cfg = load_config([PAPER, CI], variant)
    section = getattr(cfg.tokenizer, path[0])
    assert getattr(section, path[1]) == value
    assert cfg.name == variant
    base = load_config([PAPER, CI], "hard_cluster")
    assert cfg.tokenizer.merger.dim == base.tokenizer.merger.dim == 32  # the CI overlay survives the delta


def test_resolved_config_round_trips(tmp_path):
    cfg = load_config([PAPER, CI], "no_pe")
    f = tmp_path / "c.yaml"
    f.write_text(dump(cfg))
    assert load_config(f) == cfg


@pytest.mark.parametrize("delta, message", [
    ({"tokenizer": {"merger": {"layerz": 3}}}, r"tokenizer\.merger\.layerz: unknown key"),
    ({"tokenizer": {"merger": {"inner_layers": "12"}}}, r"tokenizer\.merger\.inner_layers: expected an integer"),
    ({"tokenizer": {"clustering": {"mode": "medium"}}}, r"tokenizer\.clustering\.mode: 'medium' is not one of"),
    ({"train_tokenizer": {"lr": True}}, r"train_tokenizer\.lr: expected a number"),
    ({"tokenizer": {"loss": {"prompt_templates": [1]}}}, r"tokenizer\.loss\.prompt_templates\[0\]: expected a string"),
    ({"variants": {"bad": {"tokenizer": {"merger": {"dims": 1}}}}}, r"variants\.bad\.tokenizer\.merger\.dims: unknown"),
    ({"run_variants": ["nope"]}, r"run_variants: 'nope' is not a key of variants"),
    ({"train_stage2": {"zero_stage": 4}}, r"train_stage2\.zero_stage: must be 0, 1, 2 or 3"),
    ({"train_tokenizer": {"zero_stage": 3}}, r"train_tokenizer\.zero_stage: 3 needs every rank to run the same"),
    ({"train_stage1": {"zero_stage": 2}}, r"train_stage1\.zero_stage: 2 needs every rank to run the same modules"),
    ({"train_stage2": {"zero_stage": 3}}, r"train_stage2\.zero_stage: 3 .* take different paths"),
    ({"train_tokenizer": {"zero_stage": 2}}, r"train_tokenizer\.zero_stage: 2 .* use 1"),
    ({"train_pixel_codebook": {"zero_stage": 3}}, r"train_pixel_codebook\.zero_stage: 3 is not checked"),
    # each section's own check, with the key path of the section it sits at
    ({"tokenizer": {"clustering": {"mode": "fixed"}}},
     r"^tokenizer\.clustering\.num_clusters: required when mode is 'fixed'$"),
    ({"tokenizer": {"clustering": {"max_tokens": 0}}}, r"^tokenizer\.clustering\.max_tokens: must be >= 1$"),
    ({"tokenizer": {"loss": {"objective": "gan"}}}, r"tokenizer\.loss\.objective: 'gan' is not one of"),
    ({"tokenizer": {"loss": {"disc_start": -1}}}, r"^tokenizer\.loss\.disc_start: must be >= 0, got -1$"),
    ({"tokenizer": {"loss": {"disc_weight": -0.5}}}, r"^tokenizer\.loss\.disc_weight: must be >= 0, got -0\.5$"),
    ({"tokenizer": {"loss": {"disc_layers": 0}}}, r"^tokenizer\.loss\.disc_layers: must be >= 1, got 0$"),
    ({"tokenizer": {"semhitok": {"semantic": {"vq": {"decay": 1.0}}}}},
     r"^tokenizer\.semhitok\.semantic\.vq\.decay: must be in \(0, 1\), got 1\.0$"),
    ({"tokenizer": {"semhitok": {"pixel": {"sub_codebook_size": 0}}}},
     r"^tokenizer\.semhitok\.pixel\.sub_codebook_size: must be >= 1$"),
    ({"tokenizer": {"semhitok": {"pixel": {"enhanced_decoder": {"heads": 7}}}}},
     r"^tokenizer\.semhitok\.pixel\.enhanced_decoder\.dim: 1024 is not divisible by heads 7$"),
    ({"train_pixel_finetune": {"batch_size": 3, "micro_batch_size": 2}},
     r"^train_pixel_finetune\.batch_size: must be a multiple of micro_batch_size$"),
    ({"train_stage1": {"language_ratio": 1.0}}, r"^train_stage1\.language_ratio: must be in \[0, 1\), got 1\.0$"),
    ({"train_stage2": {"weights": {"nope": 1.0}}}, r"^train_stage2\.weights\.nope: not one of train_stage2\.sources$"),
    ({"train_stage2": {"sources": ["nope"]}}, r"^train_stage2\.sources: 'nope' is not a key of datasets$"),
    ({"eval": {"dataset": "nope"}}, r"^eval\.dataset: 'nope' is not a key of datasets$"),
])
def test_malformed_config_names_the_key_path(delta, message):
    from setok.config import deep_merge

    with pytest.raises(ConfigError, match=message):
        validate_all(deep_merge(raw(PAPER), delta))


def test_checked_in_schema_is_generated_from_the_dataclasses():
    checked_in = (ROOT / "workflow/schemas/config.schema.yaml").read_text()
    assert checked_in == schema_yaml(), "run: python -m setok.config schema > workflow/schemas/config.schema.yaml"


def test_schema_rejects_unknown_keys_like_the_loader():
    import jsonschema

    bad = raw(PAPER)
    bad["tokenizer"]["merger"]["layerz"] = 3
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(bad, json_schema())
    jsonschema.validate(raw(PAPER, CI), json_schema())


def test_snakemake_rejects_a_bad_config_before_any_job(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("tokenizer:\n  merger:\n    inner_layers: twelve\n")
    snakemake = Path(sys.executable).parent / "snakemake"
    r = subprocess.run([str(snakemake), "-n", "--configfile", str(CI), str(bad)], cwd=ROOT, capture_output=True,
                       text=True)
    assert r.returncode != 0
    assert "inner_layers" in r.stdout + r.stderr
    assert not (ROOT / "results" / "hard_cluster" / "never").exists()


def test_unknown_variant_is_rejected():
    with pytest.raises(ConfigError, match="variants.nope: unknown variant"):
        resolve(raw(PAPER), "nope")


# --- compute: where jobs may run (docs/cluster.md, "GPUs asked are GPUs used") ----------------------------------------


def test_cpu_is_allowed_by_the_ci_and_learning_configs_only():
    assert load_config(PAPER).compute.allow_cpu is False
    assert load_config([PAPER, CI]).compute.allow_cpu is True
    assert load_config([PAPER, CI, ROOT / "config/learn.yaml"]).compute.allow_cpu is True


@pytest.mark.parametrize("value, message", [("yes", r"compute\.allow_cpu: expected true/false"),
                                            (1, r"compute\.allow_cpu: expected true/false")])
def test_compute_allow_cpu_rejects_a_non_boolean_naming_the_key(value, message):
    with pytest.raises(ConfigError, match=message):
        resolve({**raw(PAPER), "compute": {"allow_cpu": value}})
    import jsonschema

    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({**raw(PAPER), "compute": {"allow_cpu": value}}, json_schema())


def test_compute_is_neither_in_a_resolved_config_nor_in_its_sha():
    """Where a job may run is not what it computes: flipping allow_cpu changes no results/<v>/config.yaml (so no
    rerun) and no config_sha."""
    from setok.config import config_sha

    gpu = resolve({**raw(PAPER, CI), "compute": {"allow_cpu": False}}, "no_pe")
    cpu = resolve({**raw(PAPER, CI), "compute": {"allow_cpu": True}}, "no_pe")
    assert dump(gpu) == dump(cpu) and "\ncompute:" not in dump(cpu) and config_sha(gpu) == config_sha(cpu)
