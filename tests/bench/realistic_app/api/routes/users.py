"""Accounts: sign up, the current user, and user administration."""

import uuid

from fastapi import APIRouter, HTTPException

from app.api.deps import CurrentSuperuser, CurrentUser, PagingDep, SessionDep
from app.core.security import verify_password
from app.crud import users
from app.models import (Message, Page, UpdatePassword, User, UserCreate, UserPublic, UserRegister, UserUpdate,
                        UserUpdateMe)

router = APIRouter(prefix="/users", tags=["users"])


@router.get("/", response_model=Page[UserPublic])
def list_users(session: SessionDep, paging: PagingDep, _: CurrentSuperuser):
    rows, count = users.users.list(session, offset=paging.offset, limit=paging.limit, order_by=User.created_at)
    return Page(data=rows, count=count, offset=paging.offset, limit=paging.limit)


@router.post("/", response_model=UserPublic, status_code=201)
def create_user(session: SessionDep, body: UserCreate, _: CurrentSuperuser):
    if users.get_by_email(session, body.email):
        raise HTTPException(409, f"a user with email {body.email} already exists")
    return users.create_user(session, body)


@router.post("/signup", response_model=UserPublic, status_code=201)
def register(session: SessionDep, body: UserRegister):
    if users.get_by_email(session, body.email):
        raise HTTPException(409, f"a user with email {body.email} already exists")
    return users.create_user(session, UserCreate.model_validate(body))


@router.get("/me", response_model=UserPublic)
def read_me(user: CurrentUser):
    return user


@router.patch("/me", response_model=UserPublic)
def update_me(session: SessionDep, user: CurrentUser, body: UserUpdateMe):
    if body.email and body.email != user.email and users.get_by_email(session, body.email):
        raise HTTPException(409, f"a user with email {body.email} already exists")
    return users.users.update(session, user, body)


@router.patch("/me/password")
def update_my_password(session: SessionDep, user: CurrentUser, body: UpdatePassword) -> Message:
    if not verify_password(body.current_password, user.hashed_password):
        raise HTTPException(400, "Incorrect password")
    if body.current_password == body.new_password:
        raise HTTPException(400, "The new password must differ from the current one")
    users.set_password(session, user, body.new_password)
    return Message(message="Password updated")


@router.delete("/me")
def delete_me(session: SessionDep, user: CurrentUser) -> Message:
    if user.is_superuser:
        raise HTTPException(403, "Superusers cannot delete themselves")
    users.users.delete(session, user)
    return Message(message="User deleted")


@router.get("/{user_id}", response_model=UserPublic)
def read_user(user_id: uuid.UUID, session: SessionDep, current: CurrentUser):
    user = users.users.get(session, user_id)
    if user is None or (user.id != current.id and not current.is_superuser):
        raise HTTPException(404, "User not found")
    return user


@router.patch("/{user_id}", response_model=UserPublic)
def update_user(user_id: uuid.UUID, session: SessionDep, body: UserUpdate, _: CurrentSuperuser):
    user = users.users.get(session, user_id)
    if user is None:
        raise HTTPException(404, "User not found")
    return users.update_user(session, user, body)


@router.delete("/{user_id}")
def delete_user(user_id: uuid.UUID, session: SessionDep, current: CurrentSuperuser) -> Message:
    user = users.users.get(session, user_id)
    if user is None:
        raise HTTPException(404, "User not found")
    if user.id == current.id:
        raise HTTPException(403, "Superusers cannot delete themselves")
    users.users.delete(session, user)
    return Message(message="User deleted")
