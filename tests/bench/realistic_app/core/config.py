"""Settings read from the environment (or a .env file), with defaults that run with no environment at all."""

import warnings
from typing import Annotated, Any, Literal, Self

from pydantic import AnyUrl, BeforeValidator, EmailStr, HttpUrl, computed_field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

# 32+ bytes: PyJWT warns about shorter HMAC keys.
DEV_SECRET = "dev-only-secret-change-me-before-deploying"
DEV_PASSWORD = "changethis"


def split_origins(value: Any) -> list[str] | str:
    """BACKEND_CORS_ORIGINS may be a JSON list or a comma-separated string."""
    if isinstance(value, str) and not value.startswith("["):
        return [origin.strip() for origin in value.split(",") if origin.strip()]
    if isinstance(value, list | str):
        return value
    raise ValueError(f"BACKEND_CORS_ORIGINS: expected a list or a comma-separated string, got {value!r}")


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_file=".env", env_ignore_empty=True, extra="ignore")

    PROJECT_NAME: str = "Realistic shop"
    ENVIRONMENT: Literal["local", "staging", "production"] = "local"
    API_V1_STR: str = "/api/v1"

    # A fixed development secret (not a random one) so tokens survive reloads; refused outside "local".
    SECRET_KEY: str = DEV_SECRET
    ACCESS_TOKEN_EXPIRE_MINUTES: int = 60 * 24 * 8
    PASSWORD_RESET_EXPIRE_HOURS: int = 48

    # A file in /tmp: the app starts with no database server.
    DATABASE_URL: str = "sqlite:////tmp/realistic-app.db"
    DATABASE_ECHO: bool = False

    FRONTEND_HOST: str = "http://localhost:5173"
    BACKEND_CORS_ORIGINS: Annotated[list[AnyUrl] | str, BeforeValidator(split_origins)] = []

    SENTRY_DSN: HttpUrl | None = None

    FIRST_SUPERUSER: EmailStr = "admin@example.com"
    FIRST_SUPERUSER_PASSWORD: str = DEV_PASSWORD
    SEED_DEMO_DATA: bool = True

    SMTP_HOST: str | None = None
    SMTP_PORT: int = 587
    EMAILS_FROM_EMAIL: EmailStr | None = None

    DEFAULT_PAGE_SIZE: int = 50
    MAX_PAGE_SIZE: int = 500
    VAT_RATE_PERCENT: int = 20
    INVOICE_DUE_DAYS: int = 30

    @computed_field  # type: ignore[prop-decorator]
    @property
    def all_cors_origins(self) -> list[str]:
        return [str(origin).rstrip("/") for origin in self.BACKEND_CORS_ORIGINS] + [self.FRONTEND_HOST]

    @computed_field  # type: ignore[prop-decorator]
    @property
    def emails_enabled(self) -> bool:
        return bool(self.SMTP_HOST and self.EMAILS_FROM_EMAIL)

    @model_validator(mode="after")
    def refuse_dev_secrets_outside_local(self) -> Self:
        defaults = [name for name, value, default in (("SECRET_KEY", self.SECRET_KEY, DEV_SECRET),
                                                      ("FIRST_SUPERUSER_PASSWORD", self.FIRST_SUPERUSER_PASSWORD,
                                                       DEV_PASSWORD))
                    if value == default]
        if defaults:
            message = f"{' and '.join(defaults)} keep their development defaults: set them in the environment"
            if self.ENVIRONMENT != "local":
                raise ValueError(message)
            warnings.warn(message, stacklevel=1)
        return self


settings = Settings()
