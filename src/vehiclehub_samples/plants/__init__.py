"""The rules' planted cases, one module per rule family as ``vehiclehub.rules`` has them.

* :data:`PLANTS`, per rule id: bend a few stories so that exactly that rule fires
  (:meth:`Stories.set` changes a story's steps and parties, :meth:`Stories.override` one
  record that differs from its story), and say which records the findings are on
  (``@plant("LIC-006")``).
* :data:`NEAR_MISSES`, per rule id: stories that come close to the rule and must not
  fire it.
* :data:`STORY_NOISE`: trouble whose consequences are findings, planted in the stories
  before their records are built: a clerk types a VIN over in one feed's copy
  (:mod:`.typos`).

Adding a case is adding one small function to its family's module.
"""

from vehiclehub_samples.plants import (  # noqa: F401  (each registers its cases)
    export,
    licence,
    police,
    quality,
    service,
    tax,
    tradein,
    typos,
)
from vehiclehub_samples.plants.registry import (
    NEAR_MISSES,
    ORDER,
    PLANTS,
    STORY_NOISE,
    Planted,
    expected_frame,
    near_miss,
    plant,
    plant_all,
    story_noise,
)

__all__ = [
    "NEAR_MISSES",
    "ORDER",
    "PLANTS",
    "STORY_NOISE",
    "Planted",
    "expected_frame",
    "near_miss",
    "plant",
    "plant_all",
    "story_noise",
]
