"""Transactional emails rendered from Jinja2 templates (sent only when SMTP is configured)."""

import logging
import smtplib
from dataclasses import dataclass
from email.message import EmailMessage
from pathlib import Path

from jinja2 import Environment, FileSystemLoader, select_autoescape

from app.core.config import settings

log = logging.getLogger(__name__)
templates = Environment(loader=FileSystemLoader(Path(__file__).resolve().parent.parent / "email_templates"),
                        autoescape=select_autoescape(["html"]))


@dataclass
class Email:
    to: str
    subject: str
    html: str


def password_reset_email(to: str, token: str) -> Email:
    link = f"{settings.FRONTEND_HOST}/reset-password?token={token}"
    html = templates.get_template("reset_password.html").render(
        project_name=settings.PROJECT_NAME, email=to, link=link, valid_hours=settings.PASSWORD_RESET_EXPIRE_HOURS)
    return Email(to=to, subject=f"{settings.PROJECT_NAME} - password recovery", html=html)


def invoice_email(to: str, number: str, total_cents: int, due_on: str) -> Email:
    html = templates.get_template("invoice.html").render(
        project_name=settings.PROJECT_NAME, number=number, total=f"{total_cents / 100:.2f}", due_on=due_on)
    return Email(to=to, subject=f"{settings.PROJECT_NAME} - invoice {number}", html=html)


def send(email: Email) -> bool:
    """Send `email` if SMTP is configured; False (and a log line) if it is not."""
    if not settings.emails_enabled:
        log.info("emails are disabled (no SMTP_HOST/EMAILS_FROM_EMAIL): not sending %r", email.subject)
        return False
    message = EmailMessage()
    message["From"], message["To"], message["Subject"] = settings.EMAILS_FROM_EMAIL, email.to, email.subject
    message.set_content(email.html, subtype="html")
    with smtplib.SMTP(settings.SMTP_HOST, settings.SMTP_PORT, timeout=10) as smtp:
        smtp.starttls()
        smtp.send_message(message)
    return True
