"""Token and password-reset schemas (no tables)."""

from pydantic import BaseModel, Field


class Token(BaseModel):
    access_token: str
    token_type: str = "bearer"


class TokenPayload(BaseModel):
    sub: str


class NewPassword(BaseModel):
    token: str
    new_password: str = Field(min_length=8, max_length=128)
