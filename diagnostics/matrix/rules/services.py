"""Rules on the password server, the userdata web server and systemd itself.

A router that is not redundant runs `cloud-password-server@<guest address>`; a redundant
PRIMARY runs it on the gateway VIP (`@<gateway>,<guest address>`), and a BACKUP or FAULT
member stops it by design, so only a member that must serve passwords is judged. apache2
serves userdata and metadata on every guest address (one vhost-<ip>.conf each) and keeps
running on a BACKUP. A systemctl that cannot reach systemd says nothing about any unit:
that is its own finding, and the rules fall back on the process list.
"""

from __future__ import annotations

from diagnostics.matrix.base import NicView, RouterContext, Rule, Severity, Verdict
from diagnostics.matrix.evidence import facts_of, quoted, recent_lines, verdict
from diagnostics.matrix.layout import is_redundant, is_standby, own_redundant_state
from diagnostics.matrix.rules.api_state import restart_action
from diagnostics.probes import logs as log_kinds
from diagnostics.probes.services import PASSWORD_PORT, TOKEN_FILE

USERDATA_PORT = 80


def _guest_nics(ctx: RouterContext) -> list[NicView]:
    return [nic for nic in ctx.router.nics if nic.traffic_type.lower() == "guest" and nic.ip_address]


def _offers_userdata(ctx: RouterContext) -> bool:
    """The network offers the UserData service (passwords and userdata); unknown counts as offered."""
    services = {s.lower() for s in ctx.router.network_services}
    return not services or "userdata" in services


def password_addresses(ctx: RouterContext) -> list[str]:
    """Where the password server must listen: each guest address, or each gateway VIP on a PRIMARY."""
    if not _offers_userdata(ctx) or is_standby(ctx):
        return []
    if is_redundant(ctx):
        if own_redundant_state(ctx) != "PRIMARY":
            return []
        return sorted({nic.gateway for nic in _guest_nics(ctx) if nic.gateway})
    return sorted({str(nic.ip_address) for nic in _guest_nics(ctx)})


def _remedy_password(ctx: RouterContext, address: str) -> str:
    return (
        'Tenants\' password resets do not reach their VMs ("the password reset did not work"). On the router: '
        f"`systemctl restart cloud-password-server@{address}` and read /var/log/messages for 'serve_password' lines "
        f"(why it died). If it will not stay up, {restart_action(ctx.router)}."
    )


def _password_not_running(ctx: RouterContext) -> list[Verdict]:
    processes = facts_of(ctx, "processes")
    addresses = password_addresses(ctx)
    if processes is None or not addresses or processes.service("password_server").running:
        return []
    evidence = ["ps: no passwd_server_ip.py process", f"expected on {', '.join(addresses)}:{PASSWORD_PORT}"]
    services = facts_of(ctx, "services")
    if services is not None and services.systemd_answered:
        evidence += [f"systemctl: {u.instance} {u.active}/{u.sub}" for u in services.password_units][:4]
    role = own_redundant_state(ctx)
    if role:
        evidence.append(f"redundant state {role}: the PRIMARY serves passwords")
    return [
        verdict(
            PASSWORD_DOWN,
            "password server is not running",
            evidence,
            _remedy_password(ctx, addresses[0]),
            action="restart-service:password-server",
        )
    ]


PASSWORD_DOWN = Rule(
    id="password-server-not-running",
    category="password",
    severity="critical",
    summary="No passwd_server_ip.py runs on a router that must serve VM passwords (a BACKUP stops it by design).",
    remedy="systemctl restart cloud-password-server@<ip>, read /var/log/messages; restart with cleanup if it dies.",
    reads=("facts:processes", "facts:services", "facts:vrrp", "api"),
    thresholds=(),
    check=_password_not_running,
)


