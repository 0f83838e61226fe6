"""ORM models, one module per domain (`app/models/<domain>.py`, see `app.domains`).

Importing this package registers every domain's tables on `Base.metadata`, which the
migrations and their drift test compare against. The job backbone's own tables (outbox,
processed messages) are in `app.models.outbox`.
"""

from app.domains import domain_modules
from app.models import outbox
from app.models.base import Base

DOMAIN_MODELS = tuple(domain_modules("app.models"))

__all__ = ["DOMAIN_MODELS", "Base", "outbox"]
