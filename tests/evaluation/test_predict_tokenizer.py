"""The tokenizer prediction job (``evaluation.predict.tokenizer``): what it writes equals the model run by hand."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
import yaml
from PIL import Image

from setok.config import deep_merge, dump, resolve, to_dict
from setok.data import build_dataset, collate
from setok.data.bundled import read_bundled_labels
from setok.model_file import write_model
from setok.modeling.build import build_setok, load_setok

ROOT = Path(__file__).resolve().parents[2]
N = 5  # images: one full batch of 4 and a last batch of 1


def test_predictions_equal_the_tokenizer_run_by_hand(tmp_path):
    from evaluation.predict.tokenizer import predict

    raw: dict = {}
    for f in ("config/paper.yaml", "config/ci.yaml"):
        raw = deep_merge(raw, yaml.safe_load((ROOT / f).read_text()))
    raw = deep_merge(raw, {"eval": {"limit": N, "batch_size": 4, "fid_image_size": 48},
                           "tokenizer": {"backbone": {"image_size": 32}}})
    cfg = resolve(raw, "hard_cluster")
    torch.manual_seed(0)
    setok, _ = build_setok(cfg.tokenizer)
    write_model(tmp_path / "model.pt", family="setok", stage="tokenizer", weights=setok.state_dict(),
                config=to_dict(cfg), config_sha="", step=0)
    (tmp_path / "config.yaml").write_text(dump(cfg))
    classes, _ = read_bundled_labels()
    (tmp_path / "classes.json").write_text(json.dumps(classes))

    predict(tmp_path / "model.pt", tmp_path / "config.yaml", tmp_path / "classes.json", tmp_path / "out",
            device="cpu")

    model, text, _ = load_setok(tmp_path / "model.pt")
    dataset = build_dataset(cfg.datasets[cfg.eval.dataset], image_size=32)
    batch = collate([dataset[i] for i in range(N)])
    with torch.no_grad():
        tok, recon = model(batch["image"])
        class_emb = torch.stack([F.normalize(text([t.format(c) for t in cfg.tokenizer.loss.prompt_templates])
                                             .mean(0), dim=-1) for c in classes])
        scores = 100.0 * model.embed(tok.tokens, tok.valid) @ class_emb.T  # (N, K)
    counts = json.loads((tmp_path / "out" / "tokens.json").read_text())
    assert counts["per_image"] == {sid: int(k) for sid, k in zip(batch["id"], tok.num_tokens)}
    assert counts["mean"] == float(tok.num_tokens.float().mean())
    # the evaluation set's provenance, which the score jobs merge: bundled photos, not ImageNet; the first N of them
    assert counts["provenance"] == {
        "grader": None, "subset": [{"kept": N, "of": len(dataset), "unit": "images", "by": f"eval.limit = {N}"}],
        "shortcuts": ["evaluated on the bundled images (datasets.bundled.kind = bundled), not ImageNet val"]}
    rows = [json.loads(line) for line in (tmp_path / "out" / "imagenet.predictions.jsonl").read_text().splitlines()]
    assert [r["id"] for r in rows] == list(batch["id"])
    np.testing.assert_allclose(np.array([r["scores"] for r in rows]), scores.numpy(), atol=2e-4)
    recon = F.interpolate(recon, size=(48, 48), mode="bicubic", antialias=True, align_corners=False)
    expected = ((recon.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).permute(0, 2, 3, 1).numpy()
    for sid, img in zip(batch["id"], expected):
        written = np.asarray(Image.open(tmp_path / "out" / "recon" / f"{sid}.png"))
        assert written.shape == (48, 48, 3)
        assert np.abs(written.astype(int) - img.astype(int)).max() <= 1  # batch composition may round differently
    maps = np.load(tmp_path / "out" / "clusters.npz")
    first = batch["id"][0]
    assert np.array_equal(maps[first], tok.clusters.assignment()[0].view(*tok.grid).numpy())
