"""Which queue each stage's task runs on; a worker host consumes the queues its hardware suits."""

# WhisperX and DeepFilterNet pin conflicting libraries, so each runs in its own environment
# and has its own queue: a GPU host runs one worker per environment it has.
QUEUES = ("io", "cpu", "llm", "gpu", "gpu_denoise")

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
    "denoise_gpu": "gpu_denoise",
    "selftest": "io",
    "webhooks": "io",
}


def task_routes(name: str, args, kwargs, options, task=None, **kw):
    """Route `pipeline.<stage>` tasks to their stage's queue."""
    if name.startswith("pipeline."):
        stage = name.removeprefix("pipeline.").split(".")[0]
        if stage in STAGE_QUEUES:
            return {"queue": STAGE_QUEUES[stage]}
    return None
