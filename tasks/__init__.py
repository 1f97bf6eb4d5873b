"""Job kinds: each a pure function that does the work, and a thin Celery task around it."""
