"""The three workloads of the speculative-decoding lab, from most to least copying.

Prompt lookup pays when the answer repeats the prompt: editing code (most lines come back unchanged),
extraction with quotes (spans copied verbatim), and hardly at all in open chat, where the answer is new
text. The prompts are short enough for the tiny model and long enough to give it something to copy.
"""

from __future__ import annotations

_CODE = '''def area(width, height):
    """Area of a rectangle."""
    return width * height


def perimeter(width, height):
    """Perimeter of a rectangle."""
    return 2 * (width + height)
'''

_DOCUMENT = (
    "Order 4471 was shipped on 12 March from the Leeds warehouse. The customer, Ana Ruiz, wrote: "
    "\"The box arrived with a torn corner but the lamp inside works.\" Support replied on 14 March: "
    "\"We will send a new box and a 10% voucher.\""
)

WORKLOADS: dict[str, str] = {
    "code-edit": "Rewrite this Python code with the function `area` renamed to `rect_area`. "
                 "Keep everything else exactly the same and reply with the code only.\n\n" + _CODE,
    "extraction": "Quote, word for word, what the customer wrote and what support replied.\n\n" + _DOCUMENT,
    "open-chat": "Tell me a short story about a robot who learns to paint.",
}


def workload_prompt(name: str) -> str:
    try:
        return WORKLOADS[name]
    except KeyError:
        raise ValueError(f"unknown speculative workload {name!r}; choose one of: {', '.join(WORKLOADS)}") from None
