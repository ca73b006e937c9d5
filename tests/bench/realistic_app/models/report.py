"""Aggregates the reports router returns (no tables)."""

from datetime import date

from pydantic import BaseModel


class SalesByDay(BaseModel):
    day: date
    orders: int
    revenue_cents: int


class TopItem(BaseModel):
    title: str
    quantity: int
    revenue_cents: int


class SalesSummary(BaseModel):
    orders: int
    invoiced_cents: int
    paid_cents: int
    outstanding_cents: int
    by_day: list[SalesByDay]
    top_items: list[TopItem]
