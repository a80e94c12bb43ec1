"""Label Studio's exports of audio projects, read into plain records.

Four formats, told apart by what they hold:
- the full JSON export (a list of tasks with `annotations`, `predictions` as ids only,
  `completed_by` the user's id) and the export snapshot API's JSON (the same, with
  prediction bodies and `completed_by` a user object with the e-mail);
- JSON_MIN (one object per annotation, the region times in the labels list and the texts
  as plain lists without times) and CSV (the same rows, list columns as JSON strings).

A region is the items of one result `id`: its Labels item gives the language label, a
per-region TextArea gives its transcription, another its translation. The control names
come from the labeling config (`Names.from_config`) or default to the ones this team's
projects use. The min formats cannot say which region a shorter text list leaves out;
such a list is not guessed at but reported in `problems`, and the rest of the annotation
is read.
"""

from __future__ import annotations

import csv
import hashlib
import json
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path


class ExportError(ValueError):
    """The file is not a Label Studio export this reader understands."""


@dataclass(frozen=True)
class Names:
    """The labeling config's control names for the region label and the two text areas."""

    label: str = "lang"
    transcription: str = "transcription"
    translation: str = "translation"

    @classmethod
    def from_config(cls, path: Path) -> Names:
        """The first Labels control, the first per-region TextArea (the transcription) and
        one named like "translation" (else the second per-region TextArea)."""
        try:
            # The operator's own config file; expat (2.4+) refuses entity expansion bombs.
            root = ET.parse(path).getroot()  # noqa: S314
        except ET.ParseError as error:
            raise ExportError(f"{path.name}: not a labeling config ({error})") from None
        labels = [e.get("name") for e in root.iter("Labels")]
        areas = [e.get("name") for e in root.iter("TextArea") if e.get("perRegion") == "true"]
        if not labels or not areas:
            raise ExportError(f"{path.name}: needs a Labels control and a per-region TextArea")
        named = [a for a in areas[1:] if "transl" in a.lower()]
        translation = named[0] if named else (areas[1] if len(areas) > 1 else cls.translation)
        return cls(label=labels[0], transcription=areas[0], translation=translation)


DEFAULT_NAMES = Names()


@dataclass(frozen=True)
class Author:
    ls_id: int | None
    email: str | None = None
    name: str | None = None

    def label(self) -> str:
        return self.name or self.email or f"Label Studio user {self.ls_id}"


@dataclass
class Region:
    start: float
    end: float
    label: str | None = None
    text: str | None = None
    translation: str | None = None


@dataclass
class Annotation:
    """An annotation (a person's) or a prediction (a model's) of one task."""

    item: str  # "annotation" | "prediction"
    item_id: str
    version: str  # when Label Studio last changed it: a changed one is imported anew
    author: Author | None = None
    cancelled: bool = False
    regions: list[Region] = field(default_factory=list)
    has_translation: bool = False
    lead_time: float | None = None
    model_version: str | None = None
    problems: list[str] = field(default_factory=list)


@dataclass
class Task:
    task_id: str
    audio: str
    data: dict
    annotations: list[Annotation] = field(default_factory=list)
    # The UI's full export lists predictions by id only: their text is not in the file.
    predictions_not_included: int = 0

    @property
    def title(self) -> str | None:
        return self.data.get("title") or None


def read_export(path: Path, names: Names = DEFAULT_NAMES) -> list[Task]:
    """Every task of the export at `path`, in the file's order."""
    try:
        if path.suffix.lower() == ".csv":
            with path.open(newline="", encoding="utf-8") as handle:
                return from_min_rows([csv_row(row) for row in csv.DictReader(handle)], names)
        document = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, csv.Error) as error:
        raise ExportError(f"{path.name}: cannot be read ({error})") from None
    if not isinstance(document, list) or not all(isinstance(t, dict) for t in document):
        raise ExportError(f"{path.name}: a Label Studio export is a list of tasks")
    if document and "annotations" in document[0]:
        return [full_task(task, names) for task in document]
    return from_min_rows(document, names)


def csv_row(row: dict) -> dict:
    """A CSV row as JSON_MIN writes it: list cells are JSON, empty cells are nothing."""
    out = {}
    for key, value in row.items():
        if value in ("", None):
            out[key] = None
        elif value[:1] in "[{":
            out[key] = json.loads(value)
        else:
            out[key] = value
    return out


def task_data(task: dict, path_hint: str) -> tuple[str, dict]:
    data = task.get("data") if "data" in task else task
    audio = (data or {}).get("audio")
    if not isinstance(audio, str) or not audio:
        raise ExportError(f"task {task.get('id')}: no `audio` in its data ({path_hint})")
    return audio, data


# --- the full and snapshot JSON ----------------------------------------------------------------