def _password_not_listening(ctx: RouterContext) -> list[Verdict]:
    processes, services = facts_of(ctx, "processes"), facts_of(ctx, "services")
    addresses = password_addresses(ctx)
    if processes is None or services is None or not addresses or not processes.service("password_server").running:
        return []
    missing = [a for a in addresses if not services.listens(a, PASSWORD_PORT)]
    if not missing:
        return []
    listening = sorted({f"{s.address}:{s.port}" for s in services.listening if s.port == PASSWORD_PORT})
    evidence = [
        f"nothing listens on {', '.join(f'{a}:{PASSWORD_PORT}' for a in missing)}",
        f"listening on port {PASSWORD_PORT}: {', '.join(listening) or 'nothing'}",
        *[f"systemctl: {u.instance} {u.active}/{u.sub}" for u in services.password_units][:4],
    ]
    return [
        verdict(
            PASSWORD_NOT_LISTENING,
            f"password server not listening on {missing[0]}:{PASSWORD_PORT}",
            evidence,
            _remedy_password(ctx, missing[0]),
            action="restart-service:password-server",
        )
    ]


PASSWORD_NOT_LISTENING = Rule(
    id="password-server-not-listening",
    category="password",
    severity="critical",
    summary="The password server runs but not on the address VMs ask (the guest address, or the VIP on a PRIMARY).",
    remedy="Restart cloud-password-server@<the right address>; after an IP change, restart the network with cleanup.",
    reads=("facts:processes", "facts:services", "facts:vrrp", "api"),
    thresholds=(),
    check=_password_not_listening,
)


def _token_missing(ctx: RouterContext) -> list[Verdict]:
    services = facts_of(ctx, "services")
    if services is None or services.token_present is not False or not password_addresses(ctx):
        return []
    evidence = [f"stat {TOKEN_FILE}: No such file or directory"]
    remediation = (
        "savepassword.sh must present the token the password server wrote at start, so every password save "
        "fails while the file is gone (a /tmp clean-up removes it). Restart the password server so it writes a new "
        f"one: `systemctl restart cloud-password-server@{password_addresses(ctx)[0]}`."
    )
    return [
        verdict(
            TOKEN_MISSING,
            "password server token file missing: password saves fail",
            evidence,
            remediation,
            action="restart-service:password-server",
        )
    ]


TOKEN_MISSING = Rule(
    id="password-token-missing",
    category="password",
    severity="warning",
    summary="/tmp/passwdsrvrtoken is gone, so saving a VM password on the router fails.",
    remedy="Restart the password server: it writes a new token at start.",
    reads=("facts:services", "facts:vrrp", "api"),
    thresholds=(),
    check=_token_missing,
)


def _password_errors(ctx: RouterContext) -> list[Verdict]:
    logs = facts_of(ctx, "logs")
    messages = logs.file(log_kinds.MESSAGES) if logs is not None else None
    if messages is None:
        return []
    window = ctx.threshold("config_error_window_hours")
    lines = [
        line.text for line in recent_lines(messages.lines, ctx, window) if line.kind == log_kinds.PASSWORD_SERVER_FAILED
    ]
    if not lines:
        return []
    evidence = [f"{len(lines)} password server failure line(s) in {log_kinds.MESSAGES}", *quoted(lines[-4:], 4)]
    address = (password_addresses(ctx) or ["<guest ip>"])[0]
    return [verdict(PASSWORD_ERRORS, "password server logged failures", evidence, _remedy_password(ctx, address))]


PASSWORD_ERRORS = Rule(
    id="password-server-errors-logged",
    category="password",
    severity="warning",
    summary="passwd_server_ip.py logged that it died or could not keep a password (syslog, /var/log/messages).",
    remedy="Read the lines: a full disk or a taken port 8080 are the usual causes; fix it, restart the server.",
    reads=("facts:logs",),
    thresholds=("config_error_window_hours",),
    check=_password_errors,
)


def _apache_not_running(ctx: RouterContext) -> list[Verdict]:
    processes = facts_of(ctx, "processes")
    if processes is None or not _offers_userdata(ctx) or not _guest_nics(ctx):
        return []
    if processes.service("apache2").running:
        return []
    evidence = ["ps: no apache2 process"]
    services = facts_of(ctx, "services")
    if services is not None and services.systemd_answered and services.apache2_state:
        evidence.append(f"systemctl is-active apache2: {services.apache2_state}")
    for check in ctx.router.health_checks:
        if check.get("checkname") == "webserver.service" and str(check.get("success")).lower() == "false":
            evidence.append(f"CloudStack health check webserver.service failed: {check.get('details', '')}")
    remediation = (
        'VMs booting now get no userdata or metadata ("cloud-init got no userdata"; SSH keys and hostnames not '
        "set). On the router: `apache2ctl configtest` (a broken vhost stops it), then `systemctl restart apache2`; "
        f"if the vhosts are wrong, {restart_action(ctx.router)}."
    )
    severity: Severity = "critical"
    return [
        verdict(
            APACHE_DOWN,
            "apache2 is not running: no userdata or metadata for the VMs",
            evidence,
            remediation,
            severity,
            action="restart-service:apache2",
        )
    ]


