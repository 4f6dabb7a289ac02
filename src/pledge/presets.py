"""Configurations taken from the seeds, one call each: a new tenant can start from the practice
of a company like it, and the tests prove every promise of those policies is expressible.

`clik` is Clik Limited's notice (seed 004) one to one: a purpose and a lawful basis per
collection channel.
"""

from __future__ import annotations

from pledge.access.context import TenantContext
from pledge.notices import service as notices
from pledge.preferences import topics
from pledge.purposes import service as purposes
from pledge.purposes.service import CollectionPointInput, CollectsFor, PurposeInput

CLIK_PRIVACY_NOTICE = (
    "Clik Limited privacy notice. We collect information from anyone who contacts us, visitors "
    "to our website, anyone who downloads a trial, registers for a demo, makes a purchase or "
    "subscribes to our newsletter or status updates. See each section for the legal basis."
)
CLIK_NEWSLETTER_WORDING = (
    "Yes, send me the Clik newsletter by e-mail. I can unsubscribe at any time with the link "
    "at the bottom of every newsletter."
)
CLIK_PRODUCT_INFO_WORDING = (
    "Yes, please send me information about the Clik services I asked about in this chat."
)

LI = "LegitimateInterest"


def clik(ctx: TenantContext) -> None:
    notices.create_notice(ctx, slug="privacy", kind="privacy_notice", title="Privacy notice")
    notices.publish_version(ctx, "privacy", text=CLIK_PRIVACY_NOTICE)
    notices.create_notice(
        ctx, slug="newsletter-consent", kind="consent_wording", title="Newsletter consent"
    )
    notices.publish_version(ctx, "newsletter-consent", text=CLIK_NEWSLETTER_WORDING)
    notices.create_notice(
        ctx,
        slug="product-info-consent",
        kind="consent_wording",
        title="Product information consent",
    )
    notices.publish_version(ctx, "product-info-consent", text=CLIK_PRODUCT_INFO_WORDING)

    def purpose(slug: str, name: str, basis: str, **kw: object) -> None:
        purposes.create_purpose(ctx, PurposeInput(slug=slug, name=name, lawful_basis=basis, **kw))  # type: ignore[arg-type]

    contact = ["user.contact", "user.name"]
    purpose(
        "record-keeping",
        "Keep a record of our correspondence and answer requests",
        LI,
        data_categories=contact,
        channels=["email", "phone", "post"],
        legitimate_interest_note="to provide high quality and relevant information and services",
    )
    purpose(
        "call-training",
        "Record calls for training",
        LI,
        # A recording of what was said, kept for training and disputes (seed 004): content,
        # not a voice print — nobody is identified by their voice (GDPR Art. 9 biometrics).
        data_categories=["user.content.private", "user.contact.phone_number"],
        legitimate_interest_note="to train our staff and handle potential disputes",
    )
    purpose(
        "site-analytics",
        "Find out how the website is used (Google Analytics)",
        LI,
        data_categories=["user.behavior.browsing_history", "user.device"],
        channels=["web"],
        legitimate_interest_note="to find out how our website is working and how to improve it",
    )
    purpose(
        "provide-service",
        "Supply and support the services purchased",
        "Contract",
        data_categories=[*contact, "user.financial"],
        channels=["email", "phone"],
    )
    purpose(
        "software-help",
        "Send information to help use the software",
        LI,
        data_categories=contact,
        channels=["email"],
        legitimate_interest_note="to help you use the software and contact you about it",
    )
    purpose(
        "service-analysis",
        "Analyse and develop our services",
        LI,
        data_categories=["user.behavior"],
        legitimate_interest_note="to analyse and develop our services",
    )
    purpose(
        "product-info",
        "Send information on the services asked about in a live chat",
        "Consent",
        data_categories=contact,
        channels=["email"],
        is_marketing=True,
        consent_notice="product-info-consent",
    )
    purpose(
        "support",
        "Answer support chats and improve our support",
        LI,
        data_categories=[*contact, "user.content"],
        legitimate_interest_note="to respond after the chat and improve the services we provide",
    )
    purpose(
        "newsletter",
        "The Clik newsletter",
        "Consent",
        data_categories=["user.contact.email"],
        channels=["email"],
        is_marketing=True,
        consent_notice="newsletter-consent",
    )
    purpose(
        "status-updates",
        "Service status e-mails",
        LI,
        data_categories=["user.contact.email"],
        channels=["email"],
        legitimate_interest_note="to inform you about our service status",
    )
    purpose(
        "product-marketing",
        "Information on our products and services",
        LI,
        data_categories=contact,
        channels=["email", "post"],
        is_marketing=True,
        legitimate_interest_note="to send information on products and services of interest to you",
    )
    purpose(
        "marketing-preferences",
        "Record marketing preferences",
        "LegalObligation",
        data_categories=["user.privacy_preferences"],
    )

    def point(
        slug: str, name: str, kind: str, *collects: str, wording: dict[str, str] | None = None
    ) -> None:
        purposes.save_collection_point(
            ctx,
            CollectionPointInput(
                slug=slug,
                name=name,
                kind=kind,
                privacy_notice="privacy",
                purposes=[CollectsFor(p, (wording or {}).get(p)) for p in collects],
            ),
        )

    point(
        "contact-email",
        "Anyone who contacts us by e-mail",
        "email",
        "record-keeping",
        "marketing-preferences",
    )
    point("contact-phone", "Anyone who calls us", "phone_call", "record-keeping", "call-training")
    point("contact-letter", "Anyone who writes to us", "letter", "record-keeping")
    point("trade-show", "Trade shows", "trade_show", "record-keeping")
    point("website", "Visitors to cliksoftware.com", "website_visit", "site-analytics")
    point(
        "trial",
        "Trial download",
        "trial_download",
        "provide-service",
        "software-help",
        "service-analysis",
    )
    point(
        "demo",
        "Demo registration",
        "demo_registration",
        "provide-service",
        "software-help",
        "service-analysis",
    )
    point(
        "product-interest",
        "Interest in new products",
        "product_interest",
        "record-keeping",
        "product-marketing",
    )
    point(
        "purchase",
        "Purchase through the website",
        "purchase",
        "provide-service",
        "software-help",
        "service-analysis",
        "marketing-preferences",
    )
    point(
        "sales-chat",
        "Live chat on the product page (HubSpot)",
        "live_chat",
        "record-keeping",
        "product-info",
    )
    point("support-chat", "Live chat on the support page (Zendesk)", "live_chat", "support")
    point("newsletter", "Newsletter sign-up", "newsletter_signup", "newsletter")
    point("status-page", "Status page subscription", "status_subscription", "status-updates")

    topics.create_topic(ctx, slug="newsletter", name="The Clik newsletter", purpose="newsletter")
    topics.create_topic(ctx, slug="status", name="Service status updates", purpose="status-updates")
    topics.create_topic(ctx, slug="product-news", name="Product news", purpose="product-marketing")
    topics.create_topic(
        ctx, slug="account", name="Account and service messages", purpose="provide-service"
    )