def full_task(task: dict, names: Names) -> Task:
    audio, data = task_data(task, "full export")
    annotations = [full_annotation("annotation", a, names) for a in task.get("annotations") or []]
    written_by = ((task.get("meta") or {}).get("review_factory") or {}).get("by")
    for annotation in annotations:
        if annotation.author is None and written_by:  # what `flask export labelstudio` keeps
            email = written_by if "@" in written_by else None
            annotation.author = Author(None, email, None if email else written_by)
    bodies = [p for p in task.get("predictions") or [] if isinstance(p, dict)]
    annotations += [full_annotation("prediction", p, names) for p in bodies]
    return Task(
        # Label Studio's import format (what `flask export labelstudio` writes) has no ids.
        task_id=str(task.get("id") or data.get("sample_id") or audio),
        audio=audio,
        data=data,
        annotations=annotations,
        predictions_not_included=len(task.get("predictions") or []) - len(bodies),
    )


def full_annotation(item: str, body: dict, names: Names) -> Annotation:
    regions: dict[str, Region] = {}
    has_translation = False
    for result in body.get("result") or []:
        value = result.get("value") or {}
        if "start" not in value or "end" not in value:
            continue  # a task-level control (choices, a rating): not a region
        region = regions.setdefault(
            str(result.get("id")), Region(float(value["start"]), float(value["end"]))
        )
        name = result.get("from_name")
        if name == names.label and value.get("labels"):
            region.label = value["labels"][0]
        elif name == names.transcription:
            region.text = " ".join(value.get("text") or [])
        elif name == names.translation:
            region.translation = " ".join(value.get("text") or [])
            has_translation = True
    return Annotation(
        item=item,
        item_id=str(body.get("id") or content_id(body.get("result"))),
        version=str(body.get("updated_at") or body.get("created_at") or ""),
        author=author_of(body.get("completed_by")) if item == "annotation" else None,
        cancelled=bool(body.get("was_cancelled")),
        regions=sorted(regions.values(), key=lambda r: (r.start, r.end)),
        has_translation=has_translation,
        lead_time=body.get("lead_time"),
        model_version=body.get("model_version"),
    )


def content_id(result) -> str:
    """An id for an item written without one: the same result gives the same id."""
    return hashlib.sha256(json.dumps(result, sort_keys=True).encode()).hexdigest()[:32]


def author_of(completed_by) -> Author | None:
    if isinstance(completed_by, dict):
        name = " ".join(
            p for p in (completed_by.get("first_name"), completed_by.get("last_name")) if p
        )
        return Author(completed_by.get("id"), completed_by.get("email"), name or None)
    if completed_by in (None, ""):
        return None
    return Author(int(completed_by))


# --- JSON_MIN and CSV ---------------------------------------------------------------------------


def from_min_rows(rows: list[dict], names: Names) -> list[Task]:
    tasks: dict[str, Task] = {}
    for row in rows:
        audio, _ = task_data(row, "min export")
        task_id = str(row.get("id"))
        task = tasks.setdefault(task_id, Task(task_id, audio, min_data(row, names)))
        if row.get("annotation_id") not in (None, ""):
            task.annotations.append(min_annotation(row, names))
    return list(tasks.values())


MIN_FIELDS = {"id", "annotator", "annotation_id", "created_at", "updated_at", "lead_time"}


def min_data(row: dict, names: Names) -> dict:
    """The task's data fields: what the row holds besides the annotation's."""
    skip = MIN_FIELDS | {names.label, names.transcription, names.translation}
    return {k: v for k, v in row.items() if k not in skip}


def min_annotation(row: dict, names: Names) -> Annotation:
    spans = row.get(names.label) or []
    regions = [
        Region(float(s["start"]), float(s["end"]), (s.get("labels") or [None])[0]) for s in spans
    ]
    annotation = Annotation(
        item="annotation",
        item_id=str(row["annotation_id"]),
        version=str(row.get("updated_at") or row.get("created_at") or ""),
        author=author_of(row.get("annotator")),
        lead_time=float(row["lead_time"]) if row.get("lead_time") not in (None, "") else None,
        regions=regions,
    )
    for name, attribute in ((names.transcription, "text"), (names.translation, "translation")):
        texts = row.get(name)
        if texts is None:
            continue
        if isinstance(texts, str):
            texts = [texts]
        if len(texts) != len(regions):
            annotation.problems.append(
                f"annotation {annotation.item_id}: {len(texts)} {name} texts for "
                f"{len(regions)} regions; the min export does not say which region each "
                f"belongs to, so they are left out (import the full JSON export instead)"
            )
            continue
        for region, text in zip(regions, texts, strict=True):
            setattr(region, attribute, text)
        annotation.has_translation |= attribute == "translation"
    regions.sort(key=lambda r: (r.start, r.end))
    return annotation
