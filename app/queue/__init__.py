"""Background jobs: the queue protocol, Redis (saq) and in-process queues, worker, sweeper."""
