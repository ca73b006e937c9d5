"""When the app layer may configure SQLAlchemy's mappers ahead, and when a worker resumed from it cannot prove them a
fresh interpreter's (warm/orm_ahead.py). Each case runs in a fresh interpreter of the test venv: SQLAlchemy's
registries are the process's. (A layer and its workers doing it: tests/host/test_warm_process.py.)"""

import os
import subprocess
import sys

import pytest

from fresh_interpreter import on_host
from repo import REPO

ENTRYPOINT = str(REPO / "entrypoint")

CASE = r"""
import json, sys
sys.path.insert(0, sys.argv[1])
from sqlalchemy import ForeignKey, event
from sqlalchemy.orm import DeclarativeBase, Mapped, Mapper, mapped_column, relationship
from unstuck.warm import orm_ahead

said = {}

class Base(DeclarativeBase):
    pass

class Author(Base):
    __tablename__ = "author"
    id: Mapped[int] = mapped_column(primary_key=True)

def noop(*args):
    pass

BEFORE

said["configure"] = orm_ahead.configure()
said["configured"] = Author.__mapper__.configured

AFTER

said["unproven"] = orm_ahead.unproven()
print(json.dumps(said))
"""

BOOK = """
class Book(Base):
    __tablename__ = "book"
    id: Mapped[int] = mapped_column(primary_key=True)
    author_id: Mapped[int] = mapped_column(ForeignKey("author.id"))
    author: Mapped[Author] = relationship(backref="books")
"""


def run(before: str = "", after: str = "") -> dict:
    return on_host(CASE.replace("BEFORE", before).replace("AFTER", after), ENTRYPOINT)


def test_mappers_are_configured_ahead_when_nothing_else_is_mapped_after():
    said = run(before=BOOK)
    assert said["configure"].startswith("SQLAlchemy's 2 mappers configured ahead in ") and said["configured"]
    assert said["unproven"] is None


def test_nothing_to_configure_is_nothing_done():
    said = on_host("import json, sys; sys.path.insert(0, sys.argv[1]); from unstuck.warm import orm_ahead; "
                   "print(json.dumps([orm_ahead.configure(), orm_ahead.unproven()]))", ENTRYPOINT)
    assert said == [None, None]


@pytest.mark.parametrize("listen", [
    'event.listen(Mapper, "after_configured", noop)',
    'event.listen(Mapper, "before_configured", noop)',
    'event.listen(Author, "mapper_configured", noop)',
    'event.listen(Base, "before_mapper_configured", noop, propagate=True)',
])
def test_a_configure_listener_keeps_the_mappers_for_the_first_query(listen):
    """It would run at the layer's stop, not when a fresh interpreter configures (the app's first query)."""
    said = run(before=BOOK + listen)
    assert said["configure"] is None and not said["configured"]


def test_a_class_mapped_after_the_configuration_is_unproven():
    said = run(after=BOOK)
    assert said["configured"] and "mapped 1 more class(es)" in said["unproven"]


def test_a_configure_listener_registered_after_the_configuration_is_unproven():
    """A fresh interpreter would have run it when it configured the mappers; ahead, it never runs."""
    said = run(after='event.listen(Mapper, "after_configured", noop)')
    assert said["unproven"] == "the import after the app layer's stop registered a after_configured listener"


def test_a_relationship_to_a_class_not_mapped_yet_fails_and_says_so():
    said = run(before='Author.books = relationship("Book")')
    assert said["configure"] == "configuring SQLAlchemy's mappers at the stop fails (InvalidRequestError)"
    assert said["unproven"] is None  # nothing was configured: no worker comes from such a layer



OVERLAPPING = BOOK + """
class Note(Base):
    __tablename__ = "note"
    id: Mapped[int] = mapped_column(primary_key=True)
    author_id: Mapped[int] = mapped_column(ForeignKey("author.id"))
    author: Mapped[Author] = relationship()
    also: Mapped[Author] = relationship()
"""


def stderr_of(script: str) -> str:
    out = subprocess.run([sys.executable, "-c", script, ENTRYPOINT], capture_output=True, text=True, timeout=120,
                         env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"})
    assert out.returncode == 0, out.stderr[-3000:]
    return out.stderr


def test_a_warning_configuring_gave_is_shown_by_the_worker_as_a_fresh_interpreter_shows_it():
    """What the layer prints goes nowhere: a relationship's SAWarning would never be seen on a reload from it."""
    warning = "relationship 'Note.also' will copy column author.id to column note.author_id"
    fresh = CASE.replace("BEFORE", OVERLAPPING).replace("AFTER", "").replace(
        "said[\"configure\"] = orm_ahead.configure()", "import sqlalchemy.orm; sqlalchemy.orm.configure_mappers()")
    assert warning in stderr_of(fresh)
    ahead = stderr_of(CASE.replace("BEFORE", OVERLAPPING).replace("AFTER", 'print("-- the worker --", file=sys.stderr)'))
    assert warning in ahead.partition("-- the worker --")[2] and warning not in ahead.partition("-- the worker --")[0]


def test_a_sqlalchemy_whose_books_read_otherwise_gets_nothing_configured_ahead():
    """Its registries and events are read where SQLAlchemy 1.4 and 2.x keep them; anywhere else, nothing is done
    (and the layer stands in as before), rather than a layer that fails."""
    said = run(before=BOOK + 'orm_ahead.CONFIGURE_EVENTS = ("an_event_this_sqlalchemy_lacks",)')
    assert said["configure"] is None and not said["configured"] and said["unproven"] is None
