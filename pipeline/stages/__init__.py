"""One module per stage; each exposes plain functions that the Celery tasks call."""
