"""``setok_harness``: an lmms-eval model that wraps any :class:`Answerer`, so SeTokIM plugs into lmms-eval untouched.

lmms-eval 0.7.3 resolves ``--model NAME`` through ``lmms_eval.models.MODEL_REGISTRY_V2`` (model manifests); the older
``lmms_eval.api.registry.register_model`` decorator only fills a legacy dict that ``simple_evaluate`` no longer reads.
Importing this module does both, so ``simple_evaluate(model="setok_harness", model_args="answerer=pkg.mod:make")``
and ``python -m evaluation.lmms --model setok_harness ...`` find the class.

Model arguments (``--model_args``, parsed by lmms-eval's ``simple_parse_args_string``; numbers and true/false are
converted):
    answerer=MODULE:ATTR   an Answerer instance, or a class/factory called with the remaining arguments (required);
    batch_size=N           prompts per ``Answerer.answer`` call (lmms-eval's ``--batch_size`` lands here; default 1);
    max_new_tokens=N       override the task's ``generation_kwargs.max_new_tokens``;
    use_until=true|false   cut each answer at the task's ``until`` strings (default true, as most lmms-eval adapters
                           do: ``answer.split(term)[0]``; lmms-eval's own llava adapter does not);
    device=...             forwarded to the factory only if it takes a ``device`` argument;
    anything else          forwarded to the factory as keyword arguments.
"""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Sequence
from typing import Any, Protocol, runtime_checkable

from lmms_eval.api.instance import Instance
from lmms_eval.api.model import lmms
from lmms_eval.api.registry import register_model
from PIL import Image

MODEL_NAME = "setok_harness"
DEFAULT_MAX_NEW_TOKENS = 128  # what lmms-eval's yes/no tasks ask for when a task sets none


@runtime_checkable
class Answerer(Protocol):
    """What a model must implement to be evaluated through lmms-eval (SeTokIM's chat interface, a fake in tests).

    ``answer`` gets one RGB image per prompt and returns one answer string per prompt, in order. Decoding should be
    greedy: every shipped task asks for temperature 0, and only ``max_new_tokens`` is passed on.
    """

    def answer(self, images: list[Image.Image], prompts: list[str], max_new_tokens: int) -> list[str]:
        """Answer ``prompts[i]`` about ``images[i]`` with at most ``max_new_tokens`` new tokens each."""
        ...


def resolve(spec: str) -> Any:
    """The object named by ``"module:attr"`` (``attr`` may be dotted).

    Raises:
        ValueError: ``spec`` is not of that form.
        ImportError / AttributeError: The module or attribute does not exist.
    """
    module_name, sep, attr = spec.partition(":")
    if not (module_name and sep and attr):
        raise ValueError(f"answerer must be 'module:attr' (e.g. setok.chat:SeTokIMAnswerer), got {spec!r}")
    obj: Any = importlib.import_module(module_name)
    for part in attr.split("."):
        obj = getattr(obj, part)
    return obj


def _is_factory(obj: Any) -> bool:
    return isinstance(obj, type) or (callable(obj) and not hasattr(obj, "answer"))


def load_answerer(spec: Any, **kwargs: Any) -> Answerer:
    """An :class:`Answerer` from ``"module:attr"``, a class/factory, or an instance.

    Args:
        spec: Import path (see :func:`resolve`), a class or function building the Answerer, or an Answerer.
        **kwargs: Arguments of the factory; an instance takes none.

    Raises:
        ValueError: A malformed spec, arguments given for an instance, or a result without ``answer``.
    """
    obj = resolve(spec) if isinstance(spec, str) else spec
    if _is_factory(obj):
        obj = obj(**kwargs)
    elif kwargs:
        raise ValueError(f"answerer {spec!r} is an instance; it takes no arguments, got {sorted(kwargs)}")
    if not callable(getattr(obj, "answer", None)):
        raise ValueError(f"answerer {spec!r} has no answer(images, prompts, max_new_tokens) method")
    return obj


def _takes(factory: Any, name: str) -> bool:
    """Whether ``factory`` accepts keyword ``name`` (explicitly or through ``**kwargs``)."""
    try:
        params = inspect.signature(factory).parameters.values()
    except (TypeError, ValueError):
        return False
    return any(p.name == name or p.kind is inspect.Parameter.VAR_KEYWORD for p in params)


def _flatten(visuals: Any) -> list[Any]:
    if isinstance(visuals, (list, tuple)):
        return [v for item in visuals for v in _flatten(item)]
    return [visuals]


def cut_at_until(text: str, until: Sequence[str]) -> str:
    """``text`` up to the first occurrence of any non-empty stop string (lmms-eval's ``text.split(term)[0]`` loop)."""
    for term in until:
        if term:
            text = text.split(term)[0]
    return text


