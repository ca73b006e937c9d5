"""Users: creation with a hashed password, lookup by email, authentication."""

from sqlmodel import Session, select

from app.core.security import hash_password, verify_password
from app.crud.base import Repository
from app.models import Address, User, UserCreate, UserUpdate

users = Repository(User)
addresses = Repository(Address)


def get_by_email(session: Session, email: str) -> User | None:
    return session.exec(select(User).where(User.email == email)).first()


def create_user(session: Session, data: UserCreate) -> User:
    return users.create(session, data, hashed_password=hash_password(data.password))


def update_user(session: Session, user: User, data: UserUpdate) -> User:
    extra = {"hashed_password": hash_password(data.password)} if data.password else {}
    changes = UserUpdate.model_validate(data.model_dump(exclude_unset=True, exclude={"password"}))
    return users.update(session, user, changes, **extra)


def set_password(session: Session, user: User, password: str) -> None:
    user.hashed_password = hash_password(password)
    session.add(user)
    session.commit()


def authenticate(session: Session, email: str, password: str) -> User | None:
    user = get_by_email(session, email)
    if user is None or not verify_password(password, user.hashed_password):
        return None
    return user
