"""Users and their postal addresses."""

import uuid
from datetime import datetime
from enum import Enum
from typing import TYPE_CHECKING

from pydantic import EmailStr
from sqlmodel import Field, Relationship, SQLModel

from app.models.common import created_at_field, id_field

if TYPE_CHECKING:
    from app.models.catalog import Item, Review
    from app.models.order import Order


class UserBase(SQLModel):
    email: EmailStr = Field(unique=True, index=True, max_length=255)
    full_name: str | None = Field(default=None, max_length=255)
    is_active: bool = True
    is_superuser: bool = False


class UserCreate(UserBase):
    password: str = Field(min_length=8, max_length=128)


class UserRegister(SQLModel):
    email: EmailStr = Field(max_length=255)
    password: str = Field(min_length=8, max_length=128)
    full_name: str | None = Field(default=None, max_length=255)


class UserUpdate(SQLModel):
    email: EmailStr | None = Field(default=None, max_length=255)
    full_name: str | None = Field(default=None, max_length=255)
    password: str | None = Field(default=None, min_length=8, max_length=128)
    is_active: bool | None = None
    is_superuser: bool | None = None


class UserUpdateMe(SQLModel):
    email: EmailStr | None = Field(default=None, max_length=255)
    full_name: str | None = Field(default=None, max_length=255)


class UpdatePassword(SQLModel):
    current_password: str = Field(min_length=8, max_length=128)
    new_password: str = Field(min_length=8, max_length=128)


class User(UserBase, table=True):
    id: uuid.UUID = id_field()
    hashed_password: str
    created_at: datetime = created_at_field()
    addresses: list["Address"] = Relationship(back_populates="user", cascade_delete=True)
    items: list["Item"] = Relationship(back_populates="owner", cascade_delete=True)
    orders: list["Order"] = Relationship(back_populates="customer", cascade_delete=True)
    reviews: list["Review"] = Relationship(back_populates="author", cascade_delete=True)


class UserPublic(UserBase):
    id: uuid.UUID
    created_at: datetime


class AddressKind(str, Enum):
    shipping = "shipping"
    billing = "billing"


class AddressBase(SQLModel):
    kind: AddressKind = AddressKind.shipping
    line1: str = Field(max_length=255)
    line2: str | None = Field(default=None, max_length=255)
    city: str = Field(max_length=100)
    postcode: str = Field(max_length=20)
    country: str = Field(min_length=2, max_length=2, description="ISO 3166-1 alpha-2 code")


class AddressCreate(AddressBase):
    pass


class AddressUpdate(SQLModel):
    kind: AddressKind | None = None
    line1: str | None = Field(default=None, max_length=255)
    line2: str | None = Field(default=None, max_length=255)
    city: str | None = Field(default=None, max_length=100)
    postcode: str | None = Field(default=None, max_length=20)
    country: str | None = Field(default=None, min_length=2, max_length=2)


class Address(AddressBase, table=True):
    id: uuid.UUID = id_field()
    user_id: uuid.UUID = Field(foreign_key="user.id", nullable=False, ondelete="CASCADE", index=True)
    user: User | None = Relationship(back_populates="addresses")


class AddressPublic(AddressBase):
    id: uuid.UUID
    user_id: uuid.UUID