@register_model(MODEL_NAME)
class SetokHarness(lmms):
    """lmms-eval adapter of an :class:`Answerer` (single image + text prompt -> free-form answer)."""

    is_simple = True

    def __init__(
        self,
        answerer: str | Answerer,
        batch_size: int | str = 1,
        max_new_tokens: int | str | None = None,
        use_until: bool | str = True,
        device: str | None = None,
        max_batch_size: int | None = None,
        **answerer_kwargs: Any,
    ) -> None:
        """Build the adapter (see the module docstring for the meaning of every argument)."""
        super().__init__()
        target = resolve(answerer) if isinstance(answerer, str) else answerer
        if device is not None and _is_factory(target) and _takes(target, "device"):
            answerer_kwargs["device"] = device
        self.answerer = load_answerer(target, **answerer_kwargs)
        try:
            self.batch_size = int(batch_size)
        except (TypeError, ValueError):
            raise ValueError(f"{MODEL_NAME}: batch_size must be an integer, got {batch_size!r}") from None
        if self.batch_size < 1:
            raise ValueError(f"{MODEL_NAME}: batch_size must be >= 1, got {self.batch_size}")
        self.max_new_tokens = None if max_new_tokens in (None, "", "none", "None") else int(max_new_tokens)
        self.use_until = use_until if isinstance(use_until, bool) else str(use_until).lower() == "true"

    def _prepare(self, request: Instance) -> tuple[Image.Image, str, int, list[str]]:
        """``(image, prompt, max_new_tokens, until)`` of one ``generate_until`` request."""
        context, gen_kwargs, doc_to_visual, doc_id, task, split = request.args
        doc = self.task_dict[task][split][doc_id]
        visuals = _flatten(doc_to_visual(doc) if doc_to_visual is not None else [])
        if len(visuals) != 1 or not isinstance(visuals[0], Image.Image):
            kinds = ", ".join(type(v).__name__ for v in visuals) or "none"
            raise ValueError(
                f"{MODEL_NAME}: task {task} doc {doc_id} gives visuals ({kinds}); an Answerer takes exactly one image"
            )
        gen = dict(gen_kwargs or {})
        max_new = self.max_new_tokens or int(gen.get("max_new_tokens") or DEFAULT_MAX_NEW_TOKENS)
        until = gen.get("until") or []
        until = [until] if isinstance(until, str) else list(until)
        return visuals[0].convert("RGB"), context, max_new, until

    def generate_until(self, requests: list[Instance]) -> list[str]:
        """Answer every request; requests with the same ``max_new_tokens`` are batched ``batch_size`` at a time.

        Raises:
            ValueError: A document without exactly one image, or an Answerer returning the wrong number of answers.
            TypeError: An Answerer returning something other than strings.
        """
        prepared = [self._prepare(r) for r in requests]
        groups: dict[int, list[int]] = {}
        for n, (_, _, max_new, _) in enumerate(prepared):
            groups.setdefault(max_new, []).append(n)
        out = [""] * len(requests)
        for max_new, members in groups.items():
            for start in range(0, len(members), self.batch_size):
                batch = members[start : start + self.batch_size]
                texts = self.answerer.answer([prepared[n][0] for n in batch], [prepared[n][1] for n in batch], max_new)
                if not isinstance(texts, (list, tuple)) or len(texts) != len(batch):
                    got = len(texts) if isinstance(texts, (list, tuple)) else type(texts).__name__
                    raise ValueError(f"{MODEL_NAME}: the Answerer returned {got} answers for {len(batch)} prompts")
                for n, text in zip(batch, texts):
                    if not isinstance(text, str):
                        raise TypeError(f"{MODEL_NAME}: the Answerer returned a {type(text).__name__}, not a str")
                    out[n] = cut_at_until(text, prepared[n][3]) if self.use_until else text
                    self.cache_hook.add_partial("generate_until", requests[n].args[:2], out[n])
        return out

    def loglikelihood(self, requests: list[Instance]) -> list[tuple[float, bool]]:
        """Not supported: an Answerer only generates text (use generate_until tasks)."""
        raise NotImplementedError(f"{MODEL_NAME} answers generate_until tasks only; this task needs log-likelihoods")

    def generate_until_multi_round(self, requests: list[Instance]) -> list[str]:
        """Not supported: an Answerer answers single-turn prompts."""
        raise NotImplementedError(f"{MODEL_NAME} answers single-turn generate_until tasks only")


def register() -> None:
    """Make ``setok_harness`` resolvable by ``lmms_eval.models.get_model`` (the registry ``simple_evaluate`` uses)."""
    from lmms_eval.models import MODEL_REGISTRY_V2
    from lmms_eval.models.registry_v2 import ModelManifest

    MODEL_REGISTRY_V2.register_manifest(
        ModelManifest(model_id=MODEL_NAME, simple_class_path=f"{__name__}.SetokHarness"), overwrite=True
    )


register()
