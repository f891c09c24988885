"""The apex's signup form. It bounds and shapes what a person typed; the rules (slug, password,
address) are the service's and identity's, so the form and the API refuse the same things."""

from django import forms

# Bounds for junk, not rules: a longer slug gets the service's own sentence about lengths.
SLUG_INPUT_MAX = 100


class SignupForm(forms.Form):
    name = forms.CharField(max_length=200, error_messages={"required": "Name your organization."})
    slug = forms.CharField(
        max_length=SLUG_INPUT_MAX, strip=False, error_messages={"required": "Choose a subdomain for its address."}
    )
    owner_name = forms.CharField(max_length=200, error_messages={"required": "Enter your name."})
    owner_email = forms.EmailField(max_length=254, error_messages={"required": "Enter your email address."})
    owner_password = forms.CharField(max_length=1024, strip=False, error_messages={"required": "Choose a password."})
