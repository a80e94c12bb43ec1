"""Admin pages for reviewers' reports: tasks given back and audio reported unusable, and
their reversal (review/reports.py)."""

import sqlalchemy as sa
from flask import abort, flash, redirect, render_template, url_for
from flask_login import current_user

from ..core.flags import UNUSABLE_REASONS
from ..core.models import Report
from ..extensions import db
from ..review import reports
from . import bp


@bp.route("/reports")
def report_list():
    rows = db.session.scalars(
        sa.select(Report)
        .order_by(Report.reversed_at.is_not(None), Report.created_at.desc())
        .limit(500)
    ).all()
    return render_template("admin/reports.html", reports=rows, reasons=UNUSABLE_REASONS)


@bp.route("/reports/<int:report_id>/reverse", methods=["POST"])
def report_reverse(report_id):
    try:
        entry = reports.reverse(report_id, current_user)
    except LookupError:
        abort(404)
    except reports.AlreadyReversed as error:
        db.session.rollback()
        flash(str(error), "info")
    else:
        title = entry.sample.title or entry.sample_id
        if entry.kind.value == "unusable":
            flash(f"Report reversed: {title} is back in the queues.", "success")
        else:
            flash(f"Report reversed: {title} may go to the reviewer who skipped it.", "success")
    return redirect(url_for("admin.report_list"))
