"""The PatchGAN's warm-up: a stage whose pixel decoder starts from scratch (the first pixel stage, the enhanced
decoder) trains without the adversarial terms until ``disc_start``; the fine-tune, which continues a trained decoder
and discriminator, has them from its first step (paper-notes H5)."""
import json

from test_semhitok_training import tiny_config  # tests/train is on sys.path (pytest rootdir import)

from setok.train.semhitok import train


def gan_steps(folder) -> list[int]:
    rows = [json.loads(line) for line in (folder / "train_log.jsonl").read_text().splitlines()]
    return [r["step"] for r in rows if "adversarial" in r]


def test_decoders_from_scratch_wait_for_disc_start_and_the_fine_tune_does_not(tmp_path):
    cfg = tiny_config(tokenizer={"semhitok": {"loss": {"disc_start": 2}}})
    sem = train(cfg, "semantic_codebook", tmp_path / "semantic")
    pix = train(cfg, "pixel_codebook", tmp_path / "pixel", init=sem)
    fine = train(cfg, "pixel_finetune", tmp_path / "finetune", init=pix)
    train(cfg, "pixel_decoder", tmp_path / "tokenizer", init=fine)
    # Steps are 1-based in the log and the objective sees the 0-based step: disc_start 2 -> steps 3 on.
    assert gan_steps(tmp_path / "pixel") == [3]
    assert gan_steps(tmp_path / "tokenizer") == [3]
    assert gan_steps(tmp_path / "finetune") == [1, 2, 3]
