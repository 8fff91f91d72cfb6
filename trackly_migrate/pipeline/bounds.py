"""The numeric bounds of an import's limits, kept apart from ``request`` so the command line
can show them as defaults without importing the pipeline (and httpx) to start."""

MAX_BATCH_SIZE = 1000
MAX_CONCURRENCY = 64
DEFAULT_CONCURRENCY = 16
# CONTRACT.md: a request body over 10 MiB is refused whole (413 payload_too_large).
MAX_BODY_BYTES = 10 * 1024 * 1024
