from django.apps import AppConfig


class AccountsConfig(AppConfig):
    name = "tikting.accounts"
    label = "accounts"
