"""Ticket-ready reports of a router: who it is, how it is, what is wrong and what to do, with links.

The router page's "Copy for ticket" and `manage.py triage ROUTER --format markdown` print the
same report, built once (`build_report`) and written as Markdown or as plain text. Evidence is
router output: its control characters are written as visible `\\xNN` marks, and in Markdown it
sits in a code fence longer than any run of backticks it contains, so nothing it carries can
turn into markup in the ticket.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime

from django.conf import settings
from django.urls import reverse
from django.utils import timezone

from diagnostics.models import Collection, CollectionStatus, Finding, RouterHealth, RouterStatus
from diagnostics.router_status import effective_status, stale_before
from vrconsole.models import Router

# Control characters other than newline and tab (the template filter of the pages does the same).
_CONTROL_CHARS = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")
_MARKDOWN_SPECIALS = re.compile(r"([\\`*_{}\[\]<>()#+!|~])")
# Evidence lines per finding in a report; a ticket wants the gist, the page keeps the rest.
REPORT_EVIDENCE_LINES = 20
REPORT_LINE_CHARS = 400


def visible(text: object) -> str:
    """The text with control characters (tab and newline aside) written as `\\xNN`."""
    return _CONTROL_CHARS.sub(lambda match: f"\\x{ord(match.group()):02x}", str(text))


def absolute_url(path: str) -> str:
    """A console path as the paged person reaches it: CONSOLE_URL in front when it is set."""
    return f"{settings.CONSOLE_URL}{path}"


def utc(moment: datetime | None) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC") if moment is not None else "never"


def span(seconds: float) -> str:
    """A duration in words an operator reads at a glance: 45 s, 12 min, 3 h 12 min, 2 d 4 h."""
    seconds = max(0, int(seconds))
    if seconds < 60:
        return f"{seconds} s"
    minutes = seconds // 60
    if minutes < 60:
        return f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    if hours < 48:
        return f"{hours} h {minutes} min" if minutes else f"{hours} h"
    days, hours = divmod(hours, 24)
    return f"{days} d {hours} h" if hours else f"{days} d"


def bounded_evidence(evidence: list[str]) -> list[str]:
    lines = [visible(line)[:REPORT_LINE_CHARS] for line in evidence[:REPORT_EVIDENCE_LINES]]
    if len(evidence) > REPORT_EVIDENCE_LINES:
        lines.append(f"… {len(evidence) - REPORT_EVIDENCE_LINES} more line(s) on the router page")
    return lines


@dataclass(frozen=True)
class TicketReport:
    """What a ticket needs about one router, read from the database at one moment."""

    router: Router
    status: str
    status_since: datetime | None
    findings: list[Finding]
    collection: Collection | None
    generated_at: datetime
    router_url: str
    collection_url: str

    @property
    def identity(self) -> list[tuple[str, str]]:
        """(label, value) rows of who the router is."""
        router = self.router
        if router.vpc is not None:
            network = f"VPC {router.vpc.name}" + (f", tier {router.network.name}" if router.network else "")
        elif router.network is not None:
            network = f"network {router.network.name}"
        else:
            network = "—"
        host = router.host.name if router.host is not None else router.host_name
        return [
            ("Router", router.name or router.uuid),
            ("UUID", router.uuid),
            ("Zone", router.zone.name if router.zone is not None else "—"),
            ("Account", router.account or router.project or "—"),
            ("Network", network),
            ("Host", host or "—"),
            ("Version", router.template_version or "—"),
        ]

    @property
    def state_line(self) -> str:
        router = self.router
        state = router.state or "Unknown"
        if router.state_since is not None:
            state += f" since {utc(router.state_since)}"
        if router.is_redundant:
            state += f", redundant {router.redundant_state or 'UNKNOWN'}"
        status = self.status
        if self.status_since is not None and status != RouterStatus.UNKNOWN:
            since = self.generated_at - self.status_since
            status += f" since {utc(self.status_since)} ({span(since.total_seconds())})"
        return f"{state}; console status {status}"

    @property
    def collected_line(self) -> str:
        collection = self.collection
        if collection is None:
            return "never collected"
        moment = collection.finished or collection.created
        age = span((self.generated_at - moment).total_seconds())
        line = f"{utc(moment)} ({age} ago), {collection.status}"
        if collection.status != CollectionStatus.SUCCEEDED and collection.reason:
            line += f": {collection.reason}"
        if moment < stale_before(self.generated_at):
            line += " — stale, older than two sweep intervals"
        return line


def build_report(router: Router, now: datetime | None = None) -> TicketReport:
    """The report of the router as the database has it now."""
    now = now or timezone.now()
    router = Router.objects.select_related("zone", "host", "network", "vpc").get(pk=router.pk)
    health = RouterHealth.objects.filter(router=router).first()
    collection = (
        Collection.objects.filter(router=router)
        .exclude(status__in=[CollectionStatus.PENDING, CollectionStatus.RUNNING])
        .defer("facts", "traceback")
        .first()
    )
    return TicketReport(
        router=router,
        status=effective_status(health, now),
        status_since=health.status_since if health is not None else None,
        findings=list(Finding.objects.open().for_router(router).worst_first()),
        collection=collection,
        generated_at=now,
        router_url=absolute_url(reverse("router-detail", args=[router.uuid])),
        collection_url=absolute_url(reverse("collection-detail", args=[collection.pk])) if collection else "",
    )


def acknowledgement_text(finding: Finding) -> str:
    """ "acknowledged by ana 2026-… until …: comment", or "" when not acknowledged now."""
    if not finding.is_acknowledged:
        return ""
    text = f"acknowledged by {finding.acknowledged_by_name or 'someone'} at {utc(finding.acknowledged_at)}"
    if finding.acknowledged_until is not None:
        text += f" until {utc(finding.acknowledged_until)}"
    if finding.acknowledgement_comment:
        text += f": {visible(finding.acknowledgement_comment)}"
    return text


def _md(text: str) -> str:
    """Text in Markdown with every character that could become markup escaped."""
    return _MARKDOWN_SPECIALS.sub(r"\\\1", visible(text)).replace("\n", "  \n")


def _fence(lines: list[str]) -> str:
    longest = max((len(run) for line in lines for run in re.findall(r"`+", line)), default=0)
    fence = "`" * max(3, longest + 1)
    return "\n".join([fence, *lines, fence])


def _link(url: str) -> str:
    """An absolute URL as a Markdown autolink; a bare path (CONSOLE_URL unset) as code."""
    return f"<{url}>" if url.startswith(("http://", "https://")) else f"`{url}`"


def to_markdown(report: TicketReport) -> str:
    """The report as Markdown (a ticket system, a chat, a wiki)."""
    router = report.router
    out = [f"### Router {_md(router.name or router.uuid)}: {len(report.findings)} open finding(s)", ""]
    out += [f"- **{label}:** {_md(value)}" for label, value in report.identity]
    out += [f"- **State:** {_md(report.state_line)}", f"- **Collected:** {_md(report.collected_line)}", ""]
    if report.findings:
        out.append("#### Open findings (worst first)")
        for finding in report.findings:
            out += [
                "",
                f"**{finding.severity.upper()}** `{finding.rule}` ({_md(', '.join(finding.category_list))}): {_md(finding.title)}",
            ]
            out.append(f"- failing since {utc(finding.opened_at)}, last seen {utc(finding.last_seen)}")
            if finding.reopened:
                out.append(f"- flapping: reopened {finding.reopened} time(s)")
            acknowledged = acknowledgement_text(finding)
            if acknowledged:
                out.append(f"- {_md(acknowledged)}")
            if finding.evidence:
                out += ["", _fence(bounded_evidence(finding.evidence))]
            out += ["", f"**Fix:** {_md(finding.remediation)}"]
    else:
        out.append("No open finding.")
    out += ["", f"Router page: {_link(report.router_url)}"]
    if report.collection_url:
        out.append(f"Collection: {_link(report.collection_url)}")
    out.append(f"_Report of {utc(report.generated_at)}, VR Console._")
    return "\n".join(out) + "\n"


def to_text(report: TicketReport) -> str:
    """The report as plain text (a ticket system without Markdown, an e-mail)."""
    router = report.router
    out = [f"Router {visible(router.name or router.uuid)}: {len(report.findings)} open finding(s)", ""]
    width = max(len(label) for label, _ in report.identity)
    out += [f"{label + ':':<{width + 1}} {visible(value)}" for label, value in report.identity]
    out += [f"{'State:':<{width + 1}} {report.state_line}", f"{'Collected:':<{width + 1}} {report.collected_line}"]
    out.append("")
    if report.findings:
        out.append("Open findings (worst first)")
        for finding in report.findings:
            out += [
                "",
                f"[{finding.severity.upper()}] {finding.rule} ({', '.join(finding.category_list)}): {visible(finding.title)}",
            ]
            out.append(f"  failing since {utc(finding.opened_at)}, last seen {utc(finding.last_seen)}")
            if finding.reopened:
                out.append(f"  flapping: reopened {finding.reopened} time(s)")
            acknowledged = acknowledgement_text(finding)
            if acknowledged:
                out.append(f"  {acknowledged}")
            out += [f"  | {line}" for line in bounded_evidence(finding.evidence)]
            out.append(f"  Fix: {visible(finding.remediation)}")
    else:
        out.append("No open finding.")
    out += ["", f"Router page: {report.router_url}"]
    if report.collection_url:
        out.append(f"Collection: {report.collection_url}")
    out.append(f"Report of {utc(report.generated_at)}, VR Console.")
    return "\n".join(out) + "\n"
