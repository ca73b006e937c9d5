"""Invoices and payments."""

from sqlmodel import Session, func, select

from app.crud.base import Repository
from app.crud.orders import OrderError
from app.models import Invoice, InvoiceStatus, Order, OrderStatus, Payment, PaymentCreate
from app.services.pricing import due_date, invoice_number, vat_cents

invoices = Repository(Invoice)
payments = Repository(Payment)


def issue_invoice(session: Session, order: Order) -> Invoice:
    if order.invoice is not None:
        raise OrderError(f"order {order.id} already has invoice {order.invoice.number}")
    if order.status is OrderStatus.cancelled:
        raise OrderError(f"order {order.id} is cancelled")
    sequence = session.exec(select(func.count()).select_from(Invoice)).one() + 1
    subtotal = order.subtotal_cents
    vat = vat_cents(subtotal)
    invoice = Invoice(order_id=order.id, number=invoice_number(sequence), due_on=due_date(),
                      subtotal_cents=subtotal, vat_cents=vat, total_cents=subtotal + vat)
    session.add(invoice)
    session.commit()
    session.refresh(invoice)
    return invoice


def record_payment(session: Session, invoice: Invoice, data: PaymentCreate) -> Payment:
    if invoice.status is not InvoiceStatus.open:
        raise OrderError(f"invoice {invoice.number} is {invoice.status.value}")
    if data.amount_cents > invoice.balance_cents:
        raise OrderError(f"{data.amount_cents} exceeds the balance of {invoice.balance_cents}")
    payment = Payment.model_validate(data, update={"invoice_id": invoice.id})
    session.add(payment)
    session.flush()
    session.refresh(invoice)
    if invoice.balance_cents == 0:
        invoice.status = InvoiceStatus.paid
        session.add(invoice)
    session.commit()
    session.refresh(payment)
    return payment
