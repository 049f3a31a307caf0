"""Forms of the console: the fleet list's filter form, read from the query string.

The form is the one place where the list's URL parameters are validated. An unknown value
(a zone that was removed, a hand-typed state) is dropped rather than answered with an error
page, because these URLs are pasted into tickets and outlive the data they were made from.
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.http import QueryDict

from diagnostics.matrix.base import CATEGORIES
from diagnostics.models import RouterStatus
from vrconsole.dashboard import queries
from vrconsole.dashboard.queries import FleetCriteria, PairFilter, RemovedFilter
from vrconsole.models import RouterState

PER_PAGE_CHOICES = (50, 100, 250, 500)
DEFAULT_PER_PAGE = 100


def _yes_no_choices(subject: str) -> list[tuple[str, str]]:
    return [("", f"{subject}: any"), ("yes", f"{subject}: yes"), ("no", f"{subject}: no")]


def _yes_no(value: str) -> bool | None:
    return {"yes": True, "no": False}.get(value)


class FleetFilterForm(forms.Form):
    """The GET form above the router list; every field is optional."""

    q = forms.CharField(required=False, max_length=200, label="Search")
    region = forms.TypedChoiceField(required=False, coerce=int, empty_value=None)
    zone = forms.TypedChoiceField(required=False, coerce=int, empty_value=None)
    state = forms.ChoiceField(required=False)
    hypervisor = forms.ChoiceField(required=False)
    account = forms.CharField(required=False, max_length=255)
    network = forms.CharField(required=False, max_length=255, label="Network")
    vpc = forms.CharField(required=False, max_length=255, label="VPC")
    redundant = forms.ChoiceField(
        required=False,
        choices=[
            ("", "redundancy: any"),
            (PairFilter.YES, "redundant"),
            (PairFilter.NO, "single"),
            (PairFilter.SPLIT_BRAIN, "split brain (2 PRIMARY)"),
            (PairFilter.NO_PRIMARY, "no PRIMARY"),
        ],
    )
    upgrade = forms.ChoiceField(required=False, choices=_yes_no_choices("needs upgrade"), label="Needs upgrade")
    healthfailed = forms.ChoiceField(required=False, choices=_yes_no_choices("checks failed"), label="Checks failed")
    stuck = forms.ChoiceField(required=False, choices=[("", "stuck: any"), ("yes", "stuck only")], label="Stuck")
    removed = forms.ChoiceField(
        required=False,
        choices=[
            (RemovedFilter.HIDE, "hide removed"),
            (RemovedFilter.INCLUDE, "include removed"),
            (RemovedFilter.ONLY, "only removed"),
        ],
    )
    status = forms.ChoiceField(
        required=False,
        choices=[("", "status: any"), *[(status, f"status: {status}") for status in RouterStatus.values]],
        label="Status",
    )
    category = forms.ChoiceField(
        required=False, choices=[("", "finding: any"), *[(name, f"finding: {name}") for name in CATEGORIES]]
    )
    sort = forms.CharField(required=False, max_length=32, widget=forms.HiddenInput)
    per_page = forms.TypedChoiceField(
        required=False,
        coerce=int,
        empty_value=DEFAULT_PER_PAGE,  # type: ignore[arg-type]  # an int default for an int field
        choices=[(n, f"{n} / page") for n in PER_PAGE_CHOICES],
        label="Rows",
    )

    def __init__(self, data: QueryDict | None = None) -> None:
        if data is not None and not data.get("per_page"):
            # A bound form ignores initial values; without this the page-size menu would show 50.
            data = data.copy()
            data["per_page"] = str(DEFAULT_PER_PAGE)
        super().__init__(data)
        self._choices("region", [("", "all regions"), *queries.region_choices()])
        self._choices("zone", [("", "all zones"), *queries.zone_choices()])
        self._choices("state", [("", "any state"), *RouterState.choices])
        hypervisors = queries.hypervisor_choices()
        requested = data.get("hypervisor", "") if data is not None else ""
        if requested and requested not in hypervisors:
            # A hypervisor no host reports any more can still be filtered on from a shared URL.
            hypervisors.append(requested)
        self._choices("hypervisor", [("", "any hypervisor"), *[(h, h) for h in hypervisors]])

    def _choices(self, name: str, choices: list[tuple[Any, str]]) -> None:
        field = self.fields[name]
        assert isinstance(field, forms.ChoiceField)
        field.choices = choices

    def criteria(self) -> FleetCriteria:
        """The validated filters; fields that did not validate are left out, not fatal."""
        self.is_valid()
        data = {name: value for name, value in self.cleaned_data.items() if name not in self.errors}
        return FleetCriteria(
            q=data.get("q") or "",
            region=data.get("region"),
            zone=data.get("zone"),
            state=data.get("state") or "",
            hypervisor=data.get("hypervisor") or "",
            account=(data.get("account") or "").strip(),
            network=(data.get("network") or "").strip(),
            vpc=(data.get("vpc") or "").strip(),
            redundant=data.get("redundant") or "",
            upgrade=_yes_no(data.get("upgrade") or ""),
            healthfailed=_yes_no(data.get("healthfailed") or ""),
            stuck=data.get("stuck") == "yes",
            removed=data.get("removed") or RemovedFilter.HIDE,
            status=data.get("status") or "",
            category=data.get("category") or "",
            sort=queries.normalise_sort(data.get("sort") or queries.DEFAULT_SORT),
        )

    def rows_per_page(self) -> int:
        self.is_valid()
        if "per_page" in self.errors:
            return DEFAULT_PER_PAGE
        return self.cleaned_data.get("per_page") or DEFAULT_PER_PAGE
