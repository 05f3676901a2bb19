"""CRM objects (contacts, companies, deals, tickets, notes), properties and associations.

Behaviour follows HubSpot where the gateway depends on it: unknown properties are rejected,
contacts are unique by email (409 naming the existing id), properties with ``hasUniqueValue``
refuse duplicates and serve as ``idProperty``, and associations are stored in both directions.
"""

from __future__ import annotations

import functools
import json
from typing import Any

from aiohttp import web
from hubspot_sdk.types.crm.objects import (
    company_create_params,
    company_search_params,
    company_update_params,
    contact_create_params,
    contact_search_params,
    contact_update_params,
    deal_create_params,
    deal_search_params,
    deal_update_params,
    note_create_params,
    note_search_params,
    note_update_params,
    ticket_create_params,
    ticket_search_params,
    ticket_update_params,
)
from hubspot_sdk.types.crm.property_create_params import PropertyCreateParams
from hubspot_sdk.types.shared_params.association_spec import AssociationSpec

from .contract import CONTRACTS, check, expects
from .errors import ApiError, bad_request, json_response, not_found, read_json
from .keys import STATE
from .oauth import require
from .state import SandboxState, iso

# canonical name -> (objectTypeId, singular)
TYPES: dict[str, tuple[str, str]] = {
    "contacts": ("0-1", "contact"),
    "companies": ("0-2", "company"),
    "deals": ("0-3", "deal"),
    "tickets": ("0-5", "ticket"),
    "notes": ("0-46", "note"),
    "conversations": ("0-11", "conversation"),
}
ALIASES = {name: name for name in TYPES}
ALIASES.update({single: name for name, (_, single) in TYPES.items()})
ALIASES.update({tid: name for name, (tid, _) in TYPES.items()})

# (from, to) -> default HUBSPOT_DEFINED association type id
ASSOCIATION_TYPES: dict[tuple[str, str], int] = {
    ("contacts", "companies"): 1,
    ("companies", "contacts"): 2,
    ("deals", "contacts"): 3,
    ("contacts", "deals"): 4,
    ("deals", "companies"): 5,
    ("companies", "deals"): 6,
    ("contacts", "tickets"): 15,
    ("tickets", "contacts"): 16,
    ("deals", "tickets"): 27,
    ("tickets", "deals"): 28,
    ("conversations", "tickets"): 31,
    ("tickets", "conversations"): 32,
    ("tickets", "companies"): 339,
    ("companies", "tickets"): 340,
    ("contacts", "notes"): 201,
    ("notes", "contacts"): 202,
    ("companies", "notes"): 189,
    ("notes", "companies"): 190,
    ("deals", "notes"): 213,
    ("notes", "deals"): 214,
    ("tickets", "notes"): 227,
    ("notes", "tickets"): 228,
}
# Extra ids HubSpot also accepts for a pair (ticket -> conversation 278).
EXTRA_TYPE_IDS: dict[int, tuple[str, str]] = {278: ("tickets", "conversations")}
TYPE_ID_PAIRS = {v: k for k, v in ASSOCIATION_TYPES.items()} | EXTRA_TYPE_IDS

DEFAULT_PROPERTIES: dict[str, list[str]] = {
    "contacts": [
        "email",
        "firstname",
        "lastname",
        "phone",
        "company",
        "website",
        "jobtitle",
        "lifecyclestage",
        "hubspot_owner_id",
    ],
    "companies": ["name", "domain", "phone", "city", "industry", "hubspot_owner_id"],
    "deals": ["dealname", "amount", "dealstage", "pipeline", "closedate", "hubspot_owner_id"],
    "tickets": [
        "subject",
        "content",
        "hs_pipeline",
        "hs_pipeline_stage",
        "hs_ticket_priority",
        "hubspot_owner_id",
        "hs_ticket_category",
        "source_type",
    ],
    "notes": ["hs_note_body", "hs_timestamp", "hubspot_owner_id", "hs_attachment_ids"],
}
READ_ONLY = ["hs_object_id", "createdate", "hs_lastmodifieddate", "lastmodifieddate"]
SHOWN_BY_DEFAULT: dict[str, list[str]] = {
    "contacts": ["email", "firstname", "lastname"],
    "companies": ["name", "domain"],
    "deals": ["dealname", "amount", "dealstage", "pipeline", "closedate"],
    "tickets": [
        "subject",
        "content",
        "hs_pipeline",
        "hs_pipeline_stage",
        "hs_ticket_priority",
        "hubspot_owner_id",
    ],
    "notes": ["hs_note_body", "hs_timestamp"],
}
PRIORITIES = ("LOW", "MEDIUM", "HIGH", "URGENT")


