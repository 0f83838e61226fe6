"""The promotions consumer of the order stream (`app.services.orders.consumers`)."""

from app.services.promotions.rides import consume

__all__ = ["consume"]
