"""Which things of a tenant an export reads (seed 001's data-export): the filters over the thing
metadata the ingestor keeps (contracts/ingest.py ``Thing``)."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

from exporter.contracts.base import WireModel

MetricName = Annotated[str, Field(min_length=1, max_length=200)]
FilterId = Annotated[str, Field(min_length=1, max_length=200)]
Qualifier = tuple[str | None, str | None, str | None]  # product model, part, thing definition


class ThingQualifier(WireModel):
    """Which kind of thing: its product model (and part), or its thing definition."""

    product_model_id: FilterId | None = None
    product_model_part_id: FilterId | None = None
    thing_definition_id: FilterId | None = None

    @property
    def qualifier(self) -> Qualifier:
        return self.product_model_id, self.product_model_part_id, self.thing_definition_id


class ThingFilters(ThingQualifier):
    """Which things of the tenant: every filter given must hold."""

    customer_id: FilterId | None = None
    location_id: FilterId | None = None
    thing_id: FilterId | None = None
