"""Operational helpers: the running configuration and a test email."""

from fastapi import APIRouter
from pydantic import EmailStr

from app.api.deps import CurrentSuperuser
from app.core.config import settings
from app.models import Message
from app.services import emails

router = APIRouter(prefix="/utils", tags=["utils"])


@router.get("/config")
def public_config() -> dict:
    """The settings a frontend may know (no secrets)."""
    return {"project_name": settings.PROJECT_NAME, "environment": settings.ENVIRONMENT,
            "emails_enabled": settings.emails_enabled, "vat_rate_percent": settings.VAT_RATE_PERCENT}


@router.post("/test-email/", status_code=201)
def test_email(email_to: EmailStr, _: CurrentSuperuser) -> Message:
    sent = emails.send(emails.Email(to=email_to, subject=f"{settings.PROJECT_NAME} - test email",
                                    html="<p>Test email.</p>"))
    return Message(message="Test email sent" if sent else "Emails are disabled (set SMTP_HOST and EMAILS_FROM_EMAIL)")