APACHE_DOWN = Rule(
    id="apache2-not-running",
    category="userdata",
    severity="critical",
    summary="apache2, which serves userdata and metadata (also on a BACKUP), is not running.",
    remedy="apache2ctl configtest, systemctl restart apache2; restart the network with cleanup if the vhosts are wrong.",
    reads=("facts:processes", "facts:services", "api"),
    thresholds=(),
    check=_apache_not_running,
)


def _vhost_missing(ctx: RouterContext) -> list[Verdict]:
    processes, services = facts_of(ctx, "processes"), facts_of(ctx, "services")
    if processes is None or services is None or not _offers_userdata(ctx) or not services.vhosts_readable:
        return []
    if not processes.service("apache2").running:
        return []  # apache2-not-running says it
    problems = []
    for nic in _guest_nics(ctx):
        address = str(nic.ip_address)
        if address not in services.vhost_addresses:
            problems.append(f"no /etc/apache2/sites-enabled/vhost-{address}.conf for guest address {address}")
        elif not services.listens(address, USERDATA_PORT):
            problems.append(f"vhost-{address}.conf present but nothing listens on {address}:{USERDATA_PORT}")
    if not problems:
        return []
    evidence = [*problems, f"vhosts present: {', '.join(services.vhost_addresses) or 'none'}"]
    remediation = (
        "VMs on that address get no userdata or metadata. A vhost is written per guest address when the address "
        "is configured (CsApache); after an IP change the old one stays and the new one is missing. "
        f"{restart_action(ctx.router)} rewrites them; then check `apache2ctl -S` on the router."
    )
    return [verdict(VHOST_MISSING, problems[0], evidence, remediation)]


VHOST_MISSING = Rule(
    id="userdata-vhost-missing",
    category="userdata",
    severity="critical",
    summary="A guest address has no apache2 vhost, or apache2 does not listen on it (after an IP change).",
    remedy="Restart the network with cleanup to rewrite the vhosts; check apache2ctl -S.",
    reads=("facts:processes", "facts:services", "api"),
    thresholds=(),
    check=_vhost_missing,
)


def _systemd_silent(ctx: RouterContext) -> list[Verdict]:
    services, vrrp = facts_of(ctx, "services"), facts_of(ctx, "vrrp")
    said = []
    if services is not None and not services.systemd_answered:
        said.append(f"systemctl (services probe): {services.systemd_error}")
    if vrrp is not None and not vrrp.systemd_answered:
        said.append(f"systemctl is-active keepalived: {vrrp.keepalived_status}")
    if not said:
        return []
    evidence = [
        *said,
        "unit states are unknown: the rules on keepalived, apache2 and the password server judge by the process list",
    ]
    remediation = (
        "systemctl on the router cannot talk to systemd (PID 1 hung, /run full, dbus gone), so CloudStack's own "
        "scripts that call it (checkrouter.sh, configure.py service restarts) fail too. Check `df /run`, "
        "`systemctl status` on the router's console; a reboot of the router (rebootRouter) clears a wedged systemd."
    )
    return [verdict(SYSTEMD_SILENT, "systemctl cannot talk to systemd", evidence, remediation)]


SYSTEMD_SILENT = Rule(
    id="systemd-not-answering",
    category="access",
    severity="warning",
    summary="systemctl on the router could not reach systemd: service states are unknown, not inactive.",
    remedy="Check /run and systemd on the router's console; rebootRouter clears a wedged systemd.",
    reads=("facts:services", "facts:vrrp"),
    thresholds=(),
    check=_systemd_silent,
)

RULES = (
    PASSWORD_DOWN,
    PASSWORD_NOT_LISTENING,
    TOKEN_MISSING,
    PASSWORD_ERRORS,
    APACHE_DOWN,
    VHOST_MISSING,
    SYSTEMD_SILENT,
)
