"""Every table of the data store, imported in one place for migrations and schema tests."""

from __future__ import annotations

from pledge.access import models as access_models
from pledge.audit import models as audit_models
from pledge.core.db import Base
from pledge.subjects import models as subject_models
from pledge.tenants import models as tenant_models

__all__ = ["Base", "access_models", "audit_models", "subject_models", "tenant_models"]
