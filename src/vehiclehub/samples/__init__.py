"""Sample agency files: what the demo, the tests and the benchmark feed the hub."""

from vehiclehub.samples.files import feed_file_name, write_feed

__all__ = ["feed_file_name", "write_feed"]
