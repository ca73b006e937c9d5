"""Log in, check a token, recover a password."""

from typing import Annotated

import jwt
from fastapi import APIRouter, Depends, HTTPException
from fastapi.responses import HTMLResponse
from fastapi.security import OAuth2PasswordRequestForm

from app.api.deps import CurrentSuperuser, CurrentUser, SessionDep
from app.core.security import create_access_token, create_password_reset_token, decode_token
from app.crud import users
from app.models import Message, NewPassword, Token, UserPublic
from app.services import emails

router = APIRouter(tags=["login"])


@router.post("/login/access-token")
def login(session: SessionDep, form: Annotated[OAuth2PasswordRequestForm, Depends()]) -> Token:
    user = users.authenticate(session, form.username, form.password)
    if user is None:
        raise HTTPException(400, "Incorrect email or password")
    if not user.is_active:
        raise HTTPException(400, "Inactive user")
    return Token(access_token=create_access_token(user.id))


@router.post("/login/test-token", response_model=UserPublic)
def test_token(user: CurrentUser):
    return user


@router.post("/password-recovery/{email}")
def recover_password(email: str, session: SessionDep) -> Message:
    user = users.get_by_email(session, email)
    # The same answer whether or not the address is known, so it cannot be used to find accounts.
    if user is not None:
        emails.send(emails.password_reset_email(user.email, create_password_reset_token(user.email)))
    return Message(message="If that account exists, a recovery email is on its way")


@router.post("/reset-password/")
def reset_password(session: SessionDep, body: NewPassword) -> Message:
    try:
        email = decode_token(body.token, purpose="password-reset")["sub"]
    except jwt.InvalidTokenError:
        raise HTTPException(400, "Invalid or expired token") from None
    user = users.get_by_email(session, email)
    if user is None or not user.is_active:
        raise HTTPException(400, "Invalid or expired token")
    users.set_password(session, user, body.new_password)
    return Message(message="Password updated")


@router.post("/password-recovery-html-content/{email}", response_class=HTMLResponse)
def recovery_email_preview(email: str, session: SessionDep, _: CurrentSuperuser) -> HTMLResponse:
    user = users.get_by_email(session, email)
    if user is None:
        raise HTTPException(404, "No user with this email")
    mail = emails.password_reset_email(user.email, create_password_reset_token(user.email))
    return HTMLResponse(mail.html, headers={"subject": mail.subject})
