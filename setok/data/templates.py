"""Chat templates: a :class:`~setok.data.multimodal.MultimodalSample` -> the pieces of one training sequence.

What is learned follows from the roles: assistant text (and the end-of-sequence token that closes an assistant turn)
gets the cross-entropy loss; an image in an assistant turn is generated (diffusion loss); user text and user images
are context only.

Templates:
    ``plain``: user content, then assistant content, then ``</s>`` (LLaVA's pre-training "plain" format, used for
        Stage-I captioning, text-to-image and the text corpus).
    ``vicuna_v1``: LLaVA-1.5's conversation format (``conv_vicuna_v1``): the system prompt, then
        ``" USER: " + user + " ASSISTANT: " + assistant + "</s>"`` per round (Stage-II and evaluation).

Classifier-free guidance (``drop_condition``): the user TEXT of a generation / edit sample is removed, so the model
also learns the unconditional distribution; at inference :func:`prompt_pieces` with ``drop_condition=True`` builds the
matching unconditional prompt.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from setok.data.multimodal import ImageRef, MultimodalSample, Turn

Template = Literal["plain", "vicuna_v1"]

SYSTEM_VICUNA_V1 = (
    "A chat between a curious user and an artificial intelligence assistant. "
    "The assistant gives helpful, detailed, and polite answers to the user's questions."
)
EOS = object()  # marks the end-of-sequence token (the tokenizer's eos id, never tokenized from text)


@dataclass(frozen=True)
class Piece:
    """One piece of a rendered sequence.

    Attributes:
        content: text, an :class:`ImageRef`, or :data:`EOS`.
        train: text / EOS: whether it is a cross-entropy target; image: whether it is generated.
    """

    content: str | ImageRef | object
    train: bool


def _turn_pieces(turn: Turn, *, drop_text: bool) -> list[Piece]:
    train = turn.role == "assistant"
    out = []
    for c in turn.content:
        if isinstance(c, str):
            if not drop_text and c:
                out.append(Piece(c, train))
        else:
            out.append(Piece(c, train))
    return out


def render(sample: MultimodalSample, template: Template, *, drop_condition: bool = False) -> list[Piece]:
    """The training pieces of ``sample``.

    Args:
        sample: the sample.
        template: ``plain`` or ``vicuna_v1``.
        drop_condition: remove the user text (classifier-free-guidance dropout of a generation / edit sample).

    Returns: pieces in order; adjacent texts are not merged (each is tokenized on its own).
    """
    pieces: list[Piece] = []
    if template == "vicuna_v1":
        pieces.append(Piece(SYSTEM_VICUNA_V1, False))
    for turn in sample.turns:
        drop = drop_condition and turn.role == "user"
        if template == "vicuna_v1":
            pieces.append(Piece(" USER: " if turn.role == "user" else " ASSISTANT: ", False))
        pieces += _turn_pieces(turn, drop_text=drop)
        if turn.role == "assistant":
            pieces.append(Piece(EOS, True))
        elif template == "plain" and pieces and isinstance(pieces[-1].content, str):
            pieces.append(Piece("\n", False))
    return pieces


def prompt_pieces(
    user: tuple[str | ImageRef, ...], template: Template, *, answer_prefix: str = "", drop_condition: bool = False
) -> list[Piece]:
    """The inference prompt of one user turn: rendered as :func:`render` would, up to where the assistant speaks.

    Args:
        user: the user turn's content.
        template: the template the model was trained with.
        answer_prefix: text the assistant's answer is forced to start with (e.g. ``"Sure, it is "`` before the
            ``[Img]`` of a referring-segmentation answer).
        drop_condition: the unconditional prompt of classifier-free guidance (user text removed).
    """
    turn = Turn("user", user)
    pieces: list[Piece] = []
    if template == "vicuna_v1":
        pieces += [Piece(SYSTEM_VICUNA_V1, False), Piece(" USER: ", False)]
    pieces += _turn_pieces(turn, drop_text=drop_condition)
    if template == "vicuna_v1":
        pieces.append(Piece(" ASSISTANT: ", False))
    elif pieces and isinstance(pieces[-1].content, str):
        pieces.append(Piece("\n", False))
    if answer_prefix:
        pieces.append(Piece(answer_prefix, False))
    return pieces
