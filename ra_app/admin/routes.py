from datetime import timedelta

from flask import abort, flash, redirect, render_template, request, url_for
from flask_login import current_user

from ..accounts import AccountError, create_account, reset_password, set_active, set_role
from ..extensions import db
from ..models import JobRun, Role, User, utcnow
from . import bp, pipeline
from .forms import NewUserForm
from .services import all_users, latest_samples, recent_failures, samples_per_state, stage_counts


@bp.route("/")
def home():
    return render_template(
        "admin/home.html",
        users=all_users(),
        state_counts=samples_per_state(),
        ingest_counts=stage_counts("ingest", since=utcnow() - timedelta(days=1)),
        failures=recent_failures(),
        samples=latest_samples(),
    )


@bp.route("/users", methods=["GET", "POST"])
def users():
    form = NewUserForm()
    if form.validate_on_submit():
        try:
            user = create_account(
                form.email.data,
                form.password.data,
                Role(form.role.data),
                in_training=form.in_training.data,
            )
        except AccountError as error:
            flash(f"Not created: {error}.", "error")
        else:
            flash(f"Created {user.email} ({user.role.value}).", "success")
            return redirect(url_for("admin.users"))
    return render_template(
        "admin/users.html", users=all_users(), form=form, roles=[r.value for r in Role]
    )


@bp.route("/users/<int:user_id>", methods=["POST"])
def user_action(user_id):
    """One endpoint for the per-user buttons (CSRF is checked for every POST)."""
    user = db.session.get(User, user_id) or abort(404)
    action = request.form.get("action")
    role = request.form.get("role", "")
    try:
        if action == "disable":
            if user.id == current_admin_id():
                raise AccountError("you cannot disable your own account")
            set_active(user, False)
        elif action == "enable":
            set_active(user, True)
        elif action == "role":
            if role not in {r.value for r in Role}:
                abort(400)
            if user.id == current_admin_id() and role != Role.ADMIN.value:
                raise AccountError("you cannot take away your own admin role")
            set_role(user, Role(role))
        elif action == "password":
            reset_password(user, request.form.get("password", ""))
        elif action == "training":
            user.in_training = request.form.get("in_training") == "y"
            db.session.commit()
        else:
            abort(400)
    except AccountError as error:
        flash(f"{user.email}: {error}.", "error")
    else:
        flash(f"{user.email}: saved.", "success")
    return redirect(url_for("admin.users"))


def current_admin_id() -> int:
    return current_user.id


@bp.route("/pipeline")
def pipeline_dashboard():
    failures = recent_failures(limit=50)
    return render_template(
        "admin/pipeline.html",
        state_counts=samples_per_state(),
        runs=pipeline.runs_per_stage(),
        failures=[(run, pipeline.retry_call(run) is not None) for run in failures],
        queues=pipeline.queue_lengths(),
        workers=pipeline.recent_workers(),
    )


@bp.route("/pipeline/runs/<int:run_id>/retry", methods=["POST"])
def retry_run(run_id):
    run = db.session.get(JobRun, run_id) or abort(404)
    try:
        task_id = pipeline.retry(run)
    except ValueError as error:
        flash(str(error), "error")
    else:
        flash(f"Sent {run.stage} on {run.subject} again (task {task_id}).", "success")
    return redirect(url_for("admin.pipeline_dashboard"))
