"""Great Expectations 1.x in this process: one ephemeral context, quiet and offline.

GX is imported on first use only (it takes seconds to import), with its analytics
off (the hub runs where nothing should phone home) and its progress bars off (batch
runs log, they do not draw). Every suite validates through one pandas data asset per
feed whose batch is the whole quality frame of a file.
"""

from __future__ import annotations

import os
from functools import cache
from typing import TYPE_CHECKING, Any

from vehiclehub.quality.suites import ExpectationSpec

if TYPE_CHECKING:  # pragma: no cover
    from great_expectations.core.batch_definition import BatchDefinition
    from great_expectations.data_context.data_context.abstract_data_context import (
        AbstractDataContext,
    )

DATASOURCE = "vehiclehub"


@cache
def gx() -> Any:
    """The ``great_expectations`` module, imported with analytics off."""
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
    import great_expectations

    from vehiclehub.quality import custom_expectations  # noqa: F401  (registers them)

    return great_expectations


def new_context() -> AbstractDataContext:
    """A fresh ephemeral GX context: no analytics, no progress bars, no default docs site."""
    from great_expectations.data_context.types.base import (
        DataContextConfig,
        InMemoryStoreBackendDefaults,
        ProgressBarsConfig,
    )

    config = DataContextConfig(
        store_backend_defaults=InMemoryStoreBackendDefaults(init_temp_docs_sites=False),
        analytics_enabled=False,
        progress_bars=ProgressBarsConfig(globally=False, metric_calculations=False),
    )
    context: AbstractDataContext = gx().get_context(mode="ephemeral", project_config=config)
    return context


@cache
def context() -> AbstractDataContext:
    """This process's context for validating files."""
    return new_context()


@cache
def batch_definition(asset: str) -> BatchDefinition[Any]:
    """A whole-dataframe batch definition for one feed's files."""
    ctx = context()
    try:
        source = ctx.data_sources.get(DATASOURCE)
    except (KeyError, ValueError):
        source = ctx.data_sources.add_pandas(DATASOURCE)
    definition: BatchDefinition[Any] = source.add_dataframe_asset(  # type: ignore[attr-defined]
        asset
    ).add_batch_definition_whole_dataframe("file")
    return definition


def name_data_asset(meta: dict[str, Any]) -> None:
    """Name a validation result's data asset where Data Docs read it.

    GX records the asset validated in ``active_batch_definition``, but its validation
    page reads ``batch_spec.data_asset_name``, which a dataframe batch leaves out: the
    page would say "Data asset: None". The feed's asset (:func:`batch_definition`) is
    copied there.
    """
    asset = (meta.get("active_batch_definition") or {}).get("data_asset_name")
    if asset and not (meta.get("batch_spec") or {}).get("data_asset_name"):
        meta["batch_spec"] = {**(meta.get("batch_spec") or {}), "data_asset_name": asset}


def configuration(spec: ExpectationSpec) -> Any:
    """A GX ``ExpectationConfiguration`` for an expectation of a suite file."""
    from great_expectations.expectations.expectation_configuration import (
        ExpectationConfiguration,
    )
    from great_expectations.expectations.metadata_types import FailureSeverity

    gx()
    return ExpectationConfiguration(
        type=spec.type,
        kwargs=spec.kwargs,
        meta=spec.meta,
        notes=spec.notes or None,
        severity=FailureSeverity(spec.severity),
    )


def expectation(spec: ExpectationSpec) -> Any:
    """The GX expectation object; an error in it is reported, never raised mid-run."""
    built = configuration(spec).to_domain_obj()
    built.catch_exceptions = True
    return built


def suite(name: str, expectations: list[ExpectationSpec]) -> Any:
    """A GX suite (not stored in any context) of the given expectations."""
    return gx().ExpectationSuite(name=name, expectations=[expectation(e) for e in expectations])