def object_type(name: str) -> str:
    canonical = ALIASES.get(name.lower())
    if canonical is None:
        raise bad_request(f"Unable to infer object type from: {name}")
    return canonical


def crm_type(name: str) -> str:
    """A CRM object type with records (conversations are threads, not CRM records here)."""
    canonical = object_type(name)
    if canonical == "conversations":
        raise bad_request(f"Unable to infer object type from: {name}")
    return canonical


def scopes(otype: str, write: bool) -> tuple[str, ...]:
    if otype == "tickets":
        return ("tickets",)
    if otype == "notes":
        return (
            ("crm.objects.contacts.write",)
            if write
            else ("crm.objects.contacts.read", "crm.objects.contacts.write", "tickets")
        )
    kind = "write" if write else "read"
    return (
        (f"crm.objects.{otype}.{kind}",)
        if write
        else (f"crm.objects.{otype}.read", f"crm.objects.{otype}.write")
    )


# --- properties -------------------------------------------------------------------------------


def property_definition(name: str, **overrides: Any) -> dict[str, Any]:
    ts = iso(0)
    prop = {
        "name": name,
        "label": name.replace("_", " ").title(),
        "type": "string",
        "fieldType": "text",
        "description": "",
        "groupName": "sandbox",
        "options": [],
        "displayOrder": -1,
        "calculated": False,
        "externalOptions": False,
        "hasUniqueValue": False,
        "hidden": False,
        "hubspotDefined": True,
        "formField": False,
        "archived": False,
        "createdAt": ts,
        "updatedAt": ts,
        "modificationMetadata": {
            "archivable": False,
            "readOnlyDefinition": True,
            "readOnlyValue": name in READ_ONLY,
        },
    }
    prop.update(overrides)
    return prop


def all_properties(state: SandboxState, otype: str) -> dict[str, dict[str, Any]]:
    props = {n: property_definition(n) for n in DEFAULT_PROPERTIES[otype] + READ_ONLY}
    if otype == "contacts":
        props["email"]["hasUniqueValue"] = True
    props.update(state.data["properties"][otype])
    return props


def unique_properties(state: SandboxState, otype: str) -> list[str]:
    return [n for n, p in all_properties(state, otype).items() if p.get("hasUniqueValue")]


# --- records ------------------------------------------------------------------------------------


