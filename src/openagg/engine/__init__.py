"""The job queue, workers, the runner of one aggregation, the scheduler and ingest."""
