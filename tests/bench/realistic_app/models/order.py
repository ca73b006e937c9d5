"""Orders and their lines."""

import uuid
from datetime import datetime
from enum import Enum
from typing import TYPE_CHECKING, Optional

from sqlmodel import Field, Relationship, SQLModel

from app.models.common import created_at_field, id_field

if TYPE_CHECKING:
    from app.models.billing import Invoice
    from app.models.catalog import Item
    from app.models.user import Address, User


class OrderStatus(str, Enum):
    pending = "pending"
    confirmed = "confirmed"
    shipped = "shipped"
    delivered = "delivered"
    cancelled = "cancelled"


class OrderLineCreate(SQLModel):
    item_id: uuid.UUID
    quantity: int = Field(ge=1, le=1000)


class OrderCreate(SQLModel):
    shipping_address_id: uuid.UUID | None = None
    note: str | None = Field(default=None, max_length=500)
    lines: list[OrderLineCreate] = Field(min_length=1)


class OrderStatusUpdate(SQLModel):
    status: OrderStatus


class Order(SQLModel, table=True):
    id: uuid.UUID = id_field()
    customer_id: uuid.UUID = Field(foreign_key="user.id", nullable=False, ondelete="CASCADE", index=True)
    shipping_address_id: uuid.UUID | None = Field(default=None, foreign_key="address.id", ondelete="SET NULL")
    status: OrderStatus = Field(default=OrderStatus.pending, index=True)
    note: str | None = Field(default=None, max_length=500)
    created_at: datetime = created_at_field()
    customer: "User" = Relationship(back_populates="orders")
    shipping_address: Optional["Address"] = Relationship()
    lines: list["OrderLine"] = Relationship(back_populates="order", cascade_delete=True)
    invoice: Optional["Invoice"] = Relationship(back_populates="order", cascade_delete=True,
                                                sa_relationship_kwargs={"uselist": False})

    @property
    def subtotal_cents(self) -> int:
        return sum(line.quantity * line.unit_price_cents for line in self.lines)


class OrderLine(SQLModel, table=True):
    id: uuid.UUID = id_field()
    order_id: uuid.UUID = Field(foreign_key="order.id", nullable=False, ondelete="CASCADE", index=True)
    item_id: uuid.UUID | None = Field(default=None, foreign_key="item.id", ondelete="SET NULL")
    quantity: int = Field(ge=1)
    # The price when ordered: later price changes do not rewrite past orders.
    unit_price_cents: int = Field(ge=0)
    order: Order = Relationship(back_populates="lines")
    item: Optional["Item"] = Relationship(back_populates="order_lines")


class OrderLinePublic(SQLModel):
    id: uuid.UUID
    item_id: uuid.UUID | None
    quantity: int
    unit_price_cents: int


class OrderPublic(SQLModel):
    id: uuid.UUID
    customer_id: uuid.UUID
    shipping_address_id: uuid.UUID | None
    status: OrderStatus
    note: str | None
    created_at: datetime
    subtotal_cents: int
    lines: list[OrderLinePublic]
