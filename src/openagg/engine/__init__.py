"""The loops that run the job queue: the worker, the runner of one aggregation, the
scheduler, the webhook deliverer, the write batcher, the wake-up listener, and ingest.
The queue's storage is ``openagg.queue``."""
