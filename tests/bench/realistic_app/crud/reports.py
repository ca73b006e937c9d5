"""Sales aggregates, computed in SQL."""

from sqlmodel import Session, func, select

from app.models import Invoice, Item, Order, OrderLine, OrderStatus, Payment, SalesByDay, SalesSummary, TopItem


def sales_summary(session: Session, top: int = 5) -> SalesSummary:
    live = Order.status != OrderStatus.cancelled
    orders = session.exec(select(func.count()).select_from(Order).where(live)).one()
    invoiced = session.exec(select(func.coalesce(func.sum(Invoice.total_cents), 0))).one()
    paid = session.exec(select(func.coalesce(func.sum(Payment.amount_cents), 0))).one()
    revenue = func.sum(OrderLine.quantity * OrderLine.unit_price_cents)
    day = func.date(Order.created_at)
    by_day = session.exec(
        select(day, func.count(func.distinct(Order.id)), revenue)
        .join(OrderLine, OrderLine.order_id == Order.id).where(live).group_by(day).order_by(day)).all()
    top_items = session.exec(
        select(Item.title, func.sum(OrderLine.quantity), revenue)
        .join(OrderLine, OrderLine.item_id == Item.id).join(Order, Order.id == OrderLine.order_id).where(live)
        .group_by(Item.id).order_by(revenue.desc()).limit(top)).all()
    return SalesSummary(
        orders=orders, invoiced_cents=invoiced, paid_cents=paid, outstanding_cents=invoiced - paid,
        by_day=[SalesByDay(day=d, orders=n, revenue_cents=r) for d, n, r in by_day],
        top_items=[TopItem(title=t, quantity=q, revenue_cents=r) for t, q, r in top_items])
