"""Invoices: issued for an order, read by its customer."""

from fastapi import APIRouter, BackgroundTasks, HTTPException
from sqlmodel import select

from app.api.deps import CurrentSuperuser, CurrentUser, OwnedInvoice, OwnedOrder, PagingDep, SessionDep
from app.crud import billing
from app.crud.orders import OrderError
from app.models import Invoice, InvoicePublic, InvoiceStatus, Order, Page
from app.services import emails

router = APIRouter(tags=["invoices"])


@router.get("/invoices/", response_model=Page[InvoicePublic])
def list_invoices(session: SessionDep, user: CurrentUser, paging: PagingDep, status: InvoiceStatus | None = None):
    where = [] if user.is_superuser else [
        Invoice.order_id.in_(select(Order.id).where(Order.customer_id == user.id))]
    if status is not None:
        where.append(Invoice.status == status)
    rows, count = billing.invoices.list(session, offset=paging.offset, limit=paging.limit, where=tuple(where),
                                        order_by=Invoice.issued_at.desc())
    return Page(data=rows, count=count, offset=paging.offset, limit=paging.limit)


@router.post("/orders/{order_id}/invoice", response_model=InvoicePublic, status_code=201)
def issue_invoice(session: SessionDep, order: OwnedOrder, tasks: BackgroundTasks, _: CurrentSuperuser):
    try:
        invoice = billing.issue_invoice(session, order)
    except OrderError as exc:
        raise HTTPException(409, str(exc)) from None
    tasks.add_task(emails.send, emails.invoice_email(order.customer.email, invoice.number, invoice.total_cents,
                                                     invoice.due_on.isoformat()))
    return invoice


@router.get("/invoices/{invoice_id}", response_model=InvoicePublic)
def read_invoice(invoice: OwnedInvoice):
    return invoice


@router.post("/invoices/{invoice_id}/void", response_model=InvoicePublic)
def void_invoice(session: SessionDep, invoice: OwnedInvoice, _: CurrentSuperuser):
    if invoice.payments:
        raise HTTPException(409, f"invoice {invoice.number} has payments; refund them first")
    invoice.status = InvoiceStatus.void
    session.add(invoice)
    session.commit()
    session.refresh(invoice)
    return invoice
