"""Admin pages for samples and quality: the revision audit, compare, gold answers and the
quality report across batches."""

import uuid

import sqlalchemy as sa
from flask import abort, flash, redirect, render_template, request, url_for

from ..core.flags import UNUSABLE_REASONS
from ..core.models import Report, Sample
from ..extensions import db
from ..review import gold
from . import audit, bp, quality


def load_revision(sample: Sample, kind: str, revision_id):
    model = audit.KINDS.get(kind) or abort(404)
    revision = db.session.get(model, revision_id) if revision_id else None
    if revision is None or revision.sample_id != sample.id:
        abort(404)
    return revision


@bp.route("/samples")
def samples():
    query = request.args.get("q", "")
    return render_template("admin/samples.html", samples=audit.find_samples(query), query=query)


@bp.route("/samples/<uuid:sample_id>")
def sample_detail(sample_id):
    sample = db.session.get(Sample, sample_id) or abort(404)
    return render_template(
        "admin/sample.html",
        sample=sample,
        history={kind: audit.history(sample.id, kind) for kind in audit.KINDS},
        tasks=audit.sample_tasks(sample.id),
        segments=audit.segments_of(sample.id),
        segmentation_reviews=audit.segmentation_reviews(sample),
        reports=db.session.scalars(
            sa.select(Report).where(Report.sample_id == sample.id).order_by(Report.created_at)
        ).all(),
        reasons=UNUSABLE_REASONS,
    )


@bp.route("/samples/<uuid:sample_id>/<kind>/<uuid:revision_id>")
def revision_detail(sample_id, kind, revision_id):
    sample = db.session.get(Sample, sample_id) or abort(404)
    revision = load_revision(sample, kind, revision_id)
    return render_template(
        "admin/revision.html",
        sample=sample,
        kind=kind,
        revision=revision,
        rows=audit.revision_rows(kind, revision),
        field=audit.field_of(kind),
    )


@bp.route("/samples/<uuid:sample_id>/compare")
def compare(sample_id):
    sample = db.session.get(Sample, sample_id) or abort(404)
    kind = request.args.get("kind", "transcript")
    a = load_revision(sample, kind, request.args.get("a", type=uuid.UUID))
    b = load_revision(sample, kind, request.args.get("b", type=uuid.UUID))
    older, newer = sorted((a, b), key=lambda r: r.version)
    return render_template(
        "admin/compare.html",
        sample=sample,
        kind=kind,
        older=older,
        newer=newer,
        field=audit.field_of(kind),
        result=audit.compare(kind, older, newer),
    )


@bp.route("/samples/<uuid:sample_id>/gold", methods=["POST"])
def set_gold(sample_id):
    sample = db.session.get(Sample, sample_id) or abort(404)
    revision = load_revision(sample, "transcript", request.form.get("revision_id", type=uuid.UUID))
    marking = request.form.get("gold") == "y"
    gold.set_gold(revision, marking)
    flash(
        f"Version {revision.version} is {'now' if marking else 'no longer'} the gold answer.",
        "success",
    )
    return redirect(url_for("admin.sample_detail", sample_id=sample.id))


@bp.route("/quality")
def quality_report():
    overall, reviewers = quality.report()
    return render_template(
        "admin/quality.html",
        overall=overall,
        reviewers=reviewers,
        gold_rows=quality.gold_agreement(),
        answers=gold.gold_answers(),
    )
