"""API keys GEMINI_API_KEY_1…N: tried in order; a key out of quota rests a while.

A key is never printed or stored: it is shown as its number and last four characters
(`label`), and the shared state names it by a hash (`fingerprint`). A key that hit a quota
(429 / RESOURCE_EXHAUSTED) rests for the delay the API asked for (at least the configured
cool-down, longer for a daily quota); a key the API refuses (not valid, no permission)
rests for an hour, so every worker moves on to the next key at once.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from ..errors import PermanentError, TransientError

REFUSED_REST_S = 3600.0


@dataclass(frozen=True)
class Key:
    number: int  # the N of GEMINI_API_KEY_N
    secret: str

    @property
    def label(self) -> str:
        return f"key {self.number} ({mask(self.secret)})"

    @property
    def fingerprint(self) -> str:
        return hashlib.sha256(self.secret.encode()).hexdigest()[:16]

    def __repr__(self) -> str:  # never the secret, also not in tracebacks or logs
        return f"Key({self.label})"


def mask(secret: str) -> str:
    """The last four characters, and only when the key is long enough to spare them."""
    return f"…{secret[-4:]}" if len(secret) >= 12 else "…"


def scrub(text: str, keys: list[Key]) -> str:
    """`text` with any key in it replaced by its mask (error messages, job runs)."""
    for key in keys:
        if key.secret:
            text = text.replace(key.secret, mask(key.secret))
    return text


class KeyRing:
    def __init__(self, secrets: list[str], store, cooldown_s: float = 60.0):
        self.keys = [Key(i, s) for i, s in enumerate(secrets, 1)]
        self.store = store
        self.cooldown_s = cooldown_s

    def state(self, key: Key) -> str | None:
        """Why the key rests ("quota: …", "refused: …"), or None when it is usable."""
        return self.store.get_flag(f"key:{key.fingerprint}")

    def available(self) -> Key:
        """The first key that is not resting; raise when there is none."""
        return self.usable()[0]

    def usable(self) -> list[Key]:
        """The keys that are not resting, in order; raise when there is none."""
        if not self.keys:
            raise PermanentError(
                "no Gemini API key is configured: set GEMINI_API_KEY_1 (and _2, _3 … for more)",
                code="no_key",
            )
        usable, resting = [], []
        for key in self.keys:
            why = self.state(key)
            if why is None:
                usable.append(key)
            else:
                resting.append((key, why))
        if usable:
            return usable
        if all(why.startswith("refused") for _, why in resting):
            reasons = "; ".join(f"{key.label}: {why}" for key, why in resting)
            raise PermanentError(
                f"every Gemini API key was refused ({reasons}); fix them and check with "
                "`flask gemini check-keys`",
                code="keys_refused",
            )
        raise TransientError(
            f"all {len(self.keys)} Gemini API keys are out of quota for now",
            "the task is retried later; add keys (GEMINI_API_KEY_N) or lower "
            "GEMINI_REQUESTS_PER_MINUTE",
        )

    def rest_after_quota(self, key: Key, seconds: float = 0.0) -> float:
        """Rest `key` for `seconds` (at least the cool-down); return how long it rests."""
        rest = max(self.cooldown_s, seconds)
        self.store.set_flag(f"key:{key.fingerprint}", f"quota: resting {rest:.0f} s", rest)
        return rest

    def refuse(self, key: Key, reason: str) -> None:
        self.store.set_flag(f"key:{key.fingerprint}", f"refused: {reason}", REFUSED_REST_S)
