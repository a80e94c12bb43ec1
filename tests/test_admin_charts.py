"""Admin pages that read at a glance: the charts are drawn from the same figures as the
tables and the work done, and a sample's page shows its segments and each segmentation
review's boundaries before and after."""

from __future__ import annotations

import re

from pipeline.jobs import claim as claim_run
from pipeline.jobs import finish
from ra_app.core.models import FailureClass, JobStatus, TaskType

from .review_helpers import assign, claim, make_review_sample, segmented_sample
from .test_review_concurrency import signed_in
from .test_review_flow import post_json
from .test_staged_review import rows_now


def bars(page: str, chart: str) -> dict[str, float]:
    """A chart's bars as {label: value}, read from the SVG."""
    figure = re.search(rf'<figure class="chart" data-chart="{chart}">(.*?)</figure>', page, re.S)
    assert figure, f"no chart {chart}"
    found = re.findall(
        r'<g class="bar" data-label="([^"]*)" data-value="([^"]*)">', figure.group(1)
    )
    return {label: float(value) for label, value in found}


def test_the_charts_show_the_figures_of_the_work_done(app, admin, reviewer, tmp_path):
    with app.app_context():
        sample = make_review_sample(tmp_path, duration_s=30.0)
        assign(sample, reviewer.id)
        task_id, sample_id = str(claim(reviewer.id).id), sample.id
        run = claim_run("segment", str(sample_id), sample_id=sample_id)
        finish(run, JobStatus.FAILED, error="boom", failure_class=FailureClass.PERMANENT)
    me, token = signed_in(app, reviewer.email)
    rows = rows_now(app, sample_id)
    assert post_json(me, f"/tasks/{task_id}/submit", {"sentences": rows}, token).status_code == 200

    admin_client, _ = signed_in(app, admin.email)
    home = admin_client.get("/admin/").get_data(as_text=True)
    # Backlog: the chart and the table beside it read the same counts.
    backlog = bars(home, "backlog")
    table = dict(
        re.findall(r'<tr><td>([a-z ]+)</td><td data-state="[a-z_]+">(\d+)</td></tr>', home)
    )
    assert backlog == {label: float(count) for label, count in table.items()}
    assert backlog["reviewed"] == 1.0
    # Today's reviewed audio is the task's 30 s; the reviewer's week too.
    per_day = bars(home, "reviewed-per-day")
    assert len(per_day) == 14 and list(per_day.values())[-1] * 3600 == 30.0
    assert bars(home, "per-reviewer") == {reviewer.email: 30.0 / 3600}
    assert "Audio reviewed per reviewer, last 7 days" in home
    pipeline_page = admin_client.get("/admin/pipeline").get_data(as_text=True)
    assert bars(pipeline_page, "failures") == {"segment": 1.0}


def test_the_sample_page_shows_segments_and_boundaries_before_and_after(
    app, admin, reviewer, tmp_path
):
    with app.app_context():
        sample = segmented_sample(tmp_path, 45.0, [0.0, 15.0, 30.0, 44.5])
        assign(sample, reviewer.id, TaskType.AUDIO_SEGMENTATION)
        task_id, sample_id = str(claim(reviewer.id).id), sample.id
    me, token = signed_in(app, reviewer.email)
    cut = [{"start": 0.0, "end": 20.0}, {"start": 20.0, "end": 44.5}]
    assert post_json(me, f"/tasks/{task_id}/submit", {"segments": cut}, token).status_code == 200
    admin_client, _ = signed_in(app, admin.email)
    page = admin_client.get(f"/admin/samples/{sample_id}").get_data(as_text=True)
    segments = re.findall(
        r'<tr data-segment="\d+"><td class="num">\d+</td><td>([\d:.]+)</td><td>([\d:.]+)</td>', page
    )
    assert segments == [("0:00.00", "0:20.00"), ("0:20.00", "0:44.50")]
    before = re.search(r'data-cut="before">.*?<span class="cut-times">(.*?)</span>', page, re.S)
    after = re.search(r'data-cut="after">.*?<span class="cut-times">(.*?)</span>', page, re.S)
    assert before.group(1) == "0:00.00–0:15.00 · 0:15.00–0:30.00 · 0:30.00–0:44.50"
    assert after.group(1) == "0:00.00–0:20.00 · 0:20.00–0:44.50"
