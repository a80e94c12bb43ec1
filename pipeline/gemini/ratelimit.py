"""State shared by every worker that calls Gemini: the request rate and resting keys.

With a Redis broker (production) the state lives in Redis, so all workers on all hosts
count together; in the embedded mode (tasks run in-process) one process holds it in memory.
Both stores offer the same two operations:

* `take_slot(name, limit, window_s)` — a sliding-window log: at most `limit` requests in
  any `window_s` seconds. It returns 0 when a slot was taken, else how long to wait before
  the oldest request in the window leaves it. In Redis this is one Lua script over a sorted
  set, with Redis's own clock, so it is atomic and hosts with skewed clocks agree.
* `set_flag(name, value, ttl_s)` / `get_flag(name)` — a value that expires (a key resting
  after a quota error).
"""

from __future__ import annotations

import threading
import time
import uuid
from collections import deque

from ..errors import TransientError

PREFIX = "ra:gemini:"

TAKE_SLOT = """
local key = KEYS[1]
local limit = tonumber(ARGV[1])
local window_us = tonumber(ARGV[2])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
redis.call('ZREMRANGEBYSCORE', key, '-inf', now - window_us)
if redis.call('ZCARD', key) < limit then
  redis.call('ZADD', key, now, ARGV[3])
  redis.call('PEXPIRE', key, math.floor(window_us / 1000) + 1000)
  return 0
end
local oldest = redis.call('ZRANGE', key, 0, 0, 'WITHSCORES')
return math.max(1, tonumber(oldest[2]) + window_us - now)
"""


class MemoryStore:
    """One process's state (the embedded mode)."""

    def __init__(self):
        self.lock = threading.Lock()
        self.windows: dict[str, deque[float]] = {}
        self.flags: dict[str, tuple[float, str]] = {}

    def take_slot(self, name: str, limit: int, window_s: float) -> float:
        with self.lock:
            now = time.monotonic()
            log = self.windows.setdefault(name, deque())
            while log and log[0] <= now - window_s:
                log.popleft()
            if len(log) < limit:
                log.append(now)
                return 0.0
            return max(log[0] + window_s - now, 0.001)

    def set_flag(self, name: str, value: str, ttl_s: float) -> None:
        with self.lock:
            self.flags[name] = (time.monotonic() + ttl_s, value)

    def get_flag(self, name: str) -> str | None:
        with self.lock:
            expires, value = self.flags.get(name, (0.0, ""))
            return value if expires > time.monotonic() else None

    def clear(self) -> None:
        with self.lock:
            self.windows.clear()
            self.flags.clear()


class RedisStore:
    """State in Redis, shared by every worker of the deployment."""

    def __init__(self, url: str):
        import redis

        self.redis = redis.Redis.from_url(url)
        self.script = self.redis.register_script(TAKE_SLOT)

    def take_slot(self, name: str, limit: int, window_s: float) -> float:
        wait_us = self.script(
            keys=[PREFIX + name], args=[limit, int(window_s * 1_000_000), uuid.uuid4().hex]
        )
        return int(wait_us) / 1_000_000

    def set_flag(self, name: str, value: str, ttl_s: float) -> None:
        self.redis.set(PREFIX + name, value, px=max(1, int(ttl_s * 1000)))

    def get_flag(self, name: str) -> str | None:
        value = self.redis.get(PREFIX + name)
        return value.decode() if value is not None else None


_memory = MemoryStore()
_redis: dict[str, RedisStore] = {}
_lock = threading.Lock()


def shared_store(config) -> MemoryStore | RedisStore:
    """Redis when the Celery broker is Redis, else this process's memory."""
    url = config["CELERY"]["broker_url"] or ""
    if not url.startswith(("redis://", "rediss://", "unix://")):
        return _memory
    with _lock:
        if url not in _redis:
            _redis[url] = RedisStore(url)
        return _redis[url]


class RateLimiter:
    """At most `limit` requests per `window_s` seconds under each name, across everyone
    sharing `store` (one name per API key: each key's project has its own quota)."""

    def __init__(
        self,
        store,
        limit: int,
        *,
        window_s: float = 60.0,
        max_wait_s: float = 300.0,
        name: str = "requests",
    ):
        self.store = store
        self.limit = max(1, int(limit))
        self.window_s = window_s
        self.max_wait_s = max_wait_s
        self.name = name

    def acquire(self) -> float:
        """Wait for a slot; return the seconds waited. Raise TransientError past max_wait_s."""
        return self.acquire_any([""])[1]

    def acquire_any(self, parts: list[str]) -> tuple[int, float]:
        """Wait for a slot under any of `parts` (each with its own limit), trying them in
        order: the first is used until it is full, then the next, so every key's quota is
        used. Returns which one, and the seconds waited."""
        waited = 0.0
        while True:
            waits = []
            for i, part in enumerate(parts):
                name = f"{self.name}:{part}" if part else self.name
                wait = self.store.take_slot(name, self.limit, self.window_s)
                if wait <= 0:
                    return i, waited
                waits.append(wait)
            wait = min(waits)
            if waited + wait > self.max_wait_s:
                raise TransientError(
                    f"the Gemini rate limit ({self.limit} requests per {self.window_s:g} s "
                    f"for each of {len(parts)} key(s)) is used up by other workers",
                    "the task is retried later; raise GEMINI_REQUESTS_PER_MINUTE if the quota "
                    "allows it, or add keys",
                )
            time.sleep(wait)
            waited += wait
