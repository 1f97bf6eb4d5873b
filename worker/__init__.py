"""The runtime: configuration, the Celery app, the single writer and the stack launcher."""
