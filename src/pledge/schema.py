"""Every table of the data store, imported in one place for migrations and schema tests."""

from __future__ import annotations

from pledge.access import models as access_models
from pledge.audit import models as audit_models
from pledge.campaigns import models as campaign_models
from pledge.consent import models as consent_models
from pledge.core.db import Base
from pledge.mail import models as mail_models
from pledge.notices import models as notice_models
from pledge.preferences import models as preference_models
from pledge.purposes import models as purpose_models
from pledge.rights import models as rights_models
from pledge.signals import models as signal_models
from pledge.subjects import models as subject_models
from pledge.tenants import models as tenant_models
from pledge.webhooks import models as webhook_models

__all__ = [
    "Base",
    "access_models",
    "audit_models",
    "campaign_models",
    "consent_models",
    "mail_models",
    "notice_models",
    "preference_models",
    "purpose_models",
    "rights_models",
    "signal_models",
    "subject_models",
    "tenant_models",
    "webhook_models",
]
