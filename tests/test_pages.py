import re

from ra_app.core.counts import samples_per_state
from ra_app.core.states import ProcessingState


def test_reviewer_home_has_an_honest_empty_state(client, auth, reviewer):
    auth.login(reviewer.email)
    page = client.get("/").get_data(as_text=True)
    assert "Nothing to review right now." in page
    assert "Admin</a>" not in page  # reviewers are not shown the admin link


def test_admin_home_counts_samples_per_state(app, client, auth, admin, make_sample):
    for _ in range(3):
        make_sample(ProcessingState.INGESTED)
    make_sample(ProcessingState.REVIEWED)
    auth.login(admin.email)
    page = client.get("/admin/").get_data(as_text=True)
    shown = dict(re.findall(r'data-state="([a-z_]+)">(\d+)<', page))
    assert shown["ingested"] == "3"
    assert shown["reviewed"] == "1"
    assert shown["exported"] == "0"
    assert set(shown) == {s.value for s in ProcessingState}
    with app.app_context():
        assert samples_per_state()[ProcessingState.INGESTED] == 3
    assert admin.email in page


def test_assets_are_served_by_the_app(client, auth, reviewer):
    auth.login(reviewer.email)
    page = client.get("/").get_data(as_text=True)
    for url in re.findall(r'(?:href|src)="([^"]+\.(?:css|js))"', page):
        assert url.startswith("/static/"), f"asset from elsewhere: {url}"
        assert client.get(url).status_code == 200
    assert "http://" not in page and "https://" not in page


def test_unknown_page_is_a_404_page(client, auth, reviewer):
    auth.login(reviewer.email)
    response = client.get("/no-such-page")
    assert response.status_code == 404
    assert "There is nothing at this address." in response.get_data(as_text=True)
