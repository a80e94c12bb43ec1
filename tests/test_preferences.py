"""A reviewer's settings: key bindings checked as people write them (and refused where
they would fight typing), what a submit opens next, the rewind on resume."""

from __future__ import annotations

import pytest

from ra_app.core.models import Assignment, AssignmentStatus, User
from ra_app.core.revisions import latest_transcript, latest_translation, rows_of
from ra_app.extensions import db
from ra_app.review import keys, preferences

from .conftest import csrf_token_from
from .review_helpers import assign, claim, make_review_sample


@pytest.mark.parametrize(
    ("typed", "written"),
    [
        ("esc", "Esc"),
        ("Escape", "Esc"),
        ("f1", "F1"),
        ("ctrl+space", "Ctrl+Space"),
        ("shift+alt+d", "Alt+Shift+D"),
        ("Cmd+Enter", "Ctrl+Enter"),
        ("option+down", "Alt+↓"),
        ("Alt+=", "Alt+="),
    ],
)
def test_a_key_is_written_one_way(typed, written):
    assert keys.normalize(typed) == written


@pytest.mark.parametrize(
    ("typed", "problem"),
    [
        ("Ctrl+←", "edits text"),
        ("Alt+Backspace", "edits text"),
        ("Ctrl+Shift+→", "edits text"),
        ("Ctrl+V", "edits text"),
        ("Shift+End", "edits text"),
        ("K", "would type into the text"),
        ("Shift+K", "would type into the text"),
        ("Space", "would type into the text"),
        ("Ctrl+E", "edits text"),  # macOS: the end of the line
        ("Ctrl+W", "belongs to the browser"),
        ("Ctrl+Alt+K", "AltGr"),
        ("Hyper+K", "is not Ctrl, Alt or Shift"),
        ("Alt+Banana", "is not a key"),
        ("", "is empty"),
    ],
)
def test_a_key_that_fights_typing_or_does_not_exist_is_refused(typed, problem):
    with pytest.raises(keys.BadBinding, match=problem):
        keys.normalize(typed)


def test_bindings_keep_only_changes_and_refuse_one_key_for_two_actions():
    assert keys.parse_bindings({"playPause": "F8, Ctrl+Space", "back": ""}) == {
        "playPause": ["F8", "Ctrl+Space"]
    }
    assert keys.parse_bindings({"playPause": "Esc, ctrl+space"}) == {}  # the defaults
    assert keys.parse_bindings({"slower": "Alt+,, F3"}) == {"slower": ["Alt+,", "F3"]}
    with pytest.raises(keys.BadBinding, match="“F1” is given to both “Play / pause” and “Back"):
        keys.parse_bindings({"playPause": "F1"})
    # Actions of different task types may share a key: never on one page together.
    assert keys.parse_bindings({"insert": "Alt+Q", "remove": "Alt+X"}) == {"insert": ["Alt+Q"]}


def test_the_defaults_themselves_pass_the_rules():
    for action in keys.ACTIONS:
        assert [keys.normalize(k) for k in action.keys] == list(action.keys), action.id
    assert keys.parse_bindings({}) == {}


def test_preferences_form_round_trip():
    form = {"after_submit": "queue", "rewind_s": "0", "key-loop": "alt+shift+o"}
    assert preferences.parse(form) == {
        "after_submit": "queue",
        "rewind_s": 0.0,
        "keys": {"loop": ["Alt+Shift+O"]},
    }
    with pytest.raises(preferences.Refused, match="from 0 to 5") as refused:
        preferences.parse({"after_submit": "elsewhere", "rewind_s": "9", "key-back": "Ctrl+←"})
    assert "your next task or your queue" in str(refused.value)
    assert "“Ctrl+←” edits text" in str(refused.value)


def test_settings_page_saves_and_a_bad_form_keeps_its_input(app, client, auth, reviewer):
    auth.login(reviewer.email)
    page = client.get("/settings").get_data(as_text=True)
    token = csrf_token_from(page)
    bad = client.post(
        "/settings",
        data={"csrf_token": token, "after_submit": "queue", "rewind_s": "1.5", "key-back": "K"},
    )
    assert bad.status_code == 422
    html = bad.get_data(as_text=True)
    assert "Not saved: Back 2 s: “K” would type into the text" in html
    assert 'value="K"' in html and 'value="1.5"' in html
    assert 'value="queue" checked' in html
    with app.app_context():
        assert db.session.get(User, reviewer.id).preferences == {}
    good = client.post(
        "/settings",
        data={"csrf_token": token, "after_submit": "queue", "rewind_s": "1.5", "key-back": "F7"},
    )
    assert good.status_code == 302
    with app.app_context():
        assert db.session.get(User, reviewer.id).preferences == {
            "after_submit": "queue",
            "rewind_s": 1.5,
            "keys": {"back": ["F7"]},
        }
    assert client.post("/settings", data={"after_submit": "next"}).status_code == 400  # no CSRF


def test_submit_answers_with_the_next_task_it_claimed(app, client, auth, reviewer, tmp_path):
    with app.app_context():
        samples = [make_review_sample(tmp_path, freq=freq) for freq in (300, 400)]
        for sample in samples:
            assign(sample, reviewer.id)
        sample_ids = [sample.id for sample in samples]
        first_id = str(claim(reviewer.id).id)
        rows = rows_of(latest_transcript(sample_ids[0]), latest_translation(sample_ids[0]))
    auth.login(reviewer.email)
    token = csrf_token_from(client.get(f"/tasks/{first_id}").get_data(as_text=True))
    answer = client.post(
        f"/tasks/{first_id}/submit", json={"sentences": rows}, headers={"X-CSRFToken": token}
    )
    assert answer.status_code == 200, answer.get_json()
    next_url = answer.get_json()["next_url"]
    assert next_url.startswith("/tasks/") and first_id not in next_url
    with app.app_context():
        taken = db.session.get(Assignment, next_url.rsplit("/", 1)[1])
        assert taken.status is AssignmentStatus.IN_PROGRESS and taken.reviewer_id == reviewer.id
        assert taken.sample_id == sample_ids[1]
        # With nothing left, the answer is the queue (and it says so there).
        rows = rows_of(latest_transcript(sample_ids[1]), latest_translation(sample_ids[1]))
    answer = client.post(
        next_url + "/submit", json={"sentences": rows}, headers={"X-CSRFToken": token}
    )
    assert answer.get_json()["next_url"] == "/?submitted=1"
    assert "Nothing else is waiting for you right now." in client.get("/").get_data(as_text=True)
