from datetime import timedelta
from uuid import UUID

import sqlalchemy as sa
from flask import abort, flash, jsonify, redirect, render_template, request, url_for
from flask_login import current_user

from ..core import lexicon as lexicon_service
from ..core import outbox
from ..core.accounts import AccountError, create_account, reset_password, set_active, set_role
from ..core.counts import samples_per_state
from ..core.models import (
    Batch,
    JobRun,
    Role,
    SourceKind,
    TaskType,
    TranscriptRevision,
    User,
    utcnow,
)
from ..core.states import ProcessingState
from ..core.tasks import claim_review
from ..extensions import db
from ..filters import audio_amount
from ..review import gold
from . import batches as batches_service
from . import bp, charts, pipeline, quality
from . import progress as batch_progress
from .forms import NewUserForm
from .services import all_users, latest_samples, recent_failures, stage_counts


@bp.route("/")
def home():
    backlog = charts.backlog_by_state()
    return render_template(
        "admin/home.html",
        charts=[charts.reviewed_per_day(), backlog, charts.per_reviewer()],
        users=all_users(),
        state_counts={bar.label: bar.value for bar in backlog.bars},
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
        failure_chart=charts.failures_by_stage(),
        state_counts=samples_per_state(),
        runs=pipeline.runs_per_stage(),
        failures=[(run, pipeline.retry_call(run) is not None) for run in failures],
        queues=pipeline.queue_lengths(),
        outbox=outbox.backlog(),
        sightings=pipeline.worker_sightings(),
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


@bp.route("/batches")
def batch_list():
    batches = db.session.scalars(sa.select(Batch).order_by(Batch.created_at.desc())).all()
    return render_template(
        "admin/batches.html",
        batches=batches,
        reports=batch_progress.batch_counts([b.id for b in batches]),
    )


def reviewers_for_form() -> list[User]:
    return list(
        db.session.scalars(sa.select(User).where(User.is_active.is_(True)).order_by(User.email))
    )


@bp.route("/batches/count")
def batch_count():
    filters = batches_service.Filters.from_args(request.args)
    count, hours = batches_service.count_matching(filters)
    return jsonify(count=count, hours=round(hours, 2), audio=audio_amount(hours))


@bp.route("/batches/new", methods=["GET", "POST"])
def batch_new():
    source = request.form if request.method == "POST" else request.args
    filters = batches_service.Filters.from_args(source)
    status = 200
    if request.method == "POST":
        ids = [int(i) for i in request.form.getlist("reviewer") if i.isdigit()]
        reviewers = list(db.session.scalars(sa.select(User).where(User.id.in_(ids))))
        weights = {}
        for reviewer in reviewers:
            raw = request.form.get(f"weight_{reviewer.id}") or "1"
            try:
                weights[reviewer.id] = float(raw)
            except ValueError:
                weights[reviewer.id] = 0.0
        cap = request.form.get("cap", type=int)
        try:
            batch = batches_service.create_batch(
                request.form.get("name", ""),
                filters,
                reviewers,
                mode=request.form.get("mode", "even"),
                weights=weights,
                cap=cap if cap and cap > 0 else None,
                review_share=(request.form.get("review_share", type=float) or 0) / 100,
                created_by=current_user,
            )
        except ValueError as error:
            flash(f"Not created: {error}.", "error")
            status = 422
        else:
            flash(f"Created batch “{batch.name}”.", "success")
            return redirect(url_for("admin.batch_detail", batch_id=batch.id))
    count, hours = batches_service.count_matching(filters)
    return render_template(
        "admin/batch_new.html",
        filters=filters,
        count=count,
        hours=hours,
        reviewers=reviewers_for_form(),
        task_types=list(TaskType),
        states=list(ProcessingState),
        kinds=list(SourceKind),
        orders=batches_service.ORDERS,
        form=request.form,  # a refused form comes back as it was sent
    ), status


@bp.route("/batches/<int:batch_id>")
def batch_detail(batch_id):
    batch = db.session.get(Batch, batch_id) or abort(404)
    report = batch_progress.batch_report(batch)
    overall, reviewers = quality.report(batch.id)
    return render_template(
        "admin/batch_detail.html",
        batch=batch,
        report=report,
        quality=overall,
        quality_rows=reviewers,
        gold_rows=quality.gold_agreement(batch.id),
        gold_answers=gold.gold_answers() if batch.task_type in gold.GOLD_TYPES else [],
        waiting_reviews=batches_service.waiting_reviews(batch),
        chart=charts.tasks_per_day(report["per_day"]),
        reviewers=reviewers_for_form(),
    )


@bp.route("/batches/<int:batch_id>/action", methods=["POST"])
def batch_action(batch_id):
    batch = db.session.get(Batch, batch_id) or abort(404)
    action = request.form.get("action")
    if action in ("pause", "resume"):
        batches_service.set_paused(batch, action == "pause")
        flash(f"Batch {action}d.", "success")
    elif action == "release":
        flash(f"Released {batches_service.release_stale()} stale lease(s).", "success")
    elif action == "reassign":
        source = db.session.get(User, request.form.get("from_user", type=int) or 0)
        target = db.session.get(User, request.form.get("to_user", type=int) or 0)
        if source is None or target is None:
            abort(400)
        moved = batches_service.reassign(batch, source, target)
        flash(f"Moved {moved} task(s) from {source.email} to {target.email}.", "success")
    elif action == "gold":
        revision = db.session.get(TranscriptRevision, request.form.get("revision_id", type=UUID))
        if revision is None:
            abort(400)
        try:
            added = gold.add_gold_tasks(batch, revision)
        except gold.GoldError as error:
            flash(f"No gold tasks added: {error}.", "error")
        else:
            flash(f"Mixed {added} hidden gold task(s) into the reviewers' queues.", "success")
    elif action == "take_review":
        task = claim_review(current_user, batch.id)
        if task is None:
            flash("No second review is waiting in this batch (your own work is not offered).")
        else:
            return redirect(url_for("review.task_page", task_id=task.id))
    else:
        abort(400)
    return redirect(url_for("admin.batch_detail", batch_id=batch.id))


@bp.route("/lexicon", methods=["GET", "POST"])
def lexicon():
    """Terms for the model's prompt: reviewers' repeated corrections arrive unapproved."""
    if request.method == "POST":
        action = request.form.get("action", "save")
        term_id = request.form.get("term_id", type=int)
        try:
            if action == "delete" and term_id:
                lexicon_service.delete_term(term_id)
                flash("Term deleted.", "success")
            else:
                term = lexicon_service.save_term(
                    request.form.get("term", ""),
                    kind=request.form.get("kind", "vocabulary"),
                    translation=request.form.get("translation") or None,
                    note=request.form.get("note") or None,
                    approved=request.form.get("approved") == "y",
                    term_id=term_id,
                    user_id=current_user.id,
                )
                flash(f"Saved “{term.term}”.", "success")
        except lexicon_service.TermError as error:
            flash(str(error), "error")
        return redirect(url_for("admin.lexicon"))
    return render_template(
        "admin/lexicon.html", terms=lexicon_service.list_terms(), kinds=lexicon_service.KINDS
    )
