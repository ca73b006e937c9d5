"""Orders: placing one checks stock and freezes prices."""

import uuid

from sqlmodel import Session

from app.crud.base import Repository
from app.models import Address, Item, Order, OrderCreate, OrderLine, OrderStatus

orders = Repository(Order)


class OrderError(ValueError):
    """An order that cannot be placed or changed as asked; the message says why."""


# Which status may follow which: anything else is refused.
TRANSITIONS = {
    OrderStatus.pending: {OrderStatus.confirmed, OrderStatus.cancelled},
    OrderStatus.confirmed: {OrderStatus.shipped, OrderStatus.cancelled},
    OrderStatus.shipped: {OrderStatus.delivered},
    OrderStatus.delivered: set(),
    OrderStatus.cancelled: set(),
}


def place_order(session: Session, customer_id: uuid.UUID, data: OrderCreate) -> Order:
    if data.shipping_address_id is not None:
        address = session.get(Address, data.shipping_address_id)
        if address is None or address.user_id != customer_id:
            raise OrderError(f"address {data.shipping_address_id} is not one of yours")
    order = Order(customer_id=customer_id, shipping_address_id=data.shipping_address_id, note=data.note)
    for wanted in data.lines:
        item = session.get(Item, wanted.item_id)
        if item is None:
            raise OrderError(f"item {wanted.item_id} does not exist")
        if item.stock < wanted.quantity:
            raise OrderError(f"only {item.stock} of {item.title!r} in stock, {wanted.quantity} asked")
        item.stock -= wanted.quantity
        order.lines.append(OrderLine(item_id=item.id, quantity=wanted.quantity, unit_price_cents=item.price_cents))
        session.add(item)
    session.add(order)
    session.commit()
    session.refresh(order)
    return order


def change_status(session: Session, order: Order, status: OrderStatus) -> Order:
    if status not in TRANSITIONS[order.status]:
        raise OrderError(f"an order that is {order.status.value} cannot become {status.value}")
    if status is OrderStatus.cancelled:
        for line in order.lines:
            if line.item is not None:
                line.item.stock += line.quantity
                session.add(line.item)
    order.status = status
    session.add(order)
    session.commit()
    session.refresh(order)
    return order
