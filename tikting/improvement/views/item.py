"""The item page and everything done from it."""

urlpatterns: list = []
