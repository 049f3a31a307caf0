"""Template tags of the router page's actions panel and error-triage evidence panel.

`action_panel` plans every action for the router (what each would do, its warnings, why
one is refused) and lists the recent runs; `failure_panel` says why the router deserves a
look at CloudStack's record and gives the latest one read; `remedy_action` turns a
verdict's action into the link that opens its confirmation (operators) or names it
(viewers). Addresses reach the page script through data-* attributes, never in the script.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django import template
from django.urls import reverse
from django.utils.html import format_html
from django.utils.safestring import SafeString

from diagnostics.actions import ACTIONS, ActionPlan, ActionRefused, page_actions, parse_action_name
from diagnostics.evaluate import current_failure_evidence
from diagnostics.failure_evidence import failure_conditions
from diagnostics.live_state import RECENT_ACTION_RUNS
from diagnostics.models import ActionRun, FailureEvidence
from diagnostics.routing import router_actions_socket_path
from vrconsole.models import Router

register = template.Library()


@dataclass(frozen=True)
class ActionPanel:
    """What the actions partial renders."""

    api_plans: list[ActionPlan]
    service_plans: list[ActionPlan]
    runs: list[ActionRun]
    action_url: str
    offerings_url: str
    socket_path: str

    @property
    def all_plans(self) -> list[ActionPlan]:
        return [*self.api_plans, *self.service_plans]


@register.simple_tag
def action_panel(router: Router) -> ActionPanel:
    """The planned actions (API ones, then service restarts) and the router's recent runs."""
    plans = page_actions(router)
    runs = list(
        ActionRun.objects.filter(router=router, dry_run=False).select_related("evidence_collection")[
            :RECENT_ACTION_RUNS
        ]
    )
    return ActionPanel(
        api_plans=[plan for plan in plans if plan.spec.key != "restart-service"],
        service_plans=[plan for plan in plans if plan.spec.key == "restart-service"],
        runs=runs,
        action_url=reverse("router-action", args=[router.pk]),
        offerings_url=reverse("router-offerings", args=[router.pk]),
        socket_path=router_actions_socket_path(router.pk),
    )


@dataclass(frozen=True)
class FailurePanel:
    """What the evidence partial renders: why look, and the latest read of CloudStack's record."""

    conditions: list[str]
    evidence: FailureEvidence | None
    in_flight: FailureEvidence | None
    evidence_url: str

    @property
    def shown(self) -> bool:
        return bool(self.conditions or self.evidence or self.in_flight)

    @property
    def log_servers(self) -> list[dict[str, Any]]:
        log = self.evidence.management_log if self.evidence is not None else {}
        servers = log.get("servers", []) if isinstance(log, dict) else []
        return [server for server in servers if isinstance(server, dict)]

    @property
    def log_configured(self) -> bool:
        log = self.evidence.management_log if self.evidence is not None else {}
        return bool(isinstance(log, dict) and log.get("configured"))


@register.simple_tag
def failure_panel(router: Router) -> FailurePanel:
    """Why this router deserves CloudStack's record, and the latest one read for its current state."""
    return FailurePanel(
        conditions=failure_conditions(router),
        evidence=current_failure_evidence(router),
        in_flight=FailureEvidence.objects.in_flight().filter(router=router).first(),
        evidence_url=reverse("router-failure-evidence", args=[router.pk]),
    )


@register.simple_tag(takes_context=True)
def remedy_action(context: template.Context, name: str) -> SafeString:
    """The link that opens the action's confirmation for an operator; its name for anyone else."""
    try:
        key, argument = parse_action_name(name)
    except ActionRefused:
        return format_html("")
    spec = ACTIONS[key]
    label = f"Restart {argument}" if key == "restart-service" else spec.label
    if context.get("user_is_operator"):
        return format_html(
            '<p class="remedy-action">▶ <a href="#actions" data-open-action="{}">{}</a> '
            '<span class="muted">— opens its confirmation: what will happen, a reason, evidence first</span></p>',
            name,
            label,
        )
    return format_html('<p class="remedy-action muted">An operator can run it from this page: {}</p>', label)
