"""Register list, board, matrix, my items, submit and edit forms."""

urlpatterns: list = []
