.PHONY: run test lint format dispatch worker-io worker-cpu worker-llm worker-gpu

run:        ## the embedded product with demo data on 127.0.0.1:5000
	scripts/run.sh

test:       ## the whole test suite
	scripts/test.sh

lint:
	.venv/bin/ruff check .

format:
	.venv/bin/ruff format . && .venv/bin/ruff check --fix .

dispatch:   ## the outbox dispatcher: sends queued work to the broker (one per installation)
	.venv/bin/flask --app ra_app pipeline dispatch

worker-%:   ## a Celery worker for one queue, e.g. make worker-io
	.venv/bin/celery -A celery_worker worker -Q $* --loglevel INFO
