"""The preferences form (a channel per event kind, the daily digest) and the webhook form."""

from __future__ import annotations

from typing import Any

from django import forms

from tikting.core.events import Kind

from .models import Channel, Webhook


class PreferencesForm(forms.Form):
    daily_digest = forms.BooleanField(
        required=False,
        widget=forms.CheckboxInput(attrs={"class": "form-check-input"}),
        label="One e-mail a day (a digest) instead of one e-mail each",
        help_text="Sent each morning: what is set to e-mail since the last one, grouped by item or record.",
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        for kind in Kind:
            self.fields[f"kind_{kind.value}"] = forms.ChoiceField(
                label=kind.label, choices=Channel.choices, widget=forms.RadioSelect
            )

    def kind_fields(self) -> list[tuple[str, forms.BoundField]]:
        return [(kind.value, self[f"kind_{kind.value}"]) for kind in Kind]

    def channels(self) -> dict[str, str]:
        return {kind.value: self.cleaned_data[f"kind_{kind.value}"] for kind in Kind}


class WebhookForm(forms.Form):
    name = forms.CharField(max_length=100, widget=forms.TextInput(attrs={"class": "form-control"}))
    url = forms.CharField(
        max_length=500,
        label="URL",
        widget=forms.URLInput(attrs={"class": "form-control font-monospace"}),
        help_text="http:// or https://; public addresses only (docs/notifications.md, “Webhooks”).",
    )
    kinds = forms.MultipleChoiceField(
        choices=Kind.choices, widget=forms.CheckboxSelectMultiple, label="Event kinds"
    )
    active = forms.BooleanField(
        required=False, initial=True, widget=forms.CheckboxInput(attrs={"class": "form-check-input"})
    )
    version = forms.IntegerField(required=False, widget=forms.HiddenInput)

    @classmethod
    def for_webhook(cls, webhook: Webhook) -> WebhookForm:
        return cls(
            initial={
                "name": webhook.name,
                "url": webhook.url,
                "kinds": webhook.kinds,
                "active": webhook.active,
                "version": webhook.version,
            }
        )
