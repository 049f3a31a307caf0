"""Template tag of the router page's "Copy for ticket": the report as Markdown and as plain text."""

from __future__ import annotations

from django import template

from diagnostics import reports
from vrconsole.models import Router

register = template.Library()


@register.simple_tag
def ticket_report(router: Router) -> dict[str, str]:
    """The router's ticket report in both forms (diagnostics.reports), for the copy buttons."""
    report = reports.build_report(router)
    return {"markdown": reports.to_markdown(report), "text": reports.to_text(report)}
