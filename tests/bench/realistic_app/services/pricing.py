"""Tax, invoice numbers and due dates."""

from datetime import date, timedelta

from app.core.config import settings
from app.models.common import utcnow


def vat_cents(subtotal_cents: int) -> int:
    # Round half up to the cent, in integers: no float error on money.
    return (subtotal_cents * settings.VAT_RATE_PERCENT + 50) // 100


def invoice_number(sequence: int) -> str:
    return f"INV-{utcnow():%Y}-{sequence:06d}"


def due_date() -> date:
    return utcnow().date() + timedelta(days=settings.INVOICE_DUE_DAYS)
