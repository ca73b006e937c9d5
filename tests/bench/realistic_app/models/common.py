"""Pieces every table and schema shares."""

import uuid
from datetime import UTC, datetime
from typing import Generic, TypeVar

from pydantic import BaseModel
from sqlmodel import Field

T = TypeVar("T")


def utcnow() -> datetime:
    return datetime.now(UTC)


def id_field() -> uuid.UUID:
    return Field(default_factory=uuid.uuid4, primary_key=True)


def created_at_field() -> datetime:
    return Field(default_factory=utcnow, nullable=False)


class Message(BaseModel):
    message: str


class Page(BaseModel, Generic[T]):
    data: list[T]
    count: int
    offset: int
    limit: int
