"""The review page's keyboard: every action, its default keys, and each reviewer's own
bindings (kept on the server, so they follow the reviewer to any browser).

The page's handler (static/js/review/shortcuts.js) and the settings page both read this
table. Keys are written as people read them: "Ctrl+Space", "Alt+Shift+D", "F1", "Esc".
The defaults follow oTranscribe and Express Scribe (Esc plays and pauses, F1–F4 move and
change the speed) and never take a key that edits text: a binding works inside a text field,
so it must not be one that moves the caret, selects or deletes there.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

ALL = ("transcript_correction", "translation_review", "audio_segmentation")
TEXT = ("transcript_correction",)
STRUCTURE = ("transcript_correction", "audio_segmentation")


@dataclass(frozen=True)
class Action:
    id: str
    keys: tuple[str, ...]
    label: str
    types: tuple[str, ...] = ALL
    segment_label: str | None = None  # the label on a segmentation task, where it differs
    edit: bool = False  # only while the task can be edited


ACTIONS = (
    Action("playPause", ("Esc", "Ctrl+Space"), "Play / pause"),
    Action("back", ("F1",), "Back 2 s"),
    Action("forward", ("F2",), "Forward 2 s"),
    Action("slower", ("F3",), "Slower"),
    Action("faster", ("F4",), "Faster"),
    Action(
        "replay",
        ("Ctrl+R",),
        "Replay the current sentence",
        segment_label="Replay the current segment",
    ),
    Action(
        "loop",
        ("Alt+O",),
        "Loop the current sentence (on / off)",
        segment_label="Loop the current segment (on / off)",
    ),
    Action(
        "prev",
        ("Alt+↑",),
        "Previous sentence (plays it)",
        segment_label="Previous segment (plays it)",
    ),
    Action("next", ("Alt+↓",), "Next sentence (plays it)", segment_label="Next segment (plays it)"),
    Action("zoomIn", ("Alt+=",), "Zoom in"),
    Action("zoomOut", ("Alt+-",), "Zoom out"),
    Action("save", ("Ctrl+S",), "Save now", edit=True),
    Action("submit", ("Ctrl+Enter",), "Submit and open the next task", edit=True),
    Action(
        "toggleLang",
        ("Alt+L",),
        "Switch the language (vi/en) of the word at the caret",
        types=TEXT,
        edit=True,
    ),
    Action(
        "split",
        ("Alt+Enter",),
        "Split the sentence at the caret",
        types=STRUCTURE,
        segment_label="Split the segment at the playhead",
        edit=True,
    ),
    Action(
        "merge",
        ("Alt+M",),
        "Merge with the next sentence",
        types=STRUCTURE,
        segment_label="Merge with the next segment",
        edit=True,
    ),
    Action("insert", ("Alt+I",), "Insert a sentence after", types=TEXT, edit=True),
    Action(
        "remove",
        ("Alt+X",),
        "Delete the sentence",
        types=STRUCTURE,
        segment_label="Delete the segment",
        edit=True,
    ),
    Action(
        "setStart",
        ("Alt+[",),
        "Set start to the playhead",
        types=STRUCTURE,
        edit=True,
    ),
    Action("setEnd", ("Alt+]",), "Set end to the playhead", types=STRUCTURE, edit=True),
    Action(
        "undo",
        ("Alt+Z",),
        "Undo the last split, merge, insert, delete, time change or cleared flag",
        edit=True,
    ),
)
BY_ID = {action.id: action for action in ACTIONS}

MODIFIERS = ("Ctrl", "Alt", "Shift")
NAMED = (
    "Esc", "Space", "Enter", "Backspace", "Delete", "Home", "End", "PageUp", "PageDown",
    "←", "→", "↑", "↓", ",", ".", "=", "-", "[", "]", ";", "'", "/", "\\", "`",
)  # fmt: skip
FUNCTION = tuple(f"F{n}" for n in range(1, 13))
LETTERS = tuple("ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789")
# What these keys do inside a text field on Windows, Linux or macOS (caret, selection,
# deletion, clipboard, undo): a shortcut on one of them would fight typing.
TEXT_EDITING = {
    *(f"{m}+{k}" for m in ("Ctrl", "Alt", "Shift", "Ctrl+Shift", "Alt+Shift")
      for k in ("←", "→", "↑", "↓", "Home", "End", "Backspace", "Delete", "PageUp", "PageDown")),
    *(f"Ctrl+{k}" for k in "ACVXYZ"), "Ctrl+Shift+Z", "Alt+Backspace",
}  # fmt: skip
# Alt+↑/↓ move between sentences by default: on macOS Option+↑/↓ jumps to the start or end
# of the field, which one-line fields do not need.
TEXT_EDITING -= {"Alt+↑", "Alt+↓"}
# The page reads Ctrl as Ctrl or ⌘, so Ctrl+letter is also macOS's own Ctrl+letter, which
# edits text there (Emacs keys: start and end of line, delete, transpose, …).
TEXT_EDITING |= {f"Ctrl+{k}" for k in "ABDEFHKNOPT"}
# What the browser keeps for itself (a page cannot take them: Ctrl+W would close the tab).
BROWSER = {"Ctrl+W", "Ctrl+T", "Ctrl+N", "Ctrl+Shift+W", "Ctrl+Shift+T", "Ctrl+Shift+N", "Ctrl+Q"}


class BadBinding(ValueError):
    pass


def normalize(spec: str) -> str:
    """A key combination in its one written form ("alt+shift+d" -> "Alt+Shift+D"), or
    BadBinding saying what is wrong with it."""
    raw = (spec or "").strip()
    if not raw:
        raise BadBinding("is empty")
    parts = raw.split("+")
    if raw.endswith("+") and len(parts) > 1:  # "Ctrl++": the key itself is "+"
        raise BadBinding(f"“{raw}”: “+” cannot be a key here; use “=”")
    *mods, key = [p.strip() for p in parts]
    names = {m.lower(): m for m in MODIFIERS} | {"cmd": "Ctrl", "control": "Ctrl", "option": "Alt"}
    chosen = set()
    for mod in mods:
        if mod.lower() not in names:
            raise BadBinding(f"“{raw}”: “{mod}” is not Ctrl, Alt or Shift")
        chosen.add(names[mod.lower()])
    aliases = {"escape": "Esc", "left": "←", "right": "→", "up": "↑", "down": "↓", "del": "Delete"}
    known = {k.lower(): k for k in (*NAMED, *FUNCTION, *LETTERS)} | aliases
    if key.lower() not in known:
        raise BadBinding(f"“{raw}”: “{key}” is not a key this page knows")
    key = known[key.lower()]
    written = "+".join([*(m for m in MODIFIERS if m in chosen), key])
    if written in TEXT_EDITING:
        raise BadBinding(f"“{written}” edits text inside a field (caret, selection or deletion)")
    if written in BROWSER:
        raise BadBinding(f"“{written}” belongs to the browser; a page cannot use it")
    if {"Ctrl", "Alt"} <= chosen:
        # AltGr arrives as Ctrl+Alt on Windows: it types @, € or [ on many keyboards.
        raise BadBinding(f"“{written}”: Ctrl+Alt is AltGr on many keyboards (it types @, €…)")
    if not chosen & {"Ctrl", "Alt"} and key not in (*FUNCTION, "Esc"):
        raise BadBinding(f"“{written}” would type into the text; add Ctrl or Alt")
    return written


def bindings_for(saved: dict | None) -> dict[str, list[str]]:
    """Each action's keys: the reviewer's own where they set them, else the defaults."""
    saved = saved or {}
    return {a.id: list(saved.get(a.id) or a.keys) for a in ACTIONS}


def parse_bindings(wanted: dict[str, str]) -> dict[str, list[str]]:
    """The reviewer's bindings from the settings form ({action id: "F1, Ctrl+Space"}): only
    those that differ from the defaults are kept. Raises BadBinding naming every problem,
    including one key given to two actions."""
    problems, chosen = [], {}
    for action in ACTIONS:
        text = (wanted.get(action.id) or "").strip()
        specs = []
        # Combinations are separated by a comma and a space, so "Alt+," stays one.
        for spec in filter(None, (s.strip() for s in re.split(r",\s+", text))):
            try:
                specs.append(normalize(spec))
            except BadBinding as error:
                problems.append(f"{action.label}: {error}.")
        chosen[action.id] = specs or list(action.keys)
    owner: dict[str, str] = {}
    for action in ACTIONS:
        for spec in chosen[action.id]:
            other = owner.setdefault(spec, action.id)
            if other != action.id and shared_types(BY_ID[other], action):
                first = BY_ID[other].label
                problems.append(f"“{spec}” is given to both “{first}” and “{action.label}”.")
    if problems:
        raise BadBinding(" ".join(problems))
    return {k: v for k, v in chosen.items() if tuple(v) != BY_ID[k].keys}


def shared_types(a: Action, b: Action) -> bool:
    return bool(set(a.types) & set(b.types))


def page_table(saved: dict | None) -> list[dict]:
    """The table as the review page's script reads it."""
    keys = bindings_for(saved)
    return [
        {
            "id": a.id,
            "keys": keys[a.id],
            "label": a.label,
            "segment_label": a.segment_label,
            "types": list(a.types),
            "edit": a.edit,
        }
        for a in ACTIONS
    ]
