"""What routes depend on: a session, the current user, paging, and owned rows."""

import uuid
from collections.abc import Iterator
from typing import Annotated

import jwt
from fastapi import Depends, HTTPException, Query, status
from fastapi.security import OAuth2PasswordBearer
from pydantic import ValidationError
from sqlmodel import Session

from app.core.config import settings
from app.core.db import get_session
from app.core.security import decode_token
from app.models import Invoice, Order, TokenPayload, User

oauth2 = OAuth2PasswordBearer(tokenUrl=f"{settings.API_V1_STR}/login/access-token")


def get_db() -> Iterator[Session]:
    yield from get_session()


SessionDep = Annotated[Session, Depends(get_db)]
TokenDep = Annotated[str, Depends(oauth2)]


def get_current_user(session: SessionDep, token: TokenDep) -> User:
    try:
        payload = TokenPayload.model_validate(decode_token(token))
        user_id = uuid.UUID(payload.sub)
    except (jwt.InvalidTokenError, ValidationError, ValueError):
        raise HTTPException(status.HTTP_403_FORBIDDEN, "Could not validate credentials") from None
    user = session.get(User, user_id)
    if user is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "User not found")
    if not user.is_active:
        raise HTTPException(status.HTTP_400_BAD_REQUEST, "Inactive user")
    return user


CurrentUser = Annotated[User, Depends(get_current_user)]


def get_current_superuser(user: CurrentUser) -> User:
    if not user.is_superuser:
        raise HTTPException(status.HTTP_403_FORBIDDEN, "The user doesn't have enough privileges")
    return user


CurrentSuperuser = Annotated[User, Depends(get_current_superuser)]


class Paging:
    def __init__(self, offset: Annotated[int, Query(ge=0)] = 0,
                 limit: Annotated[int | None, Query(ge=1, le=settings.MAX_PAGE_SIZE)] = None) -> None:
        self.offset = offset
        self.limit = limit or settings.DEFAULT_PAGE_SIZE


PagingDep = Annotated[Paging, Depends()]


def get_owned_order(order_id: uuid.UUID, session: SessionDep, user: CurrentUser) -> Order:
    """The order, if it exists and the user may see it (its customer, or a superuser)."""
    order = session.get(Order, order_id)
    if order is None or (order.customer_id != user.id and not user.is_superuser):
        raise HTTPException(status.HTTP_404_NOT_FOUND, "Order not found")
    return order


OwnedOrder = Annotated[Order, Depends(get_owned_order)]


def get_owned_invoice(invoice_id: uuid.UUID, session: SessionDep, user: CurrentUser) -> Invoice:
    invoice = session.get(Invoice, invoice_id)
    if invoice is None or (invoice.order.customer_id != user.id and not user.is_superuser):
        raise HTTPException(status.HTTP_404_NOT_FOUND, "Invoice not found")
    return invoice


OwnedInvoice = Annotated[Invoice, Depends(get_owned_invoice)]
