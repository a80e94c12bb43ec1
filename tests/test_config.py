import importlib

import pytest

import config


@pytest.fixture
def fresh_config(monkeypatch):
    def load(**environ):
        for key in ("DATABASE_URL", "CELERY_BROKER_URL", "APP_ENV", "SECRET_KEY", "DATA_ROOT"):
            monkeypatch.delenv(key, raising=False)
        for key, value in environ.items():
            monkeypatch.setenv(key, value)
        monkeypatch.setattr(config, "load_dotenv", lambda *a, **k: None)
        return importlib.reload(config)

    yield load
    monkeypatch.undo()
    importlib.reload(config)


def test_defaults_are_the_embedded_mode(fresh_config, tmp_path):
    cfg = fresh_config()
    assert cfg.config_from_env() is cfg.DevConfig
    assert cfg.Config.SQLALCHEMY_DATABASE_URI.startswith("sqlite:///")
    assert cfg.Config.SQLALCHEMY_DATABASE_URI.endswith("instance/review.sqlite3")
    assert cfg.Config.CELERY["task_always_eager"] is True
    assert cfg.Config.DATA_ROOT.name == "data"


def test_postgres_and_redis_switch_to_production(fresh_config):
    cfg = fresh_config(
        DATABASE_URL="postgres://u:p@db:5432/review", CELERY_BROKER_URL="redis://r:6379/0"
    )
    assert cfg.config_from_env() is cfg.ProdConfig
    assert cfg.Config.SQLALCHEMY_DATABASE_URI == "postgresql+psycopg2://u:p@db:5432/review"
    celery = cfg.Config.CELERY
    assert celery["task_always_eager"] is False
    assert celery["broker_url"] == "redis://r:6379/0"
    assert celery["task_acks_late"] and celery["task_reject_on_worker_lost"]
    assert celery["worker_prefetch_multiplier"] == 1
    assert celery["accept_content"] == ["json"]
    # Redis must not redeliver a task that is still within its time limit.
    assert celery["broker_transport_options"]["visibility_timeout"] > cfg.LONGEST_TASK_S
    assert celery["task_time_limit"] <= cfg.LONGEST_TASK_S


def test_production_refuses_to_start_without_a_secret_key(fresh_config):
    cfg = fresh_config(APP_ENV="production")
    with pytest.raises(RuntimeError, match="SECRET_KEY"):
        cfg.ProdConfig.check()
    cfg = fresh_config(APP_ENV="production", SECRET_KEY="k" * 48)
    cfg.ProdConfig.check()
