"""Rules: the cross-checks of RULES.md, one registered function each."""

from vehiclehub.rules import export, licence, tax  # noqa: F401  (registers the rules)
from vehiclehub.rules.base import RULES, Rule, RuleContext, rule

__all__ = ["RULES", "Rule", "RuleContext", "rule"]
