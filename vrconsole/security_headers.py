"""The Content-Security-Policy header, added to every response the console sends.

Django 5.2 has no CSP support of its own; the policy is one settings string
(CONTENT_SECURITY_POLICY), so a view never has to think about it. A response that already
carries the header (none today) keeps its own.
"""

from __future__ import annotations

from collections.abc import Callable

from django.conf import settings
from django.http import HttpRequest, HttpResponseBase


class ContentSecurityPolicyMiddleware:
    """Adds CONTENT_SECURITY_POLICY to every response (pages, JSON, the admin's)."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponseBase]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponseBase:
        response = self.get_response(request)
        policy = settings.CONTENT_SECURITY_POLICY
        if policy and "Content-Security-Policy" not in response.headers:
            response.headers["Content-Security-Policy"] = policy
        return response
