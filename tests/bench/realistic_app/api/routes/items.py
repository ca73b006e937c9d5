"""Items for sale: anyone browses, sellers manage their own."""

import uuid
from typing import Annotated

from fastapi import APIRouter, HTTPException, Query

from app.api.deps import CurrentUser, PagingDep, SessionDep
from app.crud import catalog
from app.models import Item, ItemCreate, ItemPublic, ItemUpdate, Message, Page

router = APIRouter(prefix="/items", tags=["items"])


def editable(session: SessionDep, user: CurrentUser, item_id: uuid.UUID) -> Item:
    item = catalog.items.get(session, item_id)
    if item is None:
        raise HTTPException(404, "Item not found")
    if item.owner_id != user.id and not user.is_superuser:
        raise HTTPException(403, "Not enough permissions")
    return item


@router.get("/", response_model=Page[ItemPublic])
def list_items(session: SessionDep, paging: PagingDep, category_id: uuid.UUID | None = None,
               q: Annotated[str | None, Query(max_length=100)] = None, in_stock: bool = False):
    where = []
    if category_id is not None:
        where.append(Item.category_id == category_id)
    if q:
        where.append(Item.title.contains(q))
    if in_stock:
        where.append(Item.stock > 0)
    rows, count = catalog.items.list(session, offset=paging.offset, limit=paging.limit, where=tuple(where),
                                     order_by=Item.title)
    return Page(data=rows, count=count, offset=paging.offset, limit=paging.limit)


@router.get("/{item_id}", response_model=ItemPublic)
def read_item(item_id: uuid.UUID, session: SessionDep):
    item = catalog.items.get(session, item_id)
    if item is None:
        raise HTTPException(404, "Item not found")
    return item


@router.post("/", response_model=ItemPublic, status_code=201)
def create_item(session: SessionDep, user: CurrentUser, body: ItemCreate):
    if body.category_id and catalog.categories.get(session, body.category_id) is None:
        raise HTTPException(422, f"category {body.category_id} does not exist")
    return catalog.items.create(session, body, owner_id=user.id)


@router.patch("/{item_id}", response_model=ItemPublic)
def update_item(item_id: uuid.UUID, session: SessionDep, user: CurrentUser, body: ItemUpdate):
    return catalog.items.update(session, editable(session, user, item_id), body)


@router.delete("/{item_id}")
def delete_item(item_id: uuid.UUID, session: SessionDep, user: CurrentUser) -> Message:
    catalog.items.delete(session, editable(session, user, item_id))
    return Message(message="Item deleted")
