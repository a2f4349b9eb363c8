"""smarter-core: the Smarter platform's core as a FastAPI + SQLAlchemy 2 async service."""

__version__ = "0.1.0"
