"""Every router under one APIRouter, mounted at settings.API_V1_STR."""

from fastapi import APIRouter

from app.api.routes import (addresses, auth, categories, health, invoices, items, orders, payments, reports, reviews,
                            users, utils)

api_router = APIRouter()
for module in (health, auth, users, addresses, categories, items, reviews, orders, invoices, payments, reports, utils):
    api_router.include_router(module.router)
