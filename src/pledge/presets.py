"""Configurations taken from the seeds, one call each: a new tenant can start from the practice
of a company like it, and the tests prove every promise of those policies is expressible.

Each preset configures an existing tenant through the services (notices, purposes and their
lawful bases, collection points, topics, recipients, retention classes, the rights promise,
the signal settings). What only a tenant's creation sets — its jurisdictions, hosting region,
phone region and privacy contact — a `Preset` carries as defaults for `create_tenant` (and
`pledge tenant create --preset`), which creates the tenant and applies the preset in one
transaction. Children's thresholds are left to `pledge tenant children`.

`clik` is Clik Limited's notice (seed 004) one to one: a purpose and a lawful basis per
collection channel.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial

from sqlalchemy.orm import Session

from pledge.access.context import OPERATOR, Actor, TenantContext
from pledge.core.errors import InvalidInput
from pledge.crypto.keystore import KeyStore
from pledge.notices import service as notices
from pledge.preferences import topics
from pledge.purposes import service as purposes
from pledge.purposes.service import CollectionPointInput, CollectsFor, PurposeInput
from pledge.rights import recipients
from pledge.rights.recipients import TransferMechanism
from pledge.signals import settings as signal_settings
from pledge.tenants import service as tenants
from pledge.tenants.models import Tenant

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


def _notice(ctx: TenantContext, slug: str, kind: str, title: str, text: str) -> None:
    notices.create_notice(ctx, slug=slug, kind=kind, title=title)
    notices.publish_version(ctx, slug, text=text)


def _purpose(ctx: TenantContext, slug: str, name: str, basis: str, **kw: object) -> None:
    purposes.create_purpose(ctx, PurposeInput(slug=slug, name=name, lawful_basis=basis, **kw))  # type: ignore[arg-type]


def _point(
    ctx: TenantContext,
    slug: str,
    name: str,
    kind: str,
    *collects: str,
    wording: dict[str, str] | None = None,
) -> None:
    """A collection point under the privacy notice; `wording`: purpose → its consent wording."""
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


def _recipient(
    ctx: TenantContext,
    slug: str,
    name: str,
    kind: str,
    country: str,
    mechanism: str | None = None,
) -> None:
    """A recipient told in the access answer; none has a webhook yet (the tenant adds the
    URL its recipient gives, for Art. 19 notices)."""
    recipients.add_recipient(
        ctx,
        slug=slug,
        name=name,
        kind=kind,
        country=country,
        webhook_url=None,
        transfer_mechanism=mechanism,
    )


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

    purpose = partial(_purpose, ctx)

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
    # "All call recordings are stored behind our firewall … and deleted after 12 months."
    tenants.set_interaction_retention(ctx, "user.content.private", "call", "12 months")
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

    point = partial(_point, ctx)

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

    # Complaints (seed 004 "Complaints"): used "only … to handle, investigate and respond to
    # the complaint and to check on the level of service we provide".
    purpose(
        "complaints",
        "Handle, investigate and respond to a complaint",
        LI,
        data_categories=[*contact, "user.content"],
        channels=["email", "phone", "post"],
        legitimate_interest_note=(
            "to handle, investigate and respond to your complaint and check on the level of "
            "service we provide"
        ),
    )
    point("complaint", "A complaint about our use of personal information", "email", "complaints")
    # The live-chat providers and the analytics service the notice names ("Hubspot Live Chat",
    # "Zendesk Live Chat", chats "stored on our Hubspot CRM", Google Analytics). All three are
    # in the US. The notice's two routes out of the UK are a country with "comparable data
    # protection legislation" (adequacy: the US has none as a country) or "suitable clauses in
    # our contracts" — for the US, the clauses: the UK's IDTA (or the addendum to the EU's).
    for slug, name in (
        ("hubspot", "HubSpot (live chat and CRM)"),
        ("zendesk", "Zendesk (support live chat)"),
        ("google-analytics", "Google Analytics"),
    ):
        _recipient(ctx, slug, name, "sub_processor", "US", TransferMechanism.UK_IDTA.value)


CLIK_PRIVACY_CONTACT = (
    "Privacy Manager, Clik Limited, Tobacco Factory, Raleigh Road, Southville, Bristol; "
    "privacy@cliksoftware.com; 0117 902 2012"
)


# Seed 000: One Click System (OneClickSystem AI privacy policy, its DPA and erasure form).
ONE_CLICK_PRIVACY_NOTICE = (
    "One Click System privacy notice. We collect the personal information you give us when "
    "you subscribe to our newsletter, create an account, make a purchase or ask us for "
    "information, some from partners and vendors, and some automatically through cookies. We "
    "use it to provide, support and improve the Platform, run our business, communicate with "
    "you and, as you choose, for marketing and advertising, on your consent, a contract, a "
    "legal obligation or our legitimate interests. We do not sell personal information, and "
    "the Platform does not respond to Do Not Track signals. We answer an erasure request "
    "within one month of receiving it or any further information we ask for, whichever is "
    "later. Contact: support@oneclicksystem.ai."
)
ONE_CLICK_NEWSLETTER_WORDING = (
    "Yes, send me One Click System's newsletter and marketing e-mails. I can unsubscribe at any "
    "time. See the privacy notice."
)
ONE_CLICK_ADVERTISING_WORDING = (
    "Yes, use cookies to show me personalised advertising and measure campaigns. I can "
    "withdraw at any time, and California residents may opt out of this sharing. See the "
    "privacy notice."
)


def one_click(ctx: TenantContext) -> None:
    """One Click System (seed 000): contract and legitimate-interest uses, marketing and
    personalised advertising (the CCPA's "sharing") on consent, erasure answered within one
    month, restarting from any further information asked for.

    Children under 16 are set by `pledge tenant children`."""
    _notice(ctx, "privacy", "privacy_notice", "Privacy notice", ONE_CLICK_PRIVACY_NOTICE)
    _notice(
        ctx,
        "newsletter-consent",
        "consent_wording",
        "Newsletter consent",
        ONE_CLICK_NEWSLETTER_WORDING,
    )
    _notice(
        ctx,
        "advertising-consent",
        "consent_wording",
        "Advertising consent",
        ONE_CLICK_ADVERTISING_WORDING,
    )
    purpose = partial(_purpose, ctx)
    contact = ["user.contact", "user.name"]
    purpose(
        "platform",
        "Provide and personalise the Platform",
        "Contract",
        data_categories=[*contact, "user.account", "user.device"],
        channels=["web", "email"],
    )
    purpose(
        "support",
        "Updates, maintenance and customer support",
        "Contract",
        data_categories=[*contact, "user.content"],
        channels=["email", "phone"],
    )
    # "we may still send you communications related to your products or the Platform, such
    # as information about a security update": not marketing, so no opt-out stops it.
    purpose(
        "service-messages",
        "Service alerts, security updates and policy updates",
        "Contract",
        data_categories=["user.contact.email"],
        channels=["email"],
    )
    purpose(
        "accounting",
        "Accounting and legal compliance",
        "LegalObligation",
        data_categories=[*contact, "user.financial"],
    )
    purpose(
        "fraud-prevention",
        "Fraud prevention and security",
        LI,
        data_categories=["user.device", "user.behavior"],
        legitimate_interest_note="to prevent fraud and keep the Platform secure",
    )
    purpose(
        "marketing",
        "Marketing of our services by e-mail",
        "Consent",
        data_categories=contact,
        channels=["email"],
        is_marketing=True,
        consent_notice="newsletter-consent",
    )
    purpose(
        "advertising",
        "Personalised advertising and campaign analysis",
        "Consent",
        data_categories=["user.behavior", "user.device"],
        channels=["web"],
        is_marketing=True,
        # Cross-context behavioural advertising is "sharing" under the CCPA: a California
        # opt-out (or GPC) stops it whatever the consent.
        is_sale_or_sharing=True,
        consent_notice="advertising-consent",
    )
    purpose(
        "research",
        "Surveys and research",
        LI,
        data_categories=contact,
        channels=["email"],
        legitimate_interest_note="to understand our users' needs and improve our services",
    )
    purpose(
        "improvement",
        "Improve the Platform and develop new features",
        LI,
        data_categories=["user.behavior"],
        legitimate_interest_note="to understand how the Platform is used and improve it",
    )
    point = partial(_point, ctx)
    news = {"marketing": "newsletter-consent"}
    ads = {"advertising": "advertising-consent"}
    point("newsletter", "Newsletter subscription", "newsletter_signup", "marketing", wording=news)
    point(
        "account",
        "Account creation",
        "web_form",
        "platform",
        "support",
        "service-messages",
        "fraud-prevention",
        "marketing",
        wording=news,
    )
    point(
        "purchase",
        "Purchase",
        "purchase",
        "platform",
        "support",
        "service-messages",
        "accounting",
        "fraud-prevention",
    )
    point("information-request", "Request for information", "web_form", "support", "research")
    point(
        "website",
        "Visitors to the Platform (cookies)",
        "website_visit",
        "improvement",
        "fraud-prevention",
        "advertising",
        wording=ads,
    )
    topics.create_topic(ctx, slug="newsletter", name="Newsletter", purpose="marketing")
    topics.create_topic(ctx, slug="service", name="Service messages", purpose="service-messages")
    topics.create_topic(ctx, slug="surveys", name="Surveys and research", purpose="research")
    # Annex B: "Processor uses managed services (AWS, GoogleCloud)". The policy says transfers
    # keep "comparable safeguards" to the Australian Privacy Principles; no `TransferMechanism`
    # names that, so none is recorded and the access answer tells it.
    _recipient(ctx, "aws", "Amazon Web Services (hosting, backups)", "sub_processor", "US")
    _recipient(ctx, "google-cloud", "Google Cloud (hosting, backups)", "sub_processor", "US")
    tenants.set_rights_promise(ctx, "erasure", "1 months", restart_on_information=True)
    # "At this time, the Platform does not respond to DNT signals."
    signal_settings.update_signal_settings(ctx, dnt_policy="record")


# Seed 001: 1CRM Systems Corp.
ONECRM_PRIVACY_NOTICE = (
    "1CRM privacy notice. We use the information you give us and information collected "
    "automatically to provide and support the Service (necessary for our Terms of Service), "
    "to improve it and to send you updates on promotions and events (our legitimate "
    "interests: you may opt out at any time), and on your consent where we ask for it. We use "
    "Google Analytics on the public site. We do not respond to Do Not Track signals. EU "
    "customers' databases are hosted in our EU data centre in the Netherlands. Billing "
    "information is kept 7 years. Contact privacy@1crm.com; our Data Protection Officer: "
    "dpo@1crm.com."
)
ONECRM_INTEGRATED_WORDING = (
    "Yes, connect my account with this service and let 1CRM store my name, e-mail address and "
    "the other profile information it makes available, as the privacy policy describes."
)
ONECRM_BILLING_KEPT = (
    "Billing information is kept for 7 years, to comply with our legal obligations, resolve "
    "disputes and enforce our agreements"
)


def onecrm(ctx: TenantContext) -> None:
    """1CRM (seed 001): the Service on contract, improvements, analytics and promotions on
    legitimate interests (promotions stop on an objection or opt-out; administrative mail
    goes on), sign-in through an Integrated Service on consent, billing kept 7 years on
    erasure, Do Not Track recorded only.

    Children under 18 are set by `pledge tenant children`."""
    _notice(ctx, "privacy", "privacy_notice", "Privacy policy", ONECRM_PRIVACY_NOTICE)
    _notice(
        ctx,
        "integrated-consent",
        "consent_wording",
        "Integrated Service consent",
        ONECRM_INTEGRATED_WORDING,
    )
    purpose = partial(_purpose, ctx)
    contact = ["user.contact", "user.name"]
    purpose(
        "operations",
        "Operate, maintain and provide the Service and its support",
        "Contract",
        data_categories=[*contact, "user.account", "user.content"],
        channels=["email", "phone", "web"],
    )
    purpose(
        "billing",
        "Billing",
        "Contract",
        data_categories=[*contact, "user.financial"],
        channels=["email", "post"],
    )
    purpose(
        "administrative",
        "Business-essential and administrative messages about the Service",
        "Contract",
        data_categories=["user.contact.email"],
        channels=["email"],
    )
    purpose(
        "promotions",
        "Updates on promotions and events",
        LI,
        data_categories=contact,
        channels=["email"],
        is_marketing=True,
        legitimate_interest_note=(
            "to send updates on promotions and events relating to products and services "
            "offered by us and by third parties we work with"
        ),
    )
    purpose(
        "improvements",
        "Understand usage trends and improve the Service",
        LI,
        data_categories=["user.behavior", "user.device"],
        legitimate_interest_note="to improve the Service and develop new products and features",
    )
    purpose(
        "analytics",
        "Measure traffic on the public site (Google Analytics)",
        LI,
        data_categories=["user.behavior.browsing_history", "user.device"],
        channels=["web"],
        legitimate_interest_note="to administer the Site and resolve technical issues",
    )
    purpose(
        "integrated-service",
        "Register or sign in through an Integrated Service",
        "Consent",
        data_categories=[*contact, "user.account"],
        consent_notice="integrated-consent",
    )
    point = partial(_point, ctx)
    point(
        "registration",
        "Account registration",
        "web_form",
        "operations",
        "billing",
        "administrative",
        "promotions",
    )
    point(
        "integrated-sign-in",
        "Sign-in with an Integrated Service (such as Google)",
        "integrated_service",
        "integrated-service",
        "operations",
        wording={"integrated-service": "integrated-consent"},
    )
    point("support-email", "Customer-service requests by e-mail", "email", "operations")
    point("support-phone", "Customer-service requests by phone", "phone_call", "operations")
    point("site-chat", "The web site chat", "live_chat", "operations")
    point("website", "Visitors to the public Site", "website_visit", "analytics", "improvements")
    topics.create_topic(ctx, slug="promotions", name="Promotions and events", purpose="promotions")
    topics.create_topic(ctx, slug="service", name="Service messages", purpose="administrative")
    # §12: "billing information is retained for a period of 7 years". The class is kept on
    # erasure and erased by the worker 7 years after it (counted from the erasure, not from
    # each record's provision: decision 0014).
    tenants.set_retention_class(
        ctx,
        "billing",
        "Billing information (7 years)",
        ONECRM_BILLING_KEPT,
        keep_for="7 years",
    )
    # §14: "EU customers' databases will be hosted in 1CRM's EU datacenter located in the
    # Netherlands" — no transfer for an EU-hosted tenant. The US service providers: the
    # policy relies on the EU-US Privacy Shield (§7), which the Court of Justice annulled in
    # 2020 (C-311/18): no mechanism is recorded until the tenant records the one it uses now.
    _recipient(ctx, "eu-datacentre", "1CRM EU data centre (Netherlands)", "sub_processor", "NL")
    _recipient(
        ctx,
        "us-service-providers",
        "Hosting and service providers in the United States",
        "sub_processor",
        "US",
    )
    _recipient(ctx, "google-analytics", "Google Analytics", "sub_processor", "US")
    # §8: "we do not currently respond to the Do Not Track signal".
    signal_settings.update_signal_settings(ctx, dnt_policy="record")


# Seed 002: Contact At Once! LLC (a processor for its Clients: Merchants and Providers).
CONTACT_AT_ONCE_PRIVACY_NOTICE = (
    "Contact At Once! privacy policy. Through our Service on our Clients' websites we collect "
    "consumers' contact information (name, e-mail address) and send the product or service "
    "information they ask for to the Client; from our Clients we collect contact details, "
    "user names and passwords to administer their accounts, answer their service requests and "
    "send them our newsletter. We use it only for the purpose for which the Client engaged "
    "us. A third-party e-mail service provider sends our e-mail. We respond to access requests "
    "within a reasonable timeframe and post a notice on this Site before a material change "
    "takes effect. Contact privacy@contactatonce.com."
)


def contact_at_once(ctx: TenantContext) -> None:
    """Contact At Once! (seed 002): consumers' requests passed to the Client they contacted,
    Clients' accounts and support on contract, the Client newsletter on a legitimate interest
    (Safe Harbor's "choice": an opt-out). No faster rights promise ("a reasonable
    timeframe")."""
    _notice(ctx, "privacy", "privacy_notice", "Privacy policy", CONTACT_AT_ONCE_PRIVACY_NOTICE)
    purpose = partial(_purpose, ctx)
    contact = ["user.contact", "user.name"]
    purpose(
        "consumer-requests",
        "Send the product or service information a consumer asked for to the Client",
        LI,
        data_categories=["user.contact.email", "user.name", "user.content"],
        legitimate_interest_note=(
            "to assist in providing services to consumers on behalf of the Client they contacted"
        ),
    )
    purpose(
        "client-accounts",
        "Administer the accounts of our Clients",
        "Contract",
        data_categories=[*contact, "user.account", "user.authorization.credentials"],
        channels=["email", "phone"],
    )
    purpose(
        "client-support",
        "Respond to customer service requests of our Clients",
        "Contract",
        data_categories=[*contact, "user.content"],
        channels=["email", "phone"],
    )
    purpose(
        "client-newsletter",
        "Newsletters to Clients",
        LI,
        data_categories=["user.contact.email", "user.name"],
        channels=["email"],
        is_marketing=True,
        legitimate_interest_note="to keep our Clients informed about our Service",
    )
    point = partial(_point, ctx)
    point("chat", "The Service on a Client's website", "live_chat", "consumer-requests")
    point(
        "customer-portal",
        "The Customer Portal (Client accounts)",
        "web_form",
        "client-accounts",
        "client-support",
        "client-newsletter",
    )
    topics.create_topic(ctx, slug="newsletter", name="Newsletter", purpose="client-newsletter")
    topics.create_topic(ctx, slug="account", name="Account messages", purpose="client-accounts")
    # Hosted in the US (Alpharetta, GA): these recipients are no transfer. Data a consumer in
    # Europe sends is collected there, not transferred; the Safe Harbor the policy names was
    # annulled in 2015 (C-362/14), so a European recipient added later records its own.
    _recipient(ctx, "email-provider", "Third-party e-mail service provider", "sub_processor", "US")
    _recipient(
        ctx, "clients", "The Merchant or Provider (our Client) you contacted", "recipient", "US"
    )


# Seed 003: Click and Resolve Pty Ltd (customer support for partners).
CLICK_AND_RESOLVE_PRIVACY_NOTICE = (
    "Click and Resolve privacy policy. We provide customer support for our partners. What "
    "you tell us when you visit our website or contact our support team (your name, e-mail "
    "address, city and country, and what you ask) is processed with your express consent, to "
    "give you the most personalised support; our servers log access information for "
    "operations and quality assurance. We send you information on products and services "
    "only on request, and you can unsubscribe. We share your information only to provide the "
    "support you asked for, with partners and affiliates under confidentiality agreements, or "
    "as the law requires, and never sell or rent it. Contact dpo@carecafe24.com."
)
CLICK_AND_RESOLVE_SUPPORT_WORDING = (
    "I consent to Click and Resolve processing the information I give and this conversation "
    "to provide the customer support I asked for, as the privacy policy describes."
)
CLICK_AND_RESOLVE_NEWS_WORDING = (
    "Yes, send me information about your products and services and your partners' that may "
    "interest me. I can unsubscribe at any time."
)


def click_and_resolve(ctx: TenantContext) -> None:
    """Click and Resolve (seed 003): support and its logs on express consent only, product
    information on request (consent), support notifications about the request made.

    Children under 18 are set by `pledge tenant children`."""
    _notice(ctx, "privacy", "privacy_notice", "Privacy policy", CLICK_AND_RESOLVE_PRIVACY_NOTICE)
    _notice(
        ctx,
        "support-consent",
        "consent_wording",
        "Customer support consent",
        CLICK_AND_RESOLVE_SUPPORT_WORDING,
    )
    _notice(
        ctx,
        "product-news-consent",
        "consent_wording",
        "Product information consent",
        CLICK_AND_RESOLVE_NEWS_WORDING,
    )
    purpose = partial(_purpose, ctx)
    contact = ["user.contact", "user.name"]
    # "For this end, you as the customer give express consent to such treatment."
    purpose(
        "customer-support",
        "Provide the customer support you asked for",
        "Consent",
        data_categories=[*contact, "user.location.imprecise", "user.content"],
        channels=["email", "phone", "sms"],
        consent_notice="support-consent",
    )
    purpose(
        "service-logs",
        "Operations and quality assurance (server logs)",
        "Consent",
        data_categories=["user.device", "user.contact.email", "user.contact.phone_number"],
        consent_notice="support-consent",
    )
    purpose(
        "product-news",
        "Information about our and our partners' products and services, on request",
        "Consent",
        data_categories=contact,
        channels=["email"],
        is_marketing=True,
        consent_notice="product-news-consent",
    )
    # "emails and other messages related to the website or customer support services": about
    # the support the person asked for, so necessary for it, not marketing.
    purpose(
        "support-notifications",
        "Messages about your support request",
        "Contract",
        data_categories=contact,
        channels=["email", "sms", "phone", "post"],
    )
    point = partial(_point, ctx)
    support = {"customer-support": "support-consent", "service-logs": "support-consent"}
    point(
        "support-contact",
        "Contacting our support team (here or on a partner's website)",
        "web_form",
        "customer-support",
        "service-logs",
        "support-notifications",
        wording=support,
    )
    point(
        "support-chat",
        "Live chat with our support team",
        "live_chat",
        "customer-support",
        "support-notifications",
        wording=support,
    )
    point(
        "product-news",
        "Request for product information",
        "newsletter_signup",
        "product-news",
        wording={"product-news": "product-news-consent"},
    )
    topics.create_topic(ctx, slug="product-news", name="Product news", purpose="product-news")
    topics.create_topic(
        ctx, slug="support", name="Support notifications", purpose="support-notifications"
    )
    # "partners, subsidiaries or affiliates that work with the Company or on behalf of the
    # Company, under confidentiality agreements" — in Australia, as the company is.
    _recipient(
        ctx,
        "partners",
        "Partners, subsidiaries and affiliates (under confidentiality agreements)",
        "recipient",
        "AU",
    )


@dataclass(frozen=True)
class Preset:
    """A seed's practice: `configure` sets up an existing tenant; the rest are the defaults
    for what only a tenant's creation sets. Called like `configure`."""

    configure: Callable[[TenantContext], None]
    description: str  # one line, for `pledge tenant presets`
    jurisdictions: tuple[str, ...]
    region: str
    phone_region: str
    privacy_contact: str

    def __call__(self, ctx: TenantContext) -> None:
        self.configure(ctx)


PRESETS: dict[str, Preset] = {
    "one-click": Preset(
        one_click,
        "One Click System (seed 000): ads on consent, erasure in a month",
        ("AU", "EU", "UK", "CH", "US-CA", "US-CO", "US-CT", "US-UT", "US-VA"),
        "AU",
        "AU",
        "support@oneclicksystem.ai",
    ),
    "onecrm": Preset(
        onecrm,
        "1CRM (seed 001): promotions on legitimate interest, billing kept",
        ("EU", "US-CA"),
        "EU",
        "CA",
        "privacy@1crm.com (Data Protection Officer: dpo@1crm.com)",
    ),
    "contact-at-once": Preset(
        contact_at_once,
        "Contact At Once! (seed 002): a US chat service for merchants",
        ("EU", "UK", "CH"),
        "US",
        "US",
        "Contact At Once! LLC, 11675 Great Oaks Way, Suite 350, Alpharetta, GA 30022, USA; "
        "+1-678-648-6961; privacy@contactatonce.com",
    ),
    "click-and-resolve": Preset(
        click_and_resolve,
        "Click and Resolve (seed 003): customer support on consent",
        ("AU", "EU"),
        "AU",
        "AU",
        "dpo@carecafe24.com",
    ),
    "clik": Preset(
        clik,
        "Clik Limited (seed 004): a lawful basis per collection channel",
        ("UK",),
        "UK",
        "GB",
        CLIK_PRIVACY_CONTACT,
    ),
}


def get_preset(name: str) -> Preset:
    """The preset called `name`, or InvalidInput naming the known ones."""
    preset = PRESETS.get(name)
    if preset is None:
        raise InvalidInput(f"unknown preset {name[:40]!r} (known: {', '.join(PRESETS)})")
    return preset


def create_tenant(
    session: Session,
    keystore: KeyStore,
    preset_name: str,
    *,
    slug: str,
    name: str,
    jurisdictions: Sequence[str] | None = None,
    region: str | None = None,
    phone_region: str | None = None,
    privacy_contact: str | None = None,
    retention_classes: dict[str, str] | None = None,
    exempt_on_erasure: dict[str, str] | None = None,
    require_totp: bool = False,
    actor: Actor = OPERATOR,
) -> Tenant:
    """`tenants.create_tenant` with the preset applied in the same transaction (the caller's:
    all or nothing). What is not given (None) comes from the preset."""
    preset = get_preset(preset_name)
    tenant = tenants.create_tenant(
        session,
        keystore,
        slug=slug,
        name=name,
        jurisdictions=preset.jurisdictions if jurisdictions is None else jurisdictions,
        region=preset.region if region is None else region,
        phone_region=preset.phone_region if phone_region is None else phone_region,
        require_totp=require_totp,
        retention_classes=retention_classes,
        exempt_on_erasure=exempt_on_erasure,
        privacy_contact=preset.privacy_contact if privacy_contact is None else privacy_contact,
        actor=actor,
    )
    preset(TenantContext(session, keystore, tenant, actor))
    return tenant
