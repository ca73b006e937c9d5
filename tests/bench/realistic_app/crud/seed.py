"""The first superuser and a little demo data, created once on an empty database."""

import logging

from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, select

from app.core.config import settings
from app.crud import catalog, users
from app.models import Category, CategoryCreate, ItemCreate, UserCreate

log = logging.getLogger(__name__)

DEMO_CATALOGUE = {
    "Books": [("Fluent Python", 5490, 12), ("Architecture Patterns with Python", 4200, 5)],
    "Hardware": [("Mechanical keyboard", 12900, 8), ("USB-C hub", 3990, 30), ("27-inch monitor", 28900, 3)],
    "Coffee": [("Espresso beans 1 kg", 2450, 40)],
}


def seed(session: Session) -> None:
    admin = users.get_by_email(session, settings.FIRST_SUPERUSER)
    if admin is None:
        try:
            admin = users.create_user(session, UserCreate(
                email=settings.FIRST_SUPERUSER, password=settings.FIRST_SUPERUSER_PASSWORD,
                full_name="Admin", is_superuser=True))
        except IntegrityError:
            # Another worker starting at the same moment created it first.
            session.rollback()
            return
        log.info("created the first superuser %s", admin.email)
    if not settings.SEED_DEMO_DATA or session.exec(select(Category)).first() is not None:
        return
    for name, products in DEMO_CATALOGUE.items():
        category = catalog.categories.create(session, CategoryCreate(name=name))
        for title, price, stock in products:
            catalog.items.create(session, ItemCreate(title=title, price_cents=price, stock=stock,
                                                     category_id=category.id), owner_id=admin.id)
