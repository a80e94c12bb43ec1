"""What a Gemini reply means, and the settings of a request.

`reply_text` reads a response: a prompt or reply blocked by a safety filter and a reply cut
off at the token limit are permanent failures carrying the model's reason.
`generation_config` builds a request's settings from the configuration: the system
instruction, the JSON schema the reply must follow, the token limit, temperature, thinking
budget and safety thresholds.
"""

from __future__ import annotations

from collections.abc import Mapping

from google.genai import types

from ..errors import PermanentError, TransientError

BLOCKING_FINISH = {
    "SAFETY",
    "RECITATION",
    "BLOCKLIST",
    "PROHIBITED_CONTENT",
    "SPII",
    "IMAGE_SAFETY",
    "MODEL_ARMOR",
}


def _ratings(ratings) -> str:
    shown = [
        f"{_name(r.category)}: {_name(r.probability)}"
        for r in ratings or []
        if r.blocked or _name(r.probability) in ("HIGH", "MEDIUM")
    ]
    return f" ({', '.join(shown)})" if shown else ""


def _name(value) -> str:
    return getattr(value, "value", None) or str(value)


def reply_text(response: types.GenerateContentResponse, max_output_tokens: int) -> str:
    """The reply's text, or the reason there is none usable (see the module docstring)."""
    feedback = response.prompt_feedback
    if feedback is not None and feedback.block_reason:
        why = f": {feedback.block_reason_message}" if feedback.block_reason_message else ""
        raise PermanentError(
            f"Gemini blocked the request: {_name(feedback.block_reason)}"
            f"{_ratings(feedback.safety_ratings)}{why}",
            code="blocked",
        )
    if not response.candidates:
        raise TransientError("Gemini answered without a reply (no candidates)")
    candidate = response.candidates[0]
    finish = _name(candidate.finish_reason) if candidate.finish_reason else "STOP"
    said = f": {candidate.finish_message}" if candidate.finish_message else ""
    if finish == "MAX_TOKENS":
        used = response.usage_metadata.candidates_token_count if response.usage_metadata else None
        raise PermanentError(
            f"the reply was cut off at the token limit (finish reason MAX_TOKENS, "
            f"{used or '?'} of {max_output_tokens} output tokens){said}; shorten the chunks "
            "(GEMINI_LONG_AUDIO_SECONDS) or raise GEMINI_MAX_OUTPUT_TOKENS",
            code="max_tokens",
        )
    if finish in BLOCKING_FINISH:
        raise PermanentError(
            f"Gemini stopped the reply: finish reason {finish}"
            f"{_ratings(candidate.safety_ratings)}{said}",
            code="blocked",
        )
    if finish not in ("STOP", "FINISH_REASON_UNSPECIFIED"):
        raise TransientError(f"Gemini stopped the reply early: finish reason {finish}{said}")
    parts = candidate.content.parts if candidate.content and candidate.content.parts else []
    text = "".join(p.text for p in parts if p.text and not p.thought)
    if not text.strip():
        raise TransientError("Gemini answered with an empty reply")
    return text


# --- request settings ----------------------------------------------------------------------

SAFETY_CATEGORIES = (
    "HARM_CATEGORY_HARASSMENT",
    "HARM_CATEGORY_HATE_SPEECH",
    "HARM_CATEGORY_SEXUALLY_EXPLICIT",
    "HARM_CATEGORY_DANGEROUS_CONTENT",
)


def generation_config(config: Mapping, system: str, schema) -> types.GenerateContentConfig:
    """JSON output following `schema` (a pydantic model), with the configured limits.

    Speech is transcribed as it was said, so the safety filters only block what is very
    likely harmful (GEMINI_SAFETY_THRESHOLD, BLOCK_ONLY_HIGH by default)."""
    settings = types.GenerateContentConfig(
        system_instruction=system,
        response_mime_type="application/json",
        response_schema=schema,
        max_output_tokens=config["GEMINI_MAX_OUTPUT_TOKENS"],
        safety_settings=[
            types.SafetySetting(category=category, threshold=config["GEMINI_SAFETY_THRESHOLD"])
            for category in SAFETY_CATEGORIES
        ],
    )
    if config["GEMINI_TEMPERATURE"] is not None:
        settings.temperature = config["GEMINI_TEMPERATURE"]
    if config["GEMINI_THINKING_BUDGET"] is not None:
        settings.thinking_config = types.ThinkingConfig(
            thinking_budget=config["GEMINI_THINKING_BUDGET"]
        )
    return settings
