"""Forms of the account pages."""

from django import forms


class TokenForm(forms.Form):
    name = forms.CharField(
        max_length=100,
        label="Token name",
        help_text="What the token is for, e.g. “nightly import” or “laptop CLI”.",
        widget=forms.TextInput(attrs={"class": "form-control", "placeholder": "e.g. nightly import"}),
    )

    def clean_name(self) -> str:
        name = self.cleaned_data["name"].strip()
        if not name:
            raise forms.ValidationError("Give the token a name.")
        return name
