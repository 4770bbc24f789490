"""Expectations GX 1.x lacks, registered under their snake_case names by subclassing.

Imported by :func:`vehiclehub.quality.runtime.gx` (it imports GX at module level).
"""

from __future__ import annotations

from typing import Any

from great_expectations.expectations.core.expect_table_row_count_to_equal import (
    ExpectTableRowCountToEqual,
)
from great_expectations.render.components import LegacyRendererType
from great_expectations.render.renderer.renderer import renderer
from great_expectations.render.renderer_configuration import (
    RendererConfiguration,
    RendererValueType,
)


class ExpectTableRowCountToNotEqual(ExpectTableRowCountToEqual):
    """Expect the number of rows to differ from a value.

    A customs exporter habitually cuts files at exactly 10,000 rows: a file of that
    size is likely the first part of a longer one.
    """

    class Config:
        title = "Expect table row count to not equal"

    @classmethod
    def _prescriptive_template(
        cls, renderer_configuration: RendererConfiguration[Any]
    ) -> RendererConfiguration[Any]:
        renderer_configuration.add_param(name="value", param_type=RendererValueType.NUMBER)
        renderer_configuration.template_str = "Must not have exactly $value rows."
        return renderer_configuration

    @classmethod
    @renderer(renderer_type=LegacyRendererType.PRESCRIPTIVE)
    def _prescriptive_renderer(
        cls,
        configuration: Any = None,
        result: Any = None,
        runtime_configuration: dict[str, Any] | None = None,
    ) -> list[Any]:
        from great_expectations.render.components import RenderedStringTemplateContent

        value = (configuration.kwargs if configuration else {}).get("value")
        return [
            RenderedStringTemplateContent(
                content_block_type="string_template",
                string_template={
                    "template": "Must not have exactly $value rows.",
                    "params": {"value": value},
                    "styling": (runtime_configuration or {}).get("styling", {}),
                },
            )
        ]

    def _validate(
        self,
        metrics: dict[str, Any],
        runtime_configuration: dict[str, Any] | None = None,
        execution_engine: Any = None,
    ) -> dict[str, Any]:
        unwanted = self._get_success_kwargs().get("value")
        observed = metrics.get("table.row_count")
        return {"success": observed != unwanted, "result": {"observed_value": observed}}
