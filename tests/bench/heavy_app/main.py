"""A realistic app for the benchmark: its imports cost what real apps pay (web framework, validation,
ORM, templates, data frames, an HTTP client)."""

import httpx  # noqa: F401 - imported for its cost, like an app's API client
import pandas as pd
from fastapi import FastAPI
from jinja2 import Template
from pydantic import BaseModel
from sqlalchemy import Column, Integer, String, create_engine, select
from sqlalchemy.orm import Session, declarative_base
from sqlalchemy.pool import StaticPool

Base = declarative_base()


class Item(Base):
    __tablename__ = "items"
    id = Column(Integer, primary_key=True)
    name = Column(String(50))


class ItemOut(BaseModel):
    id: int
    name: str


# One shared in-memory database for every thread of the server.
engine = create_engine("sqlite://", connect_args={"check_same_thread": False}, poolclass=StaticPool)
Base.metadata.create_all(engine)
with Session(engine) as session:
    session.add_all([Item(name="a"), Item(name="b")])
    session.commit()

app = FastAPI()
MESSAGE = "Hello from unstuck"


@app.get("/")
def index() -> dict:
    with Session(engine) as s:
        items = [ItemOut(id=i.id, name=i.name) for i in s.scalars(select(Item))]
    frame = pd.DataFrame([i.model_dump() for i in items])
    return {"message": MESSAGE, "items": len(frame), "html": Template("<b>{{ m }}</b>").render(m=MESSAGE)}
