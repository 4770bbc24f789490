"""Rules: the cross-checks of RULES.md, one registered function each."""

from vehiclehub.rules import (  # noqa: F401  (registers the rules)
    export,
    licence,
    police,
    quality,
    service,
    tax,
    tradein,
)
from vehiclehub.rules.base import RULES, Rule, RuleContext, rule

__all__ = ["RULES", "Rule", "RuleContext", "rule"]
