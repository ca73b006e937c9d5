"""Payments against an invoice."""

from fastapi import APIRouter, HTTPException

from app.api.deps import CurrentUser, OwnedInvoice, SessionDep
from app.crud import billing
from app.crud.orders import OrderError
from app.models import PaymentCreate, PaymentPublic

router = APIRouter(prefix="/invoices/{invoice_id}/payments", tags=["payments"])


@router.get("/", response_model=list[PaymentPublic])
def list_payments(invoice: OwnedInvoice):
    return invoice.payments


@router.post("/", response_model=PaymentPublic, status_code=201)
def pay(session: SessionDep, invoice: OwnedInvoice, body: PaymentCreate, _: CurrentUser):
    try:
        return billing.record_payment(session, invoice, body)
    except OrderError as exc:
        session.rollback()
        raise HTTPException(409, str(exc)) from None
