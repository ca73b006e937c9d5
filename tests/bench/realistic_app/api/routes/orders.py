"""Placing and following orders."""

from fastapi import APIRouter, HTTPException

from app.api.deps import CurrentSuperuser, CurrentUser, OwnedOrder, PagingDep, SessionDep
from app.crud import orders
from app.crud.orders import OrderError
from app.models import Order, OrderCreate, OrderPublic, OrderStatus, OrderStatusUpdate, Page

router = APIRouter(prefix="/orders", tags=["orders"])


@router.get("/", response_model=Page[OrderPublic])
def list_orders(session: SessionDep, user: CurrentUser, paging: PagingDep, status: OrderStatus | None = None):
    where = [] if user.is_superuser else [Order.customer_id == user.id]
    if status is not None:
        where.append(Order.status == status)
    rows, count = orders.orders.list(session, offset=paging.offset, limit=paging.limit, where=tuple(where),
                                     order_by=Order.created_at.desc())
    return Page(data=rows, count=count, offset=paging.offset, limit=paging.limit)


@router.post("/", response_model=OrderPublic, status_code=201)
def place_order(session: SessionDep, user: CurrentUser, body: OrderCreate):
    try:
        return orders.place_order(session, user.id, body)
    except OrderError as exc:
        session.rollback()
        raise HTTPException(409, str(exc)) from None


@router.get("/{order_id}", response_model=OrderPublic)
def read_order(order: OwnedOrder):
    return order


@router.post("/{order_id}/cancel", response_model=OrderPublic)
def cancel_order(session: SessionDep, order: OwnedOrder):
    try:
        return orders.change_status(session, order, OrderStatus.cancelled)
    except OrderError as exc:
        raise HTTPException(409, str(exc)) from None


@router.patch("/{order_id}/status", response_model=OrderPublic)
def set_status(session: SessionDep, order: OwnedOrder, body: OrderStatusUpdate, _: CurrentSuperuser):
    try:
        return orders.change_status(session, order, body.status)
    except OrderError as exc:
        raise HTTPException(409, str(exc)) from None
