"""On-call pages: acknowledge a finding, silence findings for a maintenance window, the ticket report.

Acknowledging and silencing are operator actions: viewers see the forms' pages but are refused
(403), and every request, accepted or refused, is written to the audit log. A form with a
mistake comes back with what was typed and what is wrong, so nothing is lost.
"""

from __future__ import annotations

from datetime import datetime

from django import forms
from django.contrib.auth.models import User
from django.db.models import Q
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_http_methods, require_POST

from diagnostics import matrix, reports
from diagnostics.findings import refresh_acknowledged_count
from diagnostics.models import ACKNOWLEDGEMENT_FIELDS, Finding, RouterHealth, Silence
from vrconsole import events
from vrconsole.models import AuditEntry, Router, Zone
from vrconsole.roles import Capability, is_operator, requires

NOT_OPERATOR = "Only operators can acknowledge findings and silence them."
COMMENT_MAX = 2000
DATETIME_FORMATS = ["%Y-%m-%dT%H:%M", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M", "%Y-%m-%d %H:%M:%S"]
RECENT_SILENCES = 50


def _operator(request: HttpRequest) -> User | None:
    user = request.user
    return user if isinstance(user, User) and is_operator(user) else None


def _router_or_404(uuid: str) -> Router:
    router = Router.objects.with_uuid(uuid).select_related("zone").first()
    if router is None:
        raise Http404("No router with this uuid")
    return router


def _future(value: datetime | None, what: str) -> datetime | None:
    if value is not None and value <= timezone.now():
        raise forms.ValidationError(f"{what} is in the past (times are UTC).")
    return value


class AcknowledgeForm(forms.Form):
    """What the acknowledgement form posts: why, and optionally until when (UTC)."""

    comment = forms.CharField(max_length=COMMENT_MAX, strip=True)
    until = forms.DateTimeField(required=False, input_formats=DATETIME_FORMATS)

    def clean_until(self) -> datetime | None:
        return _future(self.cleaned_data.get("until"), "The end of the acknowledgement")


def _announce(router: Router) -> None:
    """Tell the wall the router's row reads differently (its acknowledged mark)."""
    health = RouterHealth.objects.filter(router=router).first()
    if health is None:
        return
    changed: events.FleetStatus = {
        "type": "fleet.status",
        "router_id": router.pk,
        "uuid": router.uuid,
        "name": router.name,
        "status": health.status,
        "previous_status": health.status,
        "categories": health.category_list,
    }
    events.publish(events.FLEET_GROUP, changed)


def _finding_url(router: Router, finding: Finding) -> str:
    return reverse("router-detail", args=[router.uuid]) + f"#finding-{finding.rule}"


@requires(Capability.VIEW, post=Capability.OPERATE, message=NOT_OPERATOR, audit="finding.acknowledge")
@require_http_methods(["GET", "POST"])
def acknowledge_finding(request: HttpRequest, uuid: str, rule: str) -> HttpResponse:
    """The acknowledgement form of one open finding; a valid post records it and returns to the router."""
    router = _router_or_404(uuid)
    finding = get_object_or_404(Finding, router=router, rule=rule)
    form = AcknowledgeForm(request.POST if request.method == "POST" else None)
    status = 200
    if request.method == "POST":
        user = _operator(request)
        if user is None:
            AuditEntry.record(
                "finding.acknowledge",
                user=request.user,
                router=router,
                target=rule,
                detail=NOT_OPERATOR,
                outcome="forbidden",
            )
            return render(request, "diagnostics/acknowledge.html", _ack_context(router, finding, form), status=403)
        if not finding.is_open:
            form.add_error(
                None, f"This finding resolved at {reports.utc(finding.resolved_at)}: nothing to acknowledge."
            )
        if form.is_valid():
            now = timezone.now()
            until = form.cleaned_data["until"]
            finding.acknowledge(user, form.cleaned_data["comment"], until, now)
            refresh_acknowledged_count(router, now)
            AuditEntry.record(
                "finding.acknowledge",
                user=user,
                router=router,
                target=rule,
                detail=(f"until {reports.utc(until)}: " if until else "until it resolves: ")
                + form.cleaned_data["comment"],
                outcome="ok",
            )
            _announce(router)
            return HttpResponseRedirect(_finding_url(router, finding))
        status = 400
    return render(request, "diagnostics/acknowledge.html", _ack_context(router, finding, form), status=status)


def _ack_context(router: Router, finding: Finding, form: AcknowledgeForm) -> dict[str, object]:
    return {"router": router, "finding": finding, "form": form, "not_operator": NOT_OPERATOR}


@requires(Capability.OPERATE, message=NOT_OPERATOR, audit="finding.unacknowledge")
@require_POST
def unacknowledge_finding(request: HttpRequest, uuid: str, rule: str) -> HttpResponse:
    """Take an acknowledgement back: the finding notifies again as if never acknowledged."""
    router = _router_or_404(uuid)
    finding = get_object_or_404(Finding, router=router, rule=rule)
    user = _operator(request)
    if user is None:
        AuditEntry.record(
            "finding.unacknowledge",
            user=request.user,
            router=router,
            target=rule,
            detail=NOT_OPERATOR,
            outcome="forbidden",
        )
        return HttpResponse(NOT_OPERATOR + "\n", status=403, content_type="text/plain; charset=utf-8")
    was = finding.acknowledged_by_name
    finding.clear_acknowledgement()
    finding.save(update_fields=ACKNOWLEDGEMENT_FIELDS)
    refresh_acknowledged_count(router, timezone.now())
    AuditEntry.record(
        "finding.unacknowledge",
        user=user,
        router=router,
        target=rule,
        detail=f"was acknowledged by {was or '-'}",
        outcome="ok",
    )
    _announce(router)
    return HttpResponseRedirect(_finding_url(router, finding))


class SilenceForm(forms.Form):
    """A maintenance window: what it matches (at least one of router, zone, rule, category), when, why."""

    router = forms.CharField(max_length=255, required=False, help_text="router name or uuid")
    zone = forms.CharField(max_length=255, required=False, help_text="zone name or uuid")
    rule = forms.CharField(max_length=64, required=False)
    category = forms.CharField(max_length=32, required=False)
    starts = forms.DateTimeField(required=False, input_formats=DATETIME_FORMATS, help_text="UTC; empty: now")
    ends = forms.DateTimeField(input_formats=DATETIME_FORMATS, help_text="UTC")
    reason = forms.CharField(max_length=COMMENT_MAX, strip=True)

    def clean_router(self) -> Router | None:
        text = self.cleaned_data["router"].strip()
        if not text:
            return None
        found = list(Router.objects.present().filter(Q(uuid=text) | Q(name=text))[:2])
        if not found:
            raise forms.ValidationError(f"No present router is named or has the uuid {text!r}.")
        if len(found) > 1:
            raise forms.ValidationError(f"Several routers are named {text!r}: give the uuid.")
        return found[0]

    def clean_zone(self) -> Zone | None:
        text = self.cleaned_data["zone"].strip()
        if not text:
            return None
        found = list(Zone.objects.filter(Q(uuid=text) | Q(name=text))[:2])
        if len(found) != 1:
            raise forms.ValidationError(
                f"No zone is named or has the uuid {text!r}." if not found else f"Several zones are named {text!r}."
            )
        return found[0]

    def clean_rule(self) -> str:
        text = self.cleaned_data["rule"].strip()
        if text and text not in {rule.id for rule in matrix.RULES}:
            raise forms.ValidationError(f"{text!r} is not a rule of the matrix (see the Matrix page).")
        return text

    def clean_category(self) -> str:
        text = self.cleaned_data["category"].strip()
        if text and text not in matrix.CATEGORIES:
            raise forms.ValidationError(f"{text!r} is not a category; one of {', '.join(matrix.CATEGORIES)}.")
        return text

    def clean_ends(self) -> datetime | None:
        return _future(self.cleaned_data.get("ends"), "The end")

    def clean(self) -> dict:
        data = super().clean() or {}
        if not any(data.get(name) for name in ("router", "zone", "rule", "category")) and not self.errors:
            raise forms.ValidationError("Say what to silence: a router, a zone, a rule or a category (or several).")
        starts, ends = data.get("starts") or timezone.now(), data.get("ends")
        if ends is not None and ends <= starts:
            self.add_error("ends", "The end must come after the start.")
        data["starts"] = starts
        return data


@requires(Capability.VIEW, post=Capability.OPERATE, message=NOT_OPERATOR, audit="silence.create")
@require_http_methods(["GET", "POST"])
def silences_page(request: HttpRequest) -> HttpResponse:
    """Silences in force and to come, recently ended ones, and (for operators) the form for a new one."""
    status = 200
    if request.method == "POST":
        form = SilenceForm(request.POST)
        user = _operator(request)
        if user is None:
            AuditEntry.record("silence.create", user=request.user, detail=NOT_OPERATOR, outcome="forbidden")
            status = 403
        elif form.is_valid():
            data = form.cleaned_data
            silence = Silence.objects.create(
                router=data["router"],
                zone=data["zone"],
                rule=data["rule"],
                category=data["category"],
                starts=data["starts"],
                ends=data["ends"],
                reason=data["reason"],
                created_by=user,
                username=user.get_username(),
            )
            AuditEntry.record(
                "silence.create",
                user=user,
                router=data["router"],
                target=f"silence {silence.pk}",
                detail=f"{silence.scope_text} from {reports.utc(silence.starts)} to {reports.utc(silence.ends)}: "
                f"{silence.reason}",
                outcome="ok",
            )
            return HttpResponseRedirect(reverse("silences") + f"#silence-{silence.pk}")
        else:
            status = 400
    else:
        form = SilenceForm(
            initial={key: request.GET[key] for key in ("router", "zone", "rule", "category") if key in request.GET}
        )
    now = timezone.now()
    context = {
        "form": form,
        "current": list(Silence.objects.current_or_upcoming(now).select_related("router", "zone").order_by("starts")),
        "ended": list(
            Silence.objects.filter(Q(ends__lte=now) | Q(lifted_at__isnull=False))
            .select_related("router", "zone")
            .order_by("-ends")[:RECENT_SILENCES]
        ),
        "now": now,
        "not_operator": NOT_OPERATOR,
        "rules": [rule.id for rule in matrix.RULES],
        "categories": matrix.CATEGORIES,
    }
    return render(request, "diagnostics/silences.html", context, status=status)


@requires(Capability.OPERATE, message=NOT_OPERATOR, audit="silence.lift")
@require_POST
def lift_silence(request: HttpRequest, pk: int) -> HttpResponse:
    """End a silence now."""
    silence = get_object_or_404(Silence.objects.select_related("router", "zone"), pk=pk)
    user = _operator(request)
    if user is None:
        AuditEntry.record(
            "silence.lift", user=request.user, target=f"silence {pk}", detail=NOT_OPERATOR, outcome="forbidden"
        )
        return HttpResponse(NOT_OPERATOR + "\n", status=403, content_type="text/plain; charset=utf-8")
    if silence.lifted_at is None and silence.ends > timezone.now():
        silence.lifted_at = timezone.now()
        silence.lifted_by_name = user.get_username()
        silence.save(update_fields=["lifted_at", "lifted_by_name"])
        AuditEntry.record(
            "silence.lift",
            user=user,
            router=silence.router,
            target=f"silence {pk}",
            detail=silence.scope_text,
            outcome="ok",
        )
    return HttpResponseRedirect(reverse("silences") + f"#silence-{pk}")


@requires(Capability.VIEW)
def router_report(request: HttpRequest, uuid: str, fmt: str) -> HttpResponse:
    """The router's ticket report as Markdown or plain text (what "Copy for ticket" copies)."""
    router = _router_or_404(uuid)
    report = reports.build_report(router)
    if fmt == "md":
        return HttpResponse(reports.to_markdown(report), content_type="text/markdown; charset=utf-8")
    return HttpResponse(reports.to_text(report), content_type="text/plain; charset=utf-8")
