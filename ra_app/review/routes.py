import logging
from pathlib import Path

from flask import (
    abort,
    flash,
    jsonify,
    redirect,
    render_template,
    request,
    send_from_directory,
    url_for,
)
from flask_login import current_user
from sqlalchemy.exc import SQLAlchemyError

from ..core import logs
from ..core.models import Assignment, TaskType
from ..core.tasks import (
    claim_next,
    current_task,
    release_expired_leases,
    reopen_returned,
    waiting_for,
)
from ..extensions import db
from . import bp, keys, media, preferences, reports
from .drafts import lock_task, save_draft, touch
from .errors import TaskError
from .page import opening_analysis, task_data
from .services import my_queue
from .work import decide, submit

log = logging.getLogger(__name__)

VENDOR = {
    # url prefix -> folder of an npm package's built files (installed by scripts/setup.sh)
    "wavesurfer": Path(__file__).resolve().parents[2] / "node_modules/wavesurfer.js/dist",
}


@bp.route("/")
def home():
    # Tasks whose lease ran out are waiting again: counted, as "Start next" would find them.
    release_expired_leases()
    db.session.commit()
    waiting = waiting_for(current_user)
    return render_template(
        "review/queue.html",
        queue=my_queue(current_user.id),
        waiting=waiting,
        total=sum(sum(counts.values()) for counts in waiting.values()),
        held=current_task(current_user.id),
    )


@bp.route("/tasks/next", methods=["POST"])
def start_next():
    task_type = request.form.get("task_type") or None
    if task_type not in (None, *[t.value for t in TaskType]):
        abort(400)
    task = claim_next(current_user, TaskType(task_type) if task_type else None)
    if task is None:
        flash("No task is waiting for you right now.", "info")
        return redirect(url_for("review.home"))
    return redirect(url_for("review.task_page", task_id=task.id))


def load_task(task_id) -> Assignment:
    """The task, if this user may see it: its reviewer, or an admin."""
    task = db.session.get(Assignment, task_id)
    if task is None:
        abort(404)
    if task.reviewer_id != current_user.id and not current_user.is_admin:
        abort(403)
    logs.bind(sample_id=task.sample_id)
    return task


def task_urls(task: Assignment) -> dict:
    return {
        name: url_for(f"review.task_{name}", task_id=task.id)
        for name in ("audio", "peaks", "analysis", "draft", "submit", "touch", "decide", "report")
    } | {"queue": url_for("review.home")}


@bp.route("/tasks/<uuid:task_id>")
def task_page(task_id):
    task = load_task(task_id)
    reopen_returned(task, current_user)
    data = task_data(task, current_user, task_urls(task))
    return render_template("review/task.html", task=task, data=data)


@bp.route("/tasks/<uuid:task_id>/audio")
def task_audio(task_id):
    return media.audio_response(load_task(task_id))


@bp.route("/tasks/<uuid:task_id>/analysis")
def task_analysis(task_id):
    return jsonify(opening_analysis(load_task(task_id)))


@bp.route("/tasks/<uuid:task_id>/peaks")
def task_peaks(task_id):
    task = load_task(task_id)
    max_points = min(max(request.args.get("max_points", 20000, type=int), 100), 200000)
    response = jsonify(media.task_peaks(task, max_points))
    response.cache_control.private = True
    response.cache_control.max_age = 3600
    return response


def json_call(action, task_id):
    """A change to a task: its row locked for the request, its body checked, and every
    refusal a JSON answer that says why (the page keeps the work and tells the reviewer)."""
    payload = request.get_json(silent=True)
    if not isinstance(payload, dict):
        return jsonify(error="invalid", message="The request had no JSON body."), 400
    task = lock_task(task_id)
    if task is None:
        abort(404)
    if task.reviewer_id != current_user.id and task.lease_lost_by_id != current_user.id:
        if reports.given_back_by(task, current_user):  # a second tab, a double click
            db.session.rollback()
            return jsonify(error="already_submitted", message=reports.GIVEN_BACK), 409
        abort(403)  # admins read others' tasks; nobody changes them
    try:
        return jsonify(action(task, current_user, payload))
    except TaskError as error:
        db.session.rollback()
        return jsonify(error=error.code, message=str(error), **error.details), error.status


@bp.route("/tasks/<uuid:task_id>/draft", methods=["POST"])
def task_draft(task_id):
    return json_call(save_draft, task_id)


def submit_and_confirm(task, user, payload):
    result = submit(task, user, payload)
    flash(f"Submitted: {task.sample.title}, {task.task_type.value.replace('_', ' ')}.", "success")
    return result | {"next_url": next_url(user, task.task_type)}


def next_url(user, task_type: TaskType) -> str:
    """Where the page goes after a submit or a decision (it is committed by then): the
    reviewer's next task, of the same type if one waits, else of any type; or the queue,
    when that is their setting or nothing is waiting."""
    queue = url_for("review.home", submitted=1)
    if preferences.preferences_of(user)["after_submit"] != "next":
        return queue
    try:
        task = claim_next(user, task_type) or claim_next(user)
    except SQLAlchemyError:  # the submit is committed: it must not read as failed
        db.session.rollback()
        log.exception("claiming the next task after a submit failed")
        task = None
    if task is None:
        flash("Nothing else is waiting for you right now.", "info")
        return queue
    return url_for("review.task_page", task_id=task.id)


@bp.route("/tasks/<uuid:task_id>/submit", methods=["POST"])
def task_submit(task_id):
    return json_call(submit_and_confirm, task_id)


def report_and_confirm(task, user, payload):
    result = reports.report(task, user, payload)
    flash(result["message"], "success")
    return result | {"next_url": next_url(user, task.task_type)}


@bp.route("/tasks/<uuid:task_id>/report", methods=["POST"])
def task_report(task_id):
    return json_call(report_and_confirm, task_id)


@bp.route("/tasks/<uuid:task_id>/touch", methods=["POST"])
def task_touch(task_id):
    return json_call(touch, task_id)


def decide_and_confirm(task, user, payload):
    result = decide(task, user, payload)
    said = "Sent back to its author" if result["decision"] == "reject" else "Approved"
    flash(f"{said}: {task.sample.title}, {task.task_type.value.replace('_', ' ')}.", "success")
    return result | {"next_url": next_url(user, task.task_type)}


@bp.route("/tasks/<uuid:task_id>/decide", methods=["POST"])
def task_decide(task_id):
    return json_call(decide_and_confirm, task_id)


@bp.route("/settings", methods=["GET", "POST"])
def settings():
    """The reviewer's own keys and habits; a form with a mistake comes back as it was sent."""
    form, problem = None, None
    if request.method == "POST":
        form = request.form
        try:
            current_user.preferences = preferences.parse(form)
        except preferences.Refused as error:
            problem = str(error)
        else:
            db.session.commit()
            flash("Your settings are saved; they apply on every page you open from now.", "success")
            return redirect(url_for("review.settings"))
    return render_template(
        "review/settings.html",
        prefs=preferences.preferences_of(current_user),
        form=form,
        problem=problem,
        actions=keys.ACTIONS,
        choices=preferences.AFTER_SUBMIT,
    ), (422 if problem else 200)


@bp.route("/vendor/<package>/<path:filename>")
def vendor(package, filename):
    folder = VENDOR.get(package)
    if folder is None or not filename.endswith(".js"):
        abort(404)
    # send_from_directory refuses paths that leave the folder.
    return send_from_directory(folder, filename, mimetype="text/javascript", max_age=86400)
