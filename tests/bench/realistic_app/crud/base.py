"""The create/read/update/delete every table needs, written once."""

import uuid
from typing import Any, Generic, TypeVar

from sqlalchemy import ColumnElement
from sqlmodel import Session, SQLModel, func, select

ModelT = TypeVar("ModelT", bound=SQLModel)


class Repository(Generic[ModelT]):
    def __init__(self, model: type[ModelT]) -> None:
        self.model = model

    def get(self, session: Session, id: uuid.UUID) -> ModelT | None:
        return session.get(self.model, id)

    def list(self, session: Session, *, offset: int = 0, limit: int = 100,
             where: tuple[ColumnElement[bool], ...] = (), order_by: Any = None) -> tuple[list[ModelT], int]:
        """One page of rows matching `where`, and how many rows match in all."""
        count = session.exec(select(func.count()).select_from(self.model).where(*where)).one()
        query = select(self.model).where(*where).offset(offset).limit(limit)
        if order_by is not None:
            query = query.order_by(order_by)
        return list(session.exec(query).all()), count

    def create(self, session: Session, data: SQLModel, **extra: Any) -> ModelT:
        row = self.model.model_validate(data, update=extra)
        session.add(row)
        session.commit()
        session.refresh(row)
        return row

    def update(self, session: Session, row: ModelT, data: SQLModel, **extra: Any) -> ModelT:
        row.sqlmodel_update(data.model_dump(exclude_unset=True), update=extra)
        session.add(row)
        session.commit()
        session.refresh(row)
        return row

    def delete(self, session: Session, row: ModelT) -> None:
        session.delete(row)
        session.commit()
