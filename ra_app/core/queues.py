"""Which queue each stage's task runs on; a worker host consumes the queues its hardware suits."""

QUEUES = ("io", "cpu", "llm", "gpu")

STAGE_QUEUES = {
    "ingest": "io",
    "export": "io",
    "backup": "io",
    "peaks": "cpu",
    "segment": "cpu",
    "denoise": "cpu",
    "gemini": "llm",
    "gemini_repair": "llm",
    "align": "gpu",
    "denoise_gpu": "gpu",
    "selftest": "io",
}


def task_routes(name: str, args, kwargs, options, task=None, **kw):
    """Route `pipeline.<stage>` tasks to their stage's queue."""
    if name.startswith("pipeline."):
        stage = name.removeprefix("pipeline.").split(".")[0]
        if stage in STAGE_QUEUES:
            return {"queue": STAGE_QUEUES[stage]}
    return None
