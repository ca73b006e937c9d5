"""Invoices issued for orders, and payments against them."""

import uuid
from datetime import date, datetime
from enum import Enum
from typing import TYPE_CHECKING

from sqlmodel import Field, Relationship, SQLModel

from app.models.common import created_at_field, id_field

if TYPE_CHECKING:
    from app.models.order import Order


class InvoiceStatus(str, Enum):
    open = "open"
    paid = "paid"
    void = "void"


class PaymentMethod(str, Enum):
    card = "card"
    transfer = "transfer"
    cash = "cash"


class Invoice(SQLModel, table=True):
    id: uuid.UUID = id_field()
    order_id: uuid.UUID = Field(foreign_key="order.id", nullable=False, unique=True, ondelete="CASCADE")
    number: str = Field(unique=True, index=True, max_length=32)
    status: InvoiceStatus = Field(default=InvoiceStatus.open, index=True)
    issued_at: datetime = created_at_field()
    due_on: date
    subtotal_cents: int = Field(ge=0)
    vat_cents: int = Field(ge=0)
    total_cents: int = Field(ge=0)
    order: "Order" = Relationship(back_populates="invoice")
    payments: list["Payment"] = Relationship(back_populates="invoice", cascade_delete=True)

    @property
    def paid_cents(self) -> int:
        return sum(payment.amount_cents for payment in self.payments)

    @property
    def balance_cents(self) -> int:
        return self.total_cents - self.paid_cents


class InvoicePublic(SQLModel):
    id: uuid.UUID
    order_id: uuid.UUID
    number: str
    status: InvoiceStatus
    issued_at: datetime
    due_on: date
    subtotal_cents: int
    vat_cents: int
    total_cents: int
    paid_cents: int
    balance_cents: int


class PaymentCreate(SQLModel):
    amount_cents: int = Field(gt=0)
    method: PaymentMethod = PaymentMethod.card
    reference: str | None = Field(default=None, max_length=100)


class Payment(SQLModel, table=True):
    id: uuid.UUID = id_field()
    invoice_id: uuid.UUID = Field(foreign_key="invoice.id", nullable=False, ondelete="CASCADE", index=True)
    amount_cents: int = Field(gt=0)
    method: PaymentMethod
    reference: str | None = Field(default=None, max_length=100)
    paid_at: datetime = created_at_field()
    invoice: Invoice = Relationship(back_populates="payments")


class PaymentPublic(SQLModel):
    id: uuid.UUID
    invoice_id: uuid.UUID
    amount_cents: int
    method: PaymentMethod
    reference: str | None
    paid_at: datetime
