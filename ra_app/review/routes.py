from flask import render_template
from flask_login import current_user

from . import bp
from .services import my_queue


@bp.route("/")
def home():
    return render_template("review/queue.html", queue=my_queue(current_user.id))
