"""Liveness and readiness probes."""

from fastapi import APIRouter, HTTPException
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from app.api.deps import SessionDep
from app.core.config import settings

router = APIRouter(prefix="/health", tags=["health"])


@router.get("/live")
def live() -> dict:
    return {"status": "ok"}


@router.get("/ready")
def ready(session: SessionDep) -> dict:
    try:
        session.exec(text("SELECT 1"))
    except SQLAlchemyError as exc:
        raise HTTPException(503, f"database unreachable: {exc.__class__.__name__}") from None
    return {"status": "ok", "environment": settings.ENVIRONMENT}
