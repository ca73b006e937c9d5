"""Sales reports for the back office."""

from typing import Annotated

from fastapi import APIRouter, Query

from app.api.deps import CurrentSuperuser, SessionDep
from app.crud.reports import sales_summary
from app.models import SalesSummary

router = APIRouter(prefix="/reports", tags=["reports"])


@router.get("/sales", response_model=SalesSummary)
def sales(session: SessionDep, _: CurrentSuperuser, top: Annotated[int, Query(ge=1, le=50)] = 5):
    return sales_summary(session, top)
