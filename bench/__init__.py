"""`make bench`: throughput and latency from one run on the embedded broker."""
