"""A reviewer's own settings, kept on their account (users.preferences) so they follow them
to any browser: the review page's keys, what a submit opens next, and how far playback
rewinds when it resumes after a pause (transcribers re-hear the words they stopped on)."""

from __future__ import annotations

from ..core.models import User
from . import keys

AFTER_SUBMIT = {"next": "Open my next task", "queue": "Go back to my queue"}
REWIND_MAX_S = 5.0
DEFAULTS = {"after_submit": "next", "rewind_s": 1.0}


def preferences_of(user: User) -> dict:
    saved = user.preferences or {}
    return {
        "after_submit": saved.get("after_submit", DEFAULTS["after_submit"]),
        "rewind_s": saved.get("rewind_s", DEFAULTS["rewind_s"]),
        "keys": keys.bindings_for(saved.get("keys")),
    }


def page_settings(user: User) -> dict:
    """What the review page's script needs."""
    prefs = preferences_of(user)
    return {
        "after_submit": prefs["after_submit"],
        "rewind_s": prefs["rewind_s"],
        "shortcuts": keys.page_table((user.preferences or {}).get("keys")),
    }


class Refused(ValueError):
    """The settings form had mistakes; the message names each."""


def parse(form) -> dict:
    """The settings form as a preferences document (only what differs from the defaults),
    or Refused listing every problem."""
    problems = []
    after = form.get("after_submit", DEFAULTS["after_submit"])
    if after not in AFTER_SUBMIT:
        problems.append("Choose what a submit opens: your next task or your queue.")
    try:
        rewind = round(float(form.get("rewind_s", DEFAULTS["rewind_s"])), 2)
        if not 0 <= rewind <= REWIND_MAX_S:
            raise ValueError
    except ValueError:
        problems.append(f"The rewind on resume is a number of seconds from 0 to {REWIND_MAX_S:g}.")
        rewind = DEFAULTS["rewind_s"]
    try:
        bindings = keys.parse_bindings({a.id: form.get(f"key-{a.id}", "") for a in keys.ACTIONS})
    except keys.BadBinding as error:
        problems.append(str(error))
        bindings = {}
    if problems:
        raise Refused(" ".join(problems))
    chosen = {"after_submit": after, "rewind_s": rewind, "keys": bindings}
    return {k: v for k, v in chosen.items() if v != DEFAULTS.get(k, {})}
