"""HubSpot's official hubspot-api-client, unchanged, against the sandbox."""

from __future__ import annotations

import pytest
from hubspot import HubSpot
from hubspot.crm.associations.v4 import AssociationSpec
from hubspot.crm.contacts import Filter, FilterGroup, PublicObjectSearchRequest
from hubspot.crm.contacts import SimplePublicObjectInputForCreate as ContactInput
from hubspot.crm.contacts.exceptions import ApiException as ContactsApiException
from hubspot.crm.properties import PropertyCreate
from hubspot.crm.tickets import SimplePublicObjectInputForCreate as TicketInput
from hubspot.crm.tickets.exceptions import ApiException as TicketsApiException

import sandbox_fixtures
from sandbox_fixtures import SandboxHandle

# pytest fixtures shared with the other sandbox test modules
loop_thread = sandbox_fixtures.loop_thread
sandbox = sandbox_fixtures.sandbox


def client_for(sb: SandboxHandle) -> HubSpot:
    return HubSpot(access_token=sb.info["staticToken"], host=sb.url)


def test_contacts_create_read_search_and_conflict(sandbox: SandboxHandle) -> None:
    hs = client_for(sandbox)
    created = hs.crm.contacts.basic_api.create(
        ContactInput(
            properties={
                "email": "Carla@Customer.test",
                "firstname": "Carla",
                "lastname": "Customer",
            }
        )
    )
    assert created.properties["email"] == "Carla@Customer.test"

    by_email = hs.crm.contacts.basic_api.get_by_id(
        "carla@customer.test", id_property="email", properties=["email", "firstname"]
    )
    assert by_email.id == created.id
    assert by_email.properties["firstname"] == "Carla"

    search = PublicObjectSearchRequest(
        filter_groups=[
            FilterGroup(
                filters=[Filter(property_name="email", operator="EQ", value="carla@customer.test")]
            )
        ],
        properties=["email"],
        limit=10,
    )
    found = hs.crm.contacts.search_api.do_search(public_object_search_request=search)
    assert found.total == 1
    assert found.results[0].id == created.id

    with pytest.raises(ContactsApiException) as exc:
        hs.crm.contacts.basic_api.create(ContactInput(properties={"email": "carla@customer.test"}))
    assert exc.value.status == 409
    assert f"Existing ID: {created.id}" in exc.value.body

    with pytest.raises(ContactsApiException) as missing:
        hs.crm.contacts.basic_api.get_by_id("nobody@x.test", id_property="email")
    assert missing.value.status == 404


def test_tickets_with_associations_pipelines_owners(sandbox: SandboxHandle) -> None:
    hs = client_for(sandbox)
    pipelines = hs.crm.pipelines.pipelines_api.get_all(object_type="tickets").results
    stages = {s.metadata["ticketState"]: s.id for s in pipelines[0].stages}
    assert set(stages) == {"OPEN", "CLOSED"}
    owners = hs.crm.owners.owners_api.get_page().results
    assert len(owners) >= 2 and owners[0].email

    contact = hs.crm.contacts.basic_api.create(ContactInput(properties={"email": "t@c.test"}))
    ticket = hs.crm.tickets.basic_api.create(
        TicketInput(
            properties={
                "subject": "Printer on fire",
                "content": "summary",
                "hs_pipeline": pipelines[0].id,
                "hs_pipeline_stage": stages["OPEN"],
                "hs_ticket_priority": "HIGH",
                "hubspot_owner_id": owners[0].id,
            },
            associations=[
                {
                    "to": {"id": contact.id},
                    "types": [{"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": 16}],
                }
            ],
        )
    )
    read = hs.crm.tickets.basic_api.get_by_id(ticket.id, associations=["contacts"])
    assert read.properties["subject"] == "Printer on fire"
    assert read.associations["contacts"].results[0].id == contact.id

    back = hs.crm.contacts.basic_api.get_by_id(contact.id, associations=["tickets"])
    assert back.associations["tickets"].results[0].id == ticket.id

    with pytest.raises(TicketsApiException) as bad:
        hs.crm.tickets.basic_api.create(
            TicketInput(properties={"subject": "x", "hs_pipeline_stage": "not-a-stage"})
        )
    assert bad.value.status == 400


def test_unique_property_and_id_property(sandbox: SandboxHandle) -> None:
    hs = client_for(sandbox)
    prop = hs.crm.properties.core_api.create(
        object_type="tickets",
        property_create=PropertyCreate(
            name="gateway_session_id",
            label="Gateway session",
            type="string",
            field_type="text",
            group_name="ticketinformation",
            has_unique_value=True,
        ),
    )
    assert prop.has_unique_value is True
    stage = sandbox.info["ticketPipelines"][0]["stages"][0]["id"]
    first = hs.crm.tickets.basic_api.create(
        TicketInput(
            properties={
                "subject": "one",
                "hs_pipeline_stage": stage,
                "gateway_session_id": "sess-42",
            }
        )
    )
    with pytest.raises(TicketsApiException) as dup:
        hs.crm.tickets.basic_api.create(
            TicketInput(
                properties={
                    "subject": "two",
                    "hs_pipeline_stage": stage,
                    "gateway_session_id": "sess-42",
                }
            )
        )
    assert dup.value.status in (400, 409)
    found = hs.crm.tickets.basic_api.get_by_id("sess-42", id_property="gateway_session_id")
    assert found.id == first.id


def test_v4_associations(sandbox: SandboxHandle) -> None:
    hs = client_for(sandbox)
    stage = sandbox.info["ticketPipelines"][0]["stages"][0]["id"]
    contact = hs.crm.contacts.basic_api.create(ContactInput(properties={"email": "v4@c.test"}))
    ticket = hs.crm.tickets.basic_api.create(
        TicketInput(properties={"subject": "v4", "hs_pipeline_stage": stage})
    )
    pair = hs.crm.associations.v4.basic_api.create(
        object_type="tickets",
        object_id=ticket.id,
        to_object_type="contacts",
        to_object_id=contact.id,
        association_spec=[
            AssociationSpec(association_category="HUBSPOT_DEFINED", association_type_id=16)
        ],
    )
    assert str(pair.to_object_id) == contact.id
    page = hs.crm.associations.v4.basic_api.get_page(
        object_type="contacts", object_id=contact.id, to_object_type="tickets"
    )
    assert [str(r.to_object_id) for r in page.results] == [ticket.id]
    assert page.results[0].association_types[0].type_id == 15
