"""What a request says to Stable Audio: its fields, and its place in the score in words.

The model knows nothing of chunks, so where a piece sits (opening the score, in the
middle, ending it) is said in the prompt and the negative prompt; music and outpainting
requests share the rest of their fields.
"""

from __future__ import annotations

from typing import Any

from ..base import ContinuationRequest, GenerationRequest

__all__ = ["ENDING_PROMPT", "NO_ENDING", "NO_INTRO", "fields_of", "in_words"]

ENDING_PROMPT = "with a clear ending"
NO_ENDING = "ending, fade-out"
NO_INTRO = "intro"


def in_words(prompt: str, negative: str, *, opens: bool | None, ends: bool | None) -> tuple[str, str]:
    """The prompt and negative prompt that tell Stable Audio where this piece sits in the score.

    The model knows nothing of chunks: a piece that does not open the score must not start
    with an intro, one that does not end it must not end or fade, and the last one should
    end clearly; None says nothing. (On the distilled model the negative prompt does little,
    but costs nothing.)
    """
    if ends is True:
        prompt = f"{prompt.rstrip(' ,.')}, {ENDING_PROMPT}"
    avoid = [negative] if negative.strip() else []
    if ends is False:
        avoid.append(NO_ENDING)
    if opens is False:
        avoid.append(NO_INTRO)
    return prompt, ", ".join(avoid)


def fields_of(request: GenerationRequest | ContinuationRequest, *, opens: bool | None) -> dict[str, Any]:
    """The fields music and outpainting share, with the piece's place in the score in words."""
    prompt, negative = in_words(request.prompt, request.negative_prompt, opens=opens, ends=request.ends)
    fields: dict[str, Any] = {
        "prompt": prompt,
        "num_inference_steps": request.steps,
        "guidance_scale": float(request.guidance),
        "output_format": request.output_format,
    }
    if negative:
        fields["negative_prompt"] = negative
    return fields
