"""Catalogue categories: anyone reads, superusers edit."""

import uuid

from fastapi import APIRouter, HTTPException

from app.api.deps import CurrentSuperuser, SessionDep
from app.crud import catalog
from app.models import Category, CategoryCreate, CategoryPublic, CategoryUpdate, Message

router = APIRouter(prefix="/categories", tags=["categories"])


@router.get("/", response_model=list[CategoryPublic])
def list_categories(session: SessionDep):
    rows, _ = catalog.categories.list(session, limit=1000, order_by=Category.name)
    return rows


@router.post("/", response_model=CategoryPublic, status_code=201)
def create_category(session: SessionDep, body: CategoryCreate, _: CurrentSuperuser):
    if catalog.get_category_by_name(session, body.name):
        raise HTTPException(409, f"category {body.name!r} already exists")
    return catalog.categories.create(session, body)


@router.patch("/{category_id}", response_model=CategoryPublic)
def update_category(category_id: uuid.UUID, session: SessionDep, body: CategoryUpdate, _: CurrentSuperuser):
    category = catalog.categories.get(session, category_id)
    if category is None:
        raise HTTPException(404, "Category not found")
    return catalog.categories.update(session, category, body)


@router.delete("/{category_id}")
def delete_category(category_id: uuid.UUID, session: SessionDep, _: CurrentSuperuser) -> Message:
    category = catalog.categories.get(session, category_id)
    if category is None:
        raise HTTPException(404, "Category not found")
    catalog.categories.delete(session, category)
    return Message(message="Category deleted")
