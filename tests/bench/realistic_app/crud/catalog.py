"""Categories, items and reviews."""

import uuid

from sqlmodel import Session, func, select

from app.crud.base import Repository
from app.models import Category, Item, Review

categories = Repository(Category)
items = Repository(Item)
reviews = Repository(Review)


def get_category_by_name(session: Session, name: str) -> Category | None:
    return session.exec(select(Category).where(Category.name == name)).first()


def average_rating(session: Session, item_id: uuid.UUID) -> float | None:
    return session.exec(select(func.avg(Review.rating)).where(Review.item_id == item_id)).one()
