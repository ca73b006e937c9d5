"""The catalogue: categories, items for sale, and reviews of them."""

import uuid
from datetime import datetime
from typing import TYPE_CHECKING

from sqlmodel import Field, Relationship, SQLModel

from app.models.common import created_at_field, id_field

if TYPE_CHECKING:
    from app.models.order import OrderLine
    from app.models.user import User


class CategoryBase(SQLModel):
    name: str = Field(unique=True, index=True, max_length=100)
    description: str | None = Field(default=None, max_length=500)


class CategoryCreate(CategoryBase):
    pass


class CategoryUpdate(SQLModel):
    name: str | None = Field(default=None, max_length=100)
    description: str | None = Field(default=None, max_length=500)


class Category(CategoryBase, table=True):
    id: uuid.UUID = id_field()
    items: list["Item"] = Relationship(back_populates="category")


class CategoryPublic(CategoryBase):
    id: uuid.UUID


class ItemBase(SQLModel):
    title: str = Field(min_length=1, max_length=255, index=True)
    description: str | None = Field(default=None, max_length=2000)
    # Money in integer cents: exact, and SQLite has no decimal type.
    price_cents: int = Field(ge=0)
    stock: int = Field(default=0, ge=0)
    category_id: uuid.UUID | None = Field(default=None, foreign_key="category.id", ondelete="SET NULL")


class ItemCreate(ItemBase):
    pass


class ItemUpdate(SQLModel):
    title: str | None = Field(default=None, min_length=1, max_length=255)
    description: str | None = Field(default=None, max_length=2000)
    price_cents: int | None = Field(default=None, ge=0)
    stock: int | None = Field(default=None, ge=0)
    category_id: uuid.UUID | None = None


class Item(ItemBase, table=True):
    id: uuid.UUID = id_field()
    owner_id: uuid.UUID = Field(foreign_key="user.id", nullable=False, ondelete="CASCADE", index=True)
    created_at: datetime = created_at_field()
    owner: "User" = Relationship(back_populates="items")
    category: Category | None = Relationship(back_populates="items")
    reviews: list["Review"] = Relationship(back_populates="item", cascade_delete=True)
    order_lines: list["OrderLine"] = Relationship(back_populates="item")


class ItemPublic(ItemBase):
    id: uuid.UUID
    owner_id: uuid.UUID
    created_at: datetime


class ReviewBase(SQLModel):
    rating: int = Field(ge=1, le=5)
    body: str | None = Field(default=None, max_length=2000)


class ReviewCreate(ReviewBase):
    pass


class Review(ReviewBase, table=True):
    id: uuid.UUID = id_field()
    item_id: uuid.UUID = Field(foreign_key="item.id", nullable=False, ondelete="CASCADE", index=True)
    author_id: uuid.UUID = Field(foreign_key="user.id", nullable=False, ondelete="CASCADE")
    created_at: datetime = created_at_field()
    item: Item = Relationship(back_populates="reviews")
    author: "User" = Relationship(back_populates="reviews")


class ReviewPublic(ReviewBase):
    id: uuid.UUID
    item_id: uuid.UUID
    author_id: uuid.UUID
    created_at: datetime
