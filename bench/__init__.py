"""The benchmark harness (`make bench`): the service on PostgreSQL against a plain FastAPI ceiling.

One uvicorn worker pinned to CPU 0, the load generator pinned to CPU 1, loopback only; every scenario is
warmed up, run three times, and reported as the median, with its throughput as a ratio to the ceiling
measured in the same run (absolute numbers depend on the machine, ratios much less).
"""

from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent
RESULTS_DIR = Path(__file__).resolve().parent / "results"
