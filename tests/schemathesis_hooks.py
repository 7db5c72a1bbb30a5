"""The one check the schemathesis run adds to `--checks all`: a schema-valid request is refused
only for a reason that no JSON Schema can state.

`positive_data_acceptance` fails whenever a request valid against the schema gets a 4xx other than
401, 403, 404, 409 or 429. The schema states the shape of every parameter and body (patterns,
enums, bounds); what remains are refusals that depend on stored data, on geometry, or on two
values together. Those, and only those, are let through here, by their machine code; any other
refusal of valid data (an `invalid_request` from the framework, say) still fails the run.
"""

from __future__ import annotations

from typing import Any

import schemathesis
from schemathesis.openapi.checks import RejectedPositiveData
from schemathesis.specs.openapi.checks import positive_data_acceptance

DOMAIN_REFUSALS = frozenset(
    {
        # two values together: a period or box whose start lies after its end
        "period_reversed",
        "bbox_reversed",
        "bbox_outside_crs",
        "tile_outside_matrix",
        "invalid_datetime",  # a day its month lacks (2023-02-30): the pattern states the shape
        # stored data or the workflow's state
        "use_grid_operations",
        "unknown_property",  # the fields a name may take depend on the collection
        "unknown_action",
        "unknown_category",
        # a member name PostgreSQL cannot store: OpenAPI 3.0 has no propertyNames to say so
        "unstorable_name",
        "unknown_inspector_account",
        "report_county_required",  # a bulletin is per county: the account's counties decide
        # a language of its own: a CQL2 filter's grammar is more than a pattern can state
        "invalid_filter",
        "state_conflict",
        "grid_edit_refused",
        "grid_rules_broken",
        "grid_changed",
        "precondition_failed",
        # a file's or a feature's content, geometry included
        "upload_format",
        "upload_unreadable",
        "import_refused",
        "import_missing_columns",
        "import_no_key",
        "body_not_json",  # the JSON inside a multipart field
        "body_not_object",
        "missing_property",
        "invalid_feature",
    }
)


@schemathesis.check
def positive_data_accepted_or_refused_by_the_domain(
    ctx: Any, response: Any, case: Any
) -> bool | None:
    """positive_data_acceptance, except for refusals by domain rules (DOMAIN_REFUSALS)."""
    try:
        return positive_data_acceptance(ctx, response, case)
    except RejectedPositiveData:
        try:
            code = response.json().get("code")
        except (ValueError, AttributeError):
            code = None
        if code in DOMAIN_REFUSALS or str(code).startswith(("geometry_", "property_")):
            return None
        raise
