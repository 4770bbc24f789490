"""The sample world: agency files with planted rule cases and intake trouble, and the
ground truth of what the hub must make of them. What the demo, the tests and the
benchmarks feed the hub; not part of the hub itself (the dev and demo extras install it).
"""

from vehiclehub_samples.files import feed_file_name, write_feed
from vehiclehub_samples.generate import World, business_dates, generate_world

__all__ = ["World", "business_dates", "feed_file_name", "generate_world", "write_feed"]
