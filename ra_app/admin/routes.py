from flask import render_template

from . import bp
from .services import all_users, samples_per_state


@bp.route("/")
def home():
    return render_template("admin/home.html", users=all_users(), state_counts=samples_per_state())
