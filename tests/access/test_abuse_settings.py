"""The abuse-limit settings are checked when they are read: a rate `limits` would misread
(a zero, a second limit it drops) or a trusted proxy uvicorn would silently ignore must stop
the start with a message naming the setting, not quietly lock everyone out or let nobody be
told apart."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from pledge.core.config import Settings


@pytest.mark.parametrize("field", ["sign_in_rate", "public_form_rate"])
@pytest.mark.parametrize(
    "value",
    [
        "0/minute",  # `limits` takes it: every attempt refused, sign-in closed to all
        "20/0 minutes",  # `limits` reads 20 a minute
        "20/00 minutes",
        "20/minute;5/second",  # `limits.parse` keeps the first, drops the second
        "20/minute, 100/hour",
        "twenty a minute",
        "20/fortnight",
        "",
    ],
)
def test_a_rate_the_limits_would_misread_is_refused(field: str, value: str) -> None:
    with pytest.raises(ValidationError) as refused:
        Settings.model_validate({field: value})
    assert field in str(refused.value)
    assert "a rate such as '20/minute' or '30/10 minutes'" in str(refused.value)


@pytest.mark.parametrize("value", ["20/minute", "30/10 minutes", "20 per minute", "5/Hour"])
def test_the_documented_notations_are_taken(value: str) -> None:
    assert Settings(sign_in_rate=value, public_form_rate=value).sign_in_rate == value


@pytest.mark.parametrize(
    "value",
    [
        "10.0.0.300",  # a typo: uvicorn would keep it as a name no peer has
        "10.0.0.5/24",  # host bits set: uvicorn's ip_network refuses it, the same way
        "proxy.internal",  # names are not resolved
        "*",  # uvicorn's "trust every peer": any client would pick its own address
        "10.0.0.5, nonsense",
    ],
)
def test_a_trusted_proxy_that_is_no_address_or_network_is_refused(value: str) -> None:
    with pytest.raises(ValidationError) as refused:
        Settings(forwarded_allow_ips=value)
    assert "forwarded_allow_ips" in str(refused.value)


@pytest.mark.parametrize(
    "value", ["10.0.0.5", "10.0.0.0/24, 2001:db8::/32", " 10.0.0.5 ,", "", "::1"]
)
def test_addresses_and_networks_are_taken_as_proxies(value: str) -> None:
    assert Settings(forwarded_allow_ips=value).forwarded_allow_ips == value
