"""Feature extractors behind the model-backed editing metrics: CLIP (CLIP-I, CLIP-T), DINO and LPIPS.

The metric math lives in :mod:`evaluation.metrics.editing`; this module only turns images and texts into embeddings
(or, for LPIPS, image pairs into distances). Paper-scale defaults reproduce MagicBrush's ``evaluation/image_eval.py``:

* CLIP-I / CLIP-T: OpenAI CLIP ViT-B/32 (``clip.load("ViT-B/32")``) = open_clip ``ViT-B-32-quickgelu`` with the
  ``openai`` weights. The ``-quickgelu`` name matters: open_clip 3.x builds plain ``ViT-B-32`` with GELU and only
  warns when the OpenAI (QuickGELU) weights are loaded into it. Its eval transform is CLIP's (bicubic resize of the
  short side to 224, centre crop, CLIP mean/std).
* DINO: the ViT-S/16 of ``torch.hub.load('facebookresearch/dino:main', 'dino_vits16')`` = timm
  ``vit_small_patch16_224.dino`` with ``num_classes=0`` (the final-norm CLS token, what the hub model returns). The
  transform is the script's own (bicubic resize to 256, centre crop 224, ImageNet mean/std), not timm's data config,
  whose ``crop_pct`` is 0.9 instead of 224/256.
* LPIPS (not in the MagicBrush script; SeTok reports it): ``lpips.LPIPS(net="alex")`` on images scaled to
  ``[-1, 1]``, the generated image resized to the target's size as for L1.

Every model is built lazily (torch, open_clip, timm, lpips are imported on use). Pretrained weights download on
first use; without network a load fails with a one-line :class:`setok.io.DataError`. Tests build random-initialised
tiny models with the same classes (no download).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

import numpy as np
from PIL import Image

from setok.io import DataError

if TYPE_CHECKING:
    import torch

PAPER_CLIP_MODEL = "ViT-B-32-quickgelu"
PAPER_CLIP_PRETRAINED = "openai"
PAPER_DINO_MODEL = "vit_small_patch16_224.dino"
PAPER_LPIPS_NET = "alex"
DEFAULT_BATCH_SIZE = 32


@runtime_checkable
class ImageEmbedder(Protocol):
    """Maps images to one embedding each."""

    name: str

    def embed_images(self, images: Sequence[Image.Image]) -> np.ndarray:
        """``(len(images), d)`` float64 embeddings, in order."""
        ...


@runtime_checkable
class TextEmbedder(Protocol):
    """Maps texts to one embedding each (in the same space as an :class:`ImageEmbedder`'s images)."""

    name: str

    def embed_texts(self, texts: Sequence[str]) -> np.ndarray:
        """``(len(texts), d)`` float64 embeddings, in order."""
        ...


def default_device(device: str | None = None) -> str:
    """``device`` if given (a CUDA device that is not there is a one-line :class:`setok.devices.DeviceError`),
    else ``"cuda"`` when available, else ``"cpu"`` (library use; the workflow always passes ``--device``)."""
    if device:
        from setok.devices import require_device

        return require_device(device)
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def _load_error(source: str, what: str, err: Exception) -> DataError:
    """One line; a weights file missing from the offline cache names ``fetch_weights`` (setok.weights)."""
    from setok.weights import HOW_TO_FETCH, MissingWeights, missing_weights

    first = (str(err).strip().splitlines() or [err.__class__.__name__])[0][:300]
    if isinstance(err, MissingWeights):
        return err
    if missing_weights(err):
        return MissingWeights(f"{source}: {what} is not in the weights cache and this job runs offline; {HOW_TO_FETCH} "
                              f"({err.__class__.__name__}: {first})")
    return DataError(f"{source}: cannot load {what} ({err.__class__.__name__}: {first})")


def _batched_forward(
    items: Sequence[Any], to_tensor: Any, forward: Any, device: str, batch_size: int
) -> np.ndarray:
    """Run ``forward(stack(to_tensor(x)))`` over ``items`` in batches; float64 ``(n, d)``."""
    import torch

    out: list[np.ndarray] = []
    with torch.no_grad():
        for start in range(0, len(items), batch_size):
            batch = to_tensor(items[start : start + batch_size]).to(device)
            out.append(forward(batch).float().cpu().numpy().astype(np.float64))
    return np.concatenate(out, axis=0) if out else np.zeros((0, 0))


class OpenClipEmbedder:
    """Image and text embeddings of an open_clip model (``encode_image`` / ``encode_text``, unnormalised)."""

    def __init__(
        self,
        model: torch.nn.Module,
        preprocess: Any,
        tokenizer: Any,
        *,
        name: str,
        device: str | None = None,
        batch_size: int = DEFAULT_BATCH_SIZE,
    ) -> None:
        """Wrap a built model.

        Args:
            model: An open_clip ``CLIP`` model.
            preprocess: Its eval image transform (PIL image to ``(3, H, W)`` tensor).
            tokenizer: Its tokenizer (list of strings to ``(n, context_length)`` token ids; truncates).
            name: Label recorded with the scores.
            device: Torch device (default CUDA when available).
            batch_size: Images or texts per forward pass.
        """
        self.device = default_device(device)
        self.model = model.to(self.device).eval()
        self.preprocess = preprocess
        self.tokenizer = tokenizer
        self.name = name
        self.batch_size = batch_size

    @classmethod
    def create(
        cls,
        model_name: str = PAPER_CLIP_MODEL,
        pretrained: str | None = PAPER_CLIP_PRETRAINED,
        *,
        device: str | None = None,
        batch_size: int = DEFAULT_BATCH_SIZE,
        **model_kwargs: Any,
    ) -> OpenClipEmbedder:
        """Build an open_clip model (``pretrained=None``: random init, e.g. a tiny one for tests).

        Args:
            model_name: open_clip architecture name (default: the OpenAI ViT-B/32 of the MagicBrush script).
            pretrained: open_clip weight tag or checkpoint path; ``None`` for random weights.
            device: Torch device.
            batch_size: Items per forward pass.
            **model_kwargs: Overrides of the architecture config (``embed_dim``, ``vision_cfg``, ``text_cfg``).

        Raises:
            DataError: Unknown model, or weights that cannot be loaded (e.g. offline without a cache).
        """
        import open_clip

        try:
            model, _, preprocess = open_clip.create_model_and_transforms(
                model_name, pretrained=pretrained, **model_kwargs
            )
            tokenizer = open_clip.get_tokenizer(model_name)
        except Exception as e:  # open_clip raises RuntimeError/ValueError/OSError/HF errors
            raise _load_error(f"open_clip:{model_name}:{pretrained}", "the CLIP model", e) from None
        return cls(
            model, preprocess, tokenizer, name=f"{model_name}:{pretrained}", device=device, batch_size=batch_size
        )

    def embed_images(self, images: Sequence[Image.Image]) -> np.ndarray:
        """``encode_image`` of each image after the model's eval transform."""
        import torch

        return _batched_forward(
            images,
            lambda xs: torch.stack([self.preprocess(x) for x in xs]),
            self.model.encode_image,
            self.device,
            self.batch_size,
        )

    def embed_texts(self, texts: Sequence[str]) -> np.ndarray:
        """``encode_text`` of each text (tokenised with the model's tokenizer, truncated to its context length)."""
        return _batched_forward(
            list(texts), lambda xs: self.tokenizer(list(xs)), self.model.encode_text, self.device, self.batch_size
        )


def dino_transform() -> Any:
    """The DINO transform of MagicBrush's ``image_eval.py``: resize 256 (bicubic), centre crop 224, ImageNet norm."""
    from torchvision import transforms

    return transforms.Compose(
        [
            transforms.Resize(256, interpolation=transforms.InterpolationMode.BICUBIC),
            transforms.CenterCrop(224),
            transforms.ToTensor(),
            transforms.Normalize((0.485, 0.456, 0.406), (0.229, 0.224, 0.225)),
        ]
    )


class TimmEmbedder:
    """Pooled image features of a timm model built with ``num_classes=0`` (for DINO ViTs: the CLS token)."""

    def __init__(
        self,
        model: torch.nn.Module,
        transform: Any,
        *,
        name: str,
        device: str | None = None,
        batch_size: int = DEFAULT_BATCH_SIZE,
    ) -> None:
        """Wrap a built model.

        Args:
            model: A timm model whose forward returns ``(n, d)`` features.
            transform: PIL image to ``(3, H, W)`` tensor.
            name: Label recorded with the scores.
            device: Torch device (default CUDA when available).
            batch_size: Images per forward pass.
        """
        self.device = default_device(device)
        self.model = model.to(self.device).eval()
        self.transform = transform
        self.name = name
        self.batch_size = batch_size

    @classmethod
    def create(
        cls,
        model_name: str = PAPER_DINO_MODEL,
        *,
        pretrained: bool = True,
        weights: str | None = None,
        device: str | None = None,
        batch_size: int = DEFAULT_BATCH_SIZE,
        **model_kwargs: Any,
    ) -> TimmEmbedder:
        """Build a timm model with the DINO transform of :func:`dino_transform`.

        Args:
            model_name: timm model name (default: DINO ViT-S/16).
            pretrained: Load timm's pretrained weights (downloads on first use); ``False`` for random init.
            weights: Local checkpoint file to load instead of the download.
            device: Torch device.
            batch_size: Images per forward pass.
            **model_kwargs: Architecture overrides (``depth``, ``embed_dim``, ``num_heads``) for tiny test models.

        Raises:
            DataError: Unknown model or weights that cannot be loaded.
        """
        import timm

        overlay = {"file": weights} if weights else None
        try:
            model = timm.create_model(
                model_name,
                pretrained=pretrained or weights is not None,
                pretrained_cfg_overlay=overlay,
                num_classes=0,
                **model_kwargs,
            )
        except Exception as e:  # timm raises RuntimeError/OSError/HF hub errors
            raise _load_error(f"timm:{weights or model_name}", "the DINO model", e) from None
        return cls(model, dino_transform(), name=model_name, device=device, batch_size=batch_size)

    def embed_images(self, images: Sequence[Image.Image]) -> np.ndarray:
        """Pooled features of each image after :attr:`transform`."""
        import torch

        return _batched_forward(
            images,
            lambda xs: torch.stack([self.transform(x) for x in xs]),
            self.model,
            self.device,
            self.batch_size,
        )


class LpipsDistance:
    """LPIPS distance of image pairs with an injected ``lpips.LPIPS`` model."""

    def __init__(self, model: torch.nn.Module, *, name: str = "lpips", device: str | None = None) -> None:
        """Wrap a built ``lpips.LPIPS`` (tests: ``lpips.LPIPS(net="alex", pnet_rand=True)``, no download).

        Args:
            model: The LPIPS network.
            name: Label recorded with the scores.
            device: Torch device (default CUDA when available).
        """
        self.device = default_device(device)
        self.model = model.to(self.device).eval()
        self.name = name

    @classmethod
    def create(cls, net: str = PAPER_LPIPS_NET, *, device: str | None = None) -> LpipsDistance:
        """``lpips.LPIPS(net=net)`` with ImageNet backbone weights (torchvision downloads them on first use).

        Raises:
            DataError: The backbone weights cannot be loaded (e.g. offline without ``$TORCH_HOME`` cache).
        """
        import lpips

        from setok.weights import LPIPS_TORCHVISION, require_torch_url, torchvision_url

        try:
            require_torch_url(torchvision_url(LPIPS_TORCHVISION[net]), f"lpips:{net}")
            model = lpips.LPIPS(net=net, verbose=False)
        except Exception as e:  # URLError offline, RuntimeError for a bad cache
            raise _load_error(f"lpips:{net}", "the LPIPS backbone", e) from None
        return cls(model, name=f"lpips-{net}", device=device)

    def distances(self, generated: Sequence[np.ndarray], targets: Sequence[np.ndarray]) -> np.ndarray:
        """LPIPS of each ``(generated, target)`` pair of same-size ``(H, W, 3)`` uint8 images.

        Pixels are scaled to ``[0, 1]`` and passed with ``normalize=True`` (LPIPS maps them to ``[-1, 1]``); the
        network's spatial average is the pair's distance.

        Returns:
            ``(n,)`` float64 distances.
        """
        import torch

        def tensor(a: np.ndarray) -> torch.Tensor:
            return torch.from_numpy(np.array(a, dtype=np.uint8)).permute(2, 0, 1)[None].float().div(255.0)

        out = []
        with torch.no_grad():
            for g, t in zip(generated, targets, strict=True):
                if g.shape != t.shape:
                    raise ValueError(f"LPIPS needs same-size images, got {g.shape} and {t.shape}")
                d = self.model(tensor(g).to(self.device), tensor(t).to(self.device), normalize=True)
                out.append(float(d.reshape(-1)[0]))
        return np.asarray(out, dtype=np.float64)


@dataclass
class EditingModels:
    """The models a set of editing metrics needs (``None`` where not needed).

    Attributes:
        clip: CLIP image + text embedder (CLIP-I, CLIP-T).
        dino: DINO image embedder.
        lpips: LPIPS distance.
    """

    clip: Any = None
    dino: ImageEmbedder | None = None
    lpips: LpipsDistance | None = None


def build_editing_models(
    metrics: Sequence[str],
    *,
    clip_model: str = PAPER_CLIP_MODEL,
    clip_pretrained: str | None = PAPER_CLIP_PRETRAINED,
    dino_model: str = PAPER_DINO_MODEL,
    dino_weights: str | None = None,
    lpips_net: str = PAPER_LPIPS_NET,
    device: str | None = None,
    batch_size: int = DEFAULT_BATCH_SIZE,
) -> EditingModels:
    """Build only the models ``metrics`` need, with the paper-scale defaults named above.

    Args:
        metrics: Metric names (``clip_i``, ``clip_t``, ``dino``, ``lpips``; others need no model).
        clip_model: open_clip architecture.
        clip_pretrained: open_clip weight tag or file.
        dino_model: timm model name.
        dino_weights: Local DINO checkpoint instead of timm's download.
        lpips_net: LPIPS backbone (``alex``, ``vgg``, ``squeeze``).
        device: Torch device.
        batch_size: Items per forward pass.

    Returns:
        The models (``None`` for those not needed).
    """
    wanted = set(metrics)
    models = EditingModels()
    if wanted & {"clip_i", "clip_t"}:
        models.clip = OpenClipEmbedder.create(clip_model, clip_pretrained, device=device, batch_size=batch_size)
    if "dino" in wanted:
        models.dino = TimmEmbedder.create(dino_model, weights=dino_weights, device=device, batch_size=batch_size)
    if "lpips" in wanted:
        models.lpips = LpipsDistance.create(lpips_net, device=device)
    return models
