"""On-demand measurements (throughput, rate limits, memory); not part of the test suite."""
