"""Prometheus metrics of the service (GET /metrics, Prometheus' text format).

Each app has its own registry. Several worker processes (--workers N) each count their own
requests; set PROMETHEUS_MULTIPROC_DIR (an empty folder, before start) and /metrics adds up all
of them (prometheus_client's multiprocess mode), or run one worker per container and let
Prometheus scrape every pod.
"""
import os

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.multiprocess import MultiProcessCollector

CONTENT_TYPE = CONTENT_TYPE_LATEST
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256)


class Metrics:
    def __init__(self):
        self.registry = CollectorRegistry()
        self.requests = Counter("aidetect_requests", "HTTP requests by endpoint and status",
                                ["endpoint", "status"], registry=self.registry)
        self.latency = Histogram("aidetect_request_seconds", "Time from request to response, by endpoint",
                                 ["endpoint"], buckets=LATENCY_BUCKETS, registry=self.registry)
        self.images = Counter("aidetect_images", "Files answered, by outcome (classified, or unreadable: "
                              "an error record)", ["outcome"], registry=self.registry)
        self.batch_images = Histogram("aidetect_batch_images", "Images per model call",
                                      buckets=BATCH_BUCKETS, registry=self.registry)

    def exposition(self) -> bytes:
        if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
            registry = CollectorRegistry()
            MultiProcessCollector(registry)
            return generate_latest(registry)
        return generate_latest(self.registry)
