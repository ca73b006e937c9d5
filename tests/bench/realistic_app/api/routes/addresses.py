"""The current user's addresses."""

import uuid

from fastapi import APIRouter, HTTPException

from app.api.deps import CurrentUser, SessionDep
from app.crud.users import addresses
from app.models import Address, AddressCreate, AddressPublic, AddressUpdate, Message

router = APIRouter(prefix="/addresses", tags=["addresses"])


def owned(session: SessionDep, user: CurrentUser, address_id: uuid.UUID) -> Address:
    address = addresses.get(session, address_id)
    if address is None or address.user_id != user.id:
        raise HTTPException(404, "Address not found")
    return address


@router.get("/", response_model=list[AddressPublic])
def list_addresses(user: CurrentUser):
    return user.addresses


@router.post("/", response_model=AddressPublic, status_code=201)
def create_address(session: SessionDep, user: CurrentUser, body: AddressCreate):
    return addresses.create(session, body, user_id=user.id, country=body.country.upper())


@router.patch("/{address_id}", response_model=AddressPublic)
def update_address(address_id: uuid.UUID, session: SessionDep, user: CurrentUser, body: AddressUpdate):
    return addresses.update(session, owned(session, user, address_id), body)


@router.delete("/{address_id}")
def delete_address(address_id: uuid.UUID, session: SessionDep, user: CurrentUser) -> Message:
    addresses.delete(session, owned(session, user, address_id))
    return Message(message="Address deleted")
