"""The caches under the services: single-flight TTL caches (`registry`), invalidation between processes
(`notify`) and the one place invalidations are derived from the rows a unit of work wrote (`rules`)."""
