"""The database engine, the per-request session, and table creation."""

from collections.abc import Iterator

from sqlalchemy import event
from sqlmodel import Session, SQLModel, create_engine

from app.core.config import settings

# SQLite sessions are used from FastAPI's threadpool, not only from the thread that opened them.
connect_args = {"check_same_thread": False} if settings.DATABASE_URL.startswith("sqlite") else {}
engine = create_engine(settings.DATABASE_URL, echo=settings.DATABASE_ECHO, connect_args=connect_args)


if engine.dialect.name == "sqlite":
    @event.listens_for(engine, "connect")
    def enable_sqlite_foreign_keys(dbapi_connection, _record) -> None:
        # SQLite ignores foreign keys (and so ON DELETE CASCADE) unless each connection turns them on.
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.close()


def get_session() -> Iterator[Session]:
    with Session(engine) as session:
        yield session


def create_tables() -> None:
    import app.models  # noqa: F401 - registers every table on SQLModel.metadata

    SQLModel.metadata.create_all(engine)
