"""Every table and schema, importable from one place (importing this registers all tables)."""

from app.models.auth import NewPassword, Token, TokenPayload
from app.models.billing import (Invoice, InvoicePublic, InvoiceStatus, Payment, PaymentCreate, PaymentMethod,
                                PaymentPublic)
from app.models.catalog import (Category, CategoryCreate, CategoryPublic, CategoryUpdate, Item, ItemCreate, ItemPublic,
                                ItemUpdate, Review, ReviewCreate, ReviewPublic)
from app.models.common import Message, Page
from app.models.order import (Order, OrderCreate, OrderLine, OrderLineCreate, OrderLinePublic, OrderPublic, OrderStatus,
                              OrderStatusUpdate)
from app.models.report import SalesByDay, SalesSummary, TopItem
from app.models.user import (Address, AddressCreate, AddressKind, AddressPublic, AddressUpdate, UpdatePassword, User,
                             UserCreate, UserPublic, UserRegister, UserUpdate, UserUpdateMe)

__all__ = [
    "Address", "AddressCreate", "AddressKind", "AddressPublic", "AddressUpdate", "Category", "CategoryCreate",
    "CategoryPublic", "CategoryUpdate", "Invoice", "InvoicePublic", "InvoiceStatus", "Item", "ItemCreate", "ItemPublic",
    "ItemUpdate", "Message", "NewPassword", "Order", "OrderCreate", "OrderLine", "OrderLineCreate", "OrderLinePublic",
    "OrderPublic", "OrderStatus", "OrderStatusUpdate", "Page", "Payment", "PaymentCreate", "PaymentMethod",
    "PaymentPublic", "Review", "ReviewCreate", "ReviewPublic", "SalesByDay", "SalesSummary", "Token", "TokenPayload",
    "TopItem", "UpdatePassword", "User", "UserCreate", "UserPublic", "UserRegister", "UserUpdate", "UserUpdateMe",
]
