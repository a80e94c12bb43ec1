from datetime import timedelta

from flask import render_template

from ..models import utcnow
from . import bp
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