def _stringify(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _invalid(errors: list[dict[str, Any]]) -> ApiError:
    details = [
        {
            "isValid": False,
            "message": e["message"],
            "error": e["code"],
            "name": e["context"]["propertyName"][0],
        }
        for e in errors
    ]
    return bad_request(f"Property values were not valid: {json.dumps(details)}", errors=errors)


def _prop_error(name: str, message: str, code: str) -> dict[str, Any]:
    return {"message": message, "code": code, "context": {"propertyName": [name]}}


def validate_properties(
    state: SandboxState, otype: str, props: dict[str, Any], record_id: str | None = None
) -> dict[str, str | None]:
    """Reject what HubSpot rejects; return the values as HubSpot stores them (strings)."""
    if not isinstance(props, dict):
        raise bad_request("properties must be an object")
    known = all_properties(state, otype)
    errors = [
        _prop_error(n, f'Property "{n}" does not exist', "PROPERTY_DOESNT_EXIST")
        for n in props
        if n not in known
    ]
    if errors:
        raise _invalid(errors)
    values = {n: _stringify(v) for n, v in props.items() if n not in READ_ONLY}
    if otype == "tickets":
        _validate_ticket(state, values, record_id)
    owner = values.get("hubspot_owner_id")
    if owner and owner not in {o["id"] for o in state.data["owners"]}:
        raise _invalid(
            [
                _prop_error(
                    "hubspot_owner_id", f"{owner} is not a valid owner id", "INVALID_OWNER_ID"
                )
            ]
        )
    if otype == "notes" and record_id is None and not values.get("hs_timestamp"):
        raise _invalid(
            [_prop_error("hs_timestamp", "hs_timestamp is required", "REQUIRED_PROPERTY")]
        )
    _check_unique(state, otype, values, record_id)
    return values


def _validate_ticket(state: SandboxState, values: dict[str, Any], record_id: str | None) -> None:
    current = state.data["objects"]["tickets"].get(record_id or "", {}).get("properties", {})
    pipelines = {p["id"]: p for p in state.data["pipelines"]["tickets"]}
    if record_id is None:
        values.setdefault("hs_pipeline", next(iter(pipelines)))
        if not values.get("hs_pipeline_stage"):
            raise _invalid(
                [
                    _prop_error(
                        "hs_pipeline_stage", "hs_pipeline_stage is required", "REQUIRED_PROPERTY"
                    )
                ]
            )
    pipeline_id = values.get("hs_pipeline") or current.get("hs_pipeline")
    if pipeline_id not in pipelines:
        raise _invalid(
            [_prop_error("hs_pipeline", f"{pipeline_id} is not a valid pipeline", "INVALID_OPTION")]
        )
    stage = values.get("hs_pipeline_stage") or current.get("hs_pipeline_stage")
    if stage not in {s["id"] for s in pipelines[pipeline_id]["stages"]}:
        raise _invalid(
            [
                _prop_error(
                    "hs_pipeline_stage",
                    f"{stage} is not a valid stage of pipeline {pipeline_id}",
                    "INVALID_OPTION",
                )
            ]
        )
    priority = values.get("hs_ticket_priority")
    if priority and priority not in PRIORITIES:
        raise _invalid(
            [
                _prop_error(
                    "hs_ticket_priority",
                    f"{priority} was not one of the allowed options: {list(PRIORITIES)}",
                    "INVALID_OPTION",
                )
            ]
        )


def find_by(state: SandboxState, otype: str, prop: str, value: str) -> dict[str, Any] | None:
    fold = prop == "email"
    for record in state.data["objects"][otype].values():
        stored = record["properties"].get(prop)
        if record["archived"] or stored is None:
            continue
        if stored == value or (fold and stored.lower() == value.lower()):
            return record
    return None


def _check_unique(
    state: SandboxState, otype: str, values: dict[str, Any], record_id: str | None
) -> None:
    for prop in unique_properties(state, otype):
        value = values.get(prop)
        if not value:
            continue
        existing = find_by(state, otype, prop, value)
        if existing is None or existing["id"] == record_id:
            continue
        if otype == "contacts" and prop == "email":
            raise ApiError(
                409, f"Contact already exists. Existing ID: {existing['id']}", "CONFLICT"
            )
        error = _prop_error(
            prop,
            f"{value} already has that value on object {existing['id']}",
            "INVALID_UNIQUE_VALUE",
        )
        error["context"]["existingId"] = [existing["id"]]
        raise _invalid([error])


def create_object(state: SandboxState, otype: str, body: dict[str, Any]) -> dict[str, Any]:
    values = validate_properties(state, otype, body.get("properties") or {})
    pending = [_inline_association(state, otype, a) for a in body.get("associations") or []]
    oid = state.next_id("object")
    ts = iso()
    values.update(hs_object_id=oid, createdate=ts, hs_lastmodifieddate=ts)
    if otype == "contacts":
        values["lastmodifieddate"] = ts
    record = {"id": oid, "properties": values, "createdAt": ts, "updatedAt": ts, "archived": False}
    state.data["objects"][otype][oid] = record
    for to_type, to_id, type_id, category in pending:
        associate(state, otype, oid, to_type, to_id, type_id, category)
    state.mark_dirty()
    return record


def update_object(
    state: SandboxState, otype: str, record: dict[str, Any], props: dict[str, Any]
) -> dict[str, Any]:
    values = validate_properties(state, otype, props, record["id"])
    ts = iso()
    record["properties"].update(values, hs_lastmodifieddate=ts)
    record["updatedAt"] = ts
    state.mark_dirty()
    return record


def _inline_association(
    state: SandboxState, otype: str, spec: dict[str, Any]
) -> tuple[str, str, int, str]:
    to_id = str((spec.get("to") or {}).get("id", ""))
    types = spec.get("types") or []
    if not to_id or not types:
        raise bad_request("associations need `to.id` and `types`")
    type_id = int(types[0].get("associationTypeId", 0))
    pair = TYPE_ID_PAIRS.get(type_id)
    if pair is None or pair[0] != otype:
        raise bad_request(
            f"{type_id} is not a valid association type id for {otype}",
            sub_category="crm.associations.INVALID_ASSOCIATION_TYPE",
        )
    if not object_exists(state, pair[1], to_id):
        raise bad_request(
            f"No {pair[1]} with id {to_id} exists",
            sub_category="crm.associations.INVALID_OBJECT_IDS",
        )
    return pair[1], to_id, type_id, types[0].get("associationCategory", "HUBSPOT_DEFINED")


def object_exists(state: SandboxState, otype: str, oid: str) -> bool:
    if otype == "conversations":
        return oid in state.data["threads"]
    record = state.data["objects"][otype].get(oid)
    return record is not None and not record["archived"]


def associate(
    state: SandboxState,
    from_type: str,
    from_id: str,
    to_type: str,
    to_id: str,
    type_id: int | None = None,
    category: str = "HUBSPOT_DEFINED",
) -> None:
    """Store an association and its inverse, like HubSpot's bidirectional labels."""
    type_id = type_id or ASSOCIATION_TYPES.get((from_type, to_type))
    if type_id is None:
        raise bad_request(f"{from_type} cannot be associated with {to_type}")
    inverse = ASSOCIATION_TYPES.get((to_type, from_type), type_id)
    edges = state.data["associations"]
    for edge in (
        [from_type, from_id, to_type, to_id, type_id, category],
        [to_type, to_id, from_type, from_id, inverse, category],
    ):
        if edge not in edges:
            edges.append(edge)
    state.mark_dirty()


def dissociate(state: SandboxState, a_type: str, a_id: str, b_type: str, b_id: str) -> None:
    pairs = ((a_type, a_id, b_type, b_id), (b_type, b_id, a_type, a_id))
    state.data["associations"] = [
        e for e in state.data["associations"] if tuple(e[:4]) not in pairs
    ]
    state.mark_dirty()


def associated(
    state: SandboxState, from_type: str, from_id: str, to_type: str
) -> dict[str, list[tuple[int, str]]]:
    """to_id -> [(typeId, category)], in insertion order."""
    found: dict[str, list[tuple[int, str]]] = {}
    for f_type, f_id, t_type, t_id, type_id, category in state.data["associations"]:
        if f_type == from_type and f_id == from_id and t_type == to_type:
            found.setdefault(t_id, []).append((type_id, category))
    return found


def render(
    state: SandboxState,
    otype: str,
    record: dict[str, Any],
    properties: list[str] | None = None,
    associations: list[str] | None = None,
) -> dict[str, Any]:
    """A record as HubSpot returns it: asked-for properties (or the defaults) as strings."""
    stored = record["properties"]
    names = properties if properties else SHOWN_BY_DEFAULT[otype] + READ_ONLY[:3]
    # unset properties are left out: hubspot-sdk types ``properties`` as Dict[str, str]
    props = {n: stored[n] for n in names if stored.get(n) is not None}
    out: dict[str, Any] = {
        "id": record["id"],
        "properties": props,
        "createdAt": record["createdAt"],
        "updatedAt": record["updatedAt"],
        "archived": record["archived"],
    }
    assoc_out: dict[str, Any] = {}
    for name in associations or []:
        to_type = object_type(name)
        single_from, single_to = TYPES[otype][1], TYPES[to_type][1]
        found = associated(state, otype, record["id"], to_type)
        if found:
            assoc_out[name] = {
                "results": [{"id": tid, "type": f"{single_from}_to_{single_to}"} for tid in found]
            }
    if assoc_out:
        out["associations"] = assoc_out
    return out


def _split(value: str | None) -> list[str]:
    return [v.strip() for v in (value or "").split(",") if v.strip()]


def _list_params(request: web.Request, key: str) -> list[str]:
    items: list[str] = []
    for value in request.query.getall(key, []):
        items.extend(_split(value))
    return items


def lookup(state: SandboxState, otype: str, key: str, id_property: str | None) -> dict[str, Any]:
    if id_property and id_property != "hs_object_id":
        if id_property not in unique_properties(state, otype):
            raise bad_request(f"{id_property} is not a unique property of {otype}")
        record = find_by(state, otype, id_property, key)
    else:
        record = state.data["objects"][otype].get(key)
    if record is None or record["archived"]:
        raise not_found(f"resource not found: {otype} {key}")
    return record


# --- search -------------------------------------------------------------------------------------


def _matches(value: str | None, op: str, want: Any, values: list[Any]) -> bool:
    if op == "HAS_PROPERTY":
        return value not in (None, "")
    if op == "NOT_HAS_PROPERTY":
        return value in (None, "")
    if value is None:
        return op in ("NEQ", "NOT_IN")
    low = value.lower()
    if op == "EQ":
        return low == str(want).lower()
    if op == "NEQ":
        return low != str(want).lower()
    if op == "IN":
        return low in {str(v).lower() for v in values}
    if op == "NOT_IN":
        return low not in {str(v).lower() for v in values}
    if op == "CONTAINS_TOKEN":
        return str(want).lower().strip("*") in low
    if op in ("GT", "GTE", "LT", "LTE"):
        try:
            a, b = float(value), float(want)
        except (TypeError, ValueError):
            a, b = value, str(want)  # type: ignore[assignment]
        return {"GT": a > b, "GTE": a >= b, "LT": a < b, "LTE": a <= b}[op]
    raise bad_request(f"Unsupported operator {op}")


def search_records(state: SandboxState, otype: str, body: dict[str, Any]) -> dict[str, Any]:
    limit = int(body.get("limit") or 10)
    if limit > 200:
        raise bad_request("limit must be at most 200")
    groups = body.get("filterGroups") or []
    query = (body.get("query") or "").lower()
    results = []
    for record in state.data["objects"][otype].values():
        if record["archived"]:
            continue
        props = record["properties"]
        if groups and not any(
            all(
                _matches(
                    props.get(f["propertyName"]),
                    f.get("operator", "EQ"),
                    f.get("value"),
                    f.get("values") or [],
                )
                for f in g.get("filters", [])
            )
            for g in groups
        ):
            continue
        if query and not any(query in (v or "").lower() for v in props.values()):
            continue
        results.append(record)
    for sort in reversed(body.get("sorts") or []):
        if isinstance(sort, str):
            name, desc = sort.lstrip("-"), sort.startswith("-")
        else:
            name, desc = sort.get("propertyName", "hs_object_id"), sort.get("direction") == "DESC"
        results.sort(key=functools.partial(_sort_value, name), reverse=desc)
    start = int(body.get("after") or 0)
    page = results[start : start + limit]
    out: dict[str, Any] = {
        "total": len(results),
        "results": [render(state, otype, r, body.get("properties")) for r in page],
    }
    if start + limit < len(results):
        out["paging"] = {"next": {"after": str(start + limit)}}
    return out


# --- handlers -----------------------------------------------------------------------------------

# The request contract of each object type: hubspot-sdk's parameter types
# (hubspot_sdk/types/crm/objects/<type>_{create,update,search}_params.py).
CREATE: dict[str, Any] = {
    "contacts": contact_create_params.ContactCreateParams,
    "companies": company_create_params.CompanyCreateParams,
    "deals": deal_create_params.DealCreateParams,
    "tickets": ticket_create_params.TicketCreateParams,
    "notes": note_create_params.NoteCreateParams,
}
UPDATE: dict[str, Any] = {
    "contacts": contact_update_params.ContactUpdateParams,
    "companies": company_update_params.CompanyUpdateParams,
    "deals": deal_update_params.DealUpdateParams,
    "tickets": ticket_update_params.TicketUpdateParams,
    "notes": note_update_params.NoteUpdateParams,
}
# The SDK marks every search field required; HubSpot's search guide sends any subset
# (developers.hubspot.com/docs/api-reference/search/guide), so only types are checked.
SEARCH: dict[str, Any] = {
    "contacts": contact_search_params.ContactSearchParams,
    "companies": company_search_params.CompanySearchParams,
    "deals": deal_search_params.DealSearchParams,
    "tickets": ticket_search_params.TicketSearchParams,
    "notes": note_search_params.NoteSearchParams,
}


async def create_handler(request: web.Request) -> web.Response:
    state = request.app[STATE]
    otype = crm_type(request.match_info["object_type"])
    require(request, *scopes(otype, write=True))
    body = await read_json(request)
    check(CREATE[otype], body)
    record = create_object(state, otype, body)
    return json_response(render(state, otype, record, list(record["properties"])), status=201)


async def get_handler(request: web.Request) -> web.Response:
    state = request.app[STATE]
    otype = crm_type(request.match_info["object_type"])
    require(request, *scopes(otype, write=False))
    record = lookup(state, otype, request.match_info["object_id"], request.query.get("idProperty"))
    return json_response(
        render(
            state,
            otype,
            record,
            _list_params(request, "properties"),
            _list_params(request, "associations"),
        )
    )


async def list_handler(request: web.Request) -> web.Response:
    state = request.app[STATE]
    otype = crm_type(request.match_info["object_type"])
    require(request, *scopes(otype, write=False))
    body = {
        "limit": request.query.get("limit", 10),
        "after": request.query.get("after"),
        "properties": _list_params(request, "properties"),
    }
    return json_response(
        {k: v for k, v in search_records(state, otype, body).items() if k != "total"}
    )


async def patch_handler(request: web.Request) -> web.Response:
    state = request.app[STATE]
    otype = crm_type(request.match_info["object_type"])
    require(request, *scopes(otype, write=True))
    record = lookup(state, otype, request.match_info["object_id"], request.query.get("idProperty"))
    body = await read_json(request)
    check(UPDATE[otype], body, frozenset({"idProperty"}))
    update_object(state, otype, record, body.get("properties") or {})
    return json_response(render(state, otype, record, list(record["properties"])))


async def archive_handler(request: web.Request) -> web.Response:
    state = request.app[STATE]
    otype = crm_type(request.match_info["object_type"])
    require(request, *scopes(otype, write=True))
    record = state.data["objects"][otype].get(request.match_info["object_id"])
    if record is not None:
        record["archived"] = True
        state.mark_dirty()
    return web.Response(status=204)


async def search_handler(request: web.Request) -> web.Response:
    state = request.app[STATE]
    otype = crm_type(request.match_info["object_type"])
    require(request, *scopes(otype, write=False))
    body = await read_json(request)
    check(SEARCH[otype], body, frozenset({"*"}))
    return json_response(search_records(state, otype, body))


def _labels_pair(
    from_type: str, from_id: str, to_type: str, to_id: str, labels: list[str]
) -> dict[str, Any]:
    return {
        "fromObjectTypeId": TYPES[from_type][0],
        "fromObjectId": from_id,
        "toObjectTypeId": TYPES[to_type][0],
        "toObjectId": to_id,
        "labels": labels,
    }


def _check_pair(state: SandboxState, request: web.Request) -> tuple[str, str, str, str]:
    mi = request.match_info
    from_type = object_type(mi["object_type"])
    to_type = object_type(mi["to_object_type"])
    from_id, to_id = mi["object_id"], mi["to_object_id"]
    for otype, oid in ((from_type, from_id), (to_type, to_id)):
        if not object_exists(state, otype, oid):
            raise bad_request(
                f"No {otype} with id {oid} exists",
                sub_category="crm.associations.INVALID_OBJECT_IDS",
            )
    return from_type, from_id, to_type, to_id


def _assoc_scopes(request: web.Request, *types: str) -> None:
    for otype in types:
        if otype == "conversations":
            require(request, "conversations.write", "tickets")
        else:
            require(request, *scopes(otype, write=True))


@expects(list[AssociationSpec])
async def v4_put_handler(request: web.Request) -> web.Response:
    state = request.app[STATE]
    from_type, from_id, to_type, to_id = _check_pair(state, request)
    _assoc_scopes(request, from_type, to_type)
    specs = await read_json(request)
    if not isinstance(specs, list) or not specs:
        raise bad_request("Body must be a non-empty array of association specs")
    for spec in specs:
        type_id = int(spec.get("associationTypeId", 0))
        category = spec.get("associationCategory", "HUBSPOT_DEFINED")
        pair = TYPE_ID_PAIRS.get(type_id)
        if category == "HUBSPOT_DEFINED" and pair != (from_type, to_type):
            raise bad_request(
                f"associationTypeId {type_id} is not valid from {from_type} to {to_type}",
                sub_category="crm.associations.INVALID_ASSOCIATION_TYPE",
            )
        associate(state, from_type, from_id, to_type, to_id, type_id, category)
    return json_response(_labels_pair(from_type, from_id, to_type, to_id, []), status=201)


async def v4_default_handler(request: web.Request) -> web.Response:
    state = request.app[STATE]
    from_type, from_id, to_type, to_id = _check_pair(state, request)
    _assoc_scopes(request, from_type, to_type)
    associate(state, from_type, from_id, to_type, to_id)
    return json_response(
        {
            "status": "COMPLETE",
            "results": [
                {
                    "from": {"id": from_id},
                    "to": {"id": to_id},
                    "associationSpec": {
                        "associationCategory": "HUBSPOT_DEFINED",
                        "associationTypeId": ASSOCIATION_TYPES[(from_type, to_type)],
                    },
                }
            ],
            "startedAt": iso(),
            "completedAt": iso(),
        }
    )


async def v4_get_handler(request: web.Request) -> web.Response:
    state = request.app[STATE]
    from_type = object_type(request.match_info["object_type"])
    to_type = object_type(request.match_info["to_object_type"])
    from_id = request.match_info["object_id"]
    if from_type != "conversations":
        require(request, *scopes(from_type, write=False))
    if not object_exists(state, from_type, from_id):
        raise not_found(f"No {from_type} with id {from_id} exists")
    found = associated(state, from_type, from_id, to_type)
    return json_response(
        {
            "results": [
                {
                    "toObjectId": tid,  # typed string (hubspot-sdk MultiAssociatedObjectWithLabel)
                    "associationTypes": [
                        {"category": cat, "typeId": type_id} for type_id, cat in types
                    ],
                }
                for tid, types in found.items()
            ]
        }
    )


async def v4_delete_handler(request: web.Request) -> web.Response:
    state = request.app[STATE]
    mi = request.match_info
    from_type, to_type = object_type(mi["object_type"]), object_type(mi["to_object_type"])
    _assoc_scopes(request, from_type, to_type)
    dissociate(state, from_type, mi["object_id"], to_type, mi["to_object_id"])
    return web.Response(status=204)


async def properties_list_handler(request: web.Request) -> web.Response:
    state = request.app[STATE]
    otype = crm_type(request.match_info["object_type"])
    require(request, *scopes(otype, write=False))
    return json_response({"results": list(all_properties(state, otype).values())})


async def property_get_handler(request: web.Request) -> web.Response:
    state = request.app[STATE]
    otype = crm_type(request.match_info["object_type"])
    require(request, *scopes(otype, write=False))
    prop = all_properties(state, otype).get(request.match_info["name"])
    if prop is None:
        raise not_found(f"Unable to find property {request.match_info['name']}")
    return json_response(prop)


@expects(PropertyCreateParams)
async def property_create_handler(request: web.Request) -> web.Response:
    state = request.app[STATE]
    otype = crm_type(request.match_info["object_type"])
    require(request, *scopes(otype, write=True), f"crm.schemas.{otype}.write")
    body = await read_json(request)
    missing = [k for k in ("name", "label", "type", "fieldType", "groupName") if not body.get(k)]
    if missing:
        raise bad_request(f"Missing required fields: {', '.join(missing)}")
    name = body["name"]
    if name in all_properties(state, otype):
        raise ApiError(
            409,
            f"Property named '{name}' already exists.",
            "OBJECT_ALREADY_EXISTS",
            context={"name": [name]},
        )
    prop = property_definition(
        name,
        label=body["label"],
        type=body["type"],
        fieldType=body["fieldType"],
        groupName=body["groupName"],
        description=body.get("description", ""),
        options=body.get("options") or [],
        hasUniqueValue=bool(body.get("hasUniqueValue")),
        hidden=bool(body.get("hidden")),
        formField=bool(body.get("formField")),
        displayOrder=body.get("displayOrder", -1),
        hubspotDefined=False,
        createdAt=iso(),
        updatedAt=iso(),
        modificationMetadata={
            "archivable": True,
            "readOnlyDefinition": False,
            "readOnlyValue": False,
        },
    )
    state.data["properties"][otype][name] = prop
    state.mark_dirty()
    return json_response(prop, status=201)


async def pipelines_handler(request: web.Request) -> web.Response:
    state = request.app[STATE]
    otype = crm_type(request.match_info["object_type"])
    require(request, *scopes(otype, write=False))
    pipelines = state.data["pipelines"].get(otype, [])
    pipeline_id = request.match_info.get("pipeline_id")
    if pipeline_id is None:
        return json_response({"results": pipelines})
    for pipeline in pipelines:
        if pipeline["id"] == pipeline_id:
            if request.path.endswith("/stages"):
                return json_response({"results": pipeline["stages"]})
            return json_response(pipeline)
    raise not_found(f"Unable to find pipeline {pipeline_id}")


async def owners_handler(request: web.Request) -> web.Response:
    state = request.app[STATE]
    require(request, "crm.objects.owners.read")
    owners = state.data["owners"]
    owner_id = request.match_info.get("owner_id")
    if owner_id is not None:
        key = "userId" if request.query.get("idProperty") == "userId" else "id"
        for owner in owners:
            if str(owner[key]) == owner_id:
                return json_response(owner)
        raise not_found(f"Unable to find owner {owner_id}")
    email = request.query.get("email")
    if email:
        owners = [o for o in owners if o["email"].lower() == email.lower()]
    return json_response({"results": owners})


V = r"{version:\d{4}-\d{2}}"


CONTRACTS[create_handler] = CREATE
CONTRACTS[patch_handler] = UPDATE
CONTRACTS[search_handler] = SEARCH


def setup_routes(app: web.Application) -> None:
    r = app.router
    for objects in ("/crm/v3/objects", f"/crm/objects/{V}"):
        base = objects + "/{object_type}"
        r.add_post(base + "/search", search_handler)
        r.add_post(base, create_handler)
        r.add_get(base, list_handler)
        r.add_get(base + "/{object_id}", get_handler)
        r.add_patch(base + "/{object_id}", patch_handler)
        r.add_delete(base + "/{object_id}", archive_handler)
    for objects in ("/crm/v4/objects", f"/crm/objects/{V}"):
        pair = objects + "/{object_type}/{object_id}/associations/{to_object_type}"
        r.add_put(pair + "/{to_object_id}", v4_put_handler)
        r.add_delete(pair + "/{to_object_id}", v4_delete_handler)
        r.add_get(pair, v4_get_handler)
        r.add_put(
            objects + "/{object_type}/{object_id}/associations/default/{to_object_type}"
            "/{to_object_id}",
            v4_default_handler,
        )
    for props in ("/crm/v3/properties", f"/crm/properties/{V}"):
        r.add_get(props + "/{object_type}", properties_list_handler)
        r.add_post(props + "/{object_type}", property_create_handler)
        r.add_get(props + "/{object_type}/{name}", property_get_handler)
    for pipes in ("/crm/v3/pipelines", f"/crm/pipelines/{V}"):
        r.add_get(pipes + "/{object_type}", pipelines_handler)
        r.add_get(pipes + "/{object_type}/{pipeline_id}", pipelines_handler)
        r.add_get(pipes + "/{object_type}/{pipeline_id}/stages", pipelines_handler)
    for owners in ("/crm/v3/owners", f"/crm/owners/{V}"):
        r.add_get(owners, owners_handler)
        r.add_get(owners + "/", owners_handler)
        r.add_get(owners + "/{owner_id}", owners_handler)


def _sort_value(name: str, record: dict[str, Any]) -> str:
    """A search result's sort key: the property's value, or "" where it is unset."""
    return record["properties"].get(name) or ""
