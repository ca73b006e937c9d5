"""Reviews of an item."""

import uuid

from fastapi import APIRouter, HTTPException

from app.api.deps import CurrentUser, PagingDep, SessionDep
from app.crud import catalog
from app.models import Message, Page, Review, ReviewCreate, ReviewPublic

router = APIRouter(prefix="/items/{item_id}/reviews", tags=["reviews"])


@router.get("/", response_model=Page[ReviewPublic])
def list_reviews(item_id: uuid.UUID, session: SessionDep, paging: PagingDep):
    rows, count = catalog.reviews.list(session, offset=paging.offset, limit=paging.limit,
                                       where=(Review.item_id == item_id,), order_by=Review.created_at.desc())
    return Page(data=rows, count=count, offset=paging.offset, limit=paging.limit)


@router.get("/average")
def average(item_id: uuid.UUID, session: SessionDep) -> dict:
    return {"item_id": item_id, "average_rating": catalog.average_rating(session, item_id)}


@router.post("/", response_model=ReviewPublic, status_code=201)
def create_review(item_id: uuid.UUID, session: SessionDep, user: CurrentUser, body: ReviewCreate):
    item = catalog.items.get(session, item_id)
    if item is None:
        raise HTTPException(404, "Item not found")
    if item.owner_id == user.id:
        raise HTTPException(403, "Sellers cannot review their own items")
    return catalog.reviews.create(session, body, item_id=item_id, author_id=user.id)


@router.delete("/{review_id}")
def delete_review(item_id: uuid.UUID, review_id: uuid.UUID, session: SessionDep, user: CurrentUser) -> Message:
    review = catalog.reviews.get(session, review_id)
    if review is None or review.item_id != item_id or (review.author_id != user.id and not user.is_superuser):
        raise HTTPException(404, "Review not found")
    catalog.reviews.delete(session, review)
    return Message(message="Review deleted")
