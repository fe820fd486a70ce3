"""URLs of the generic record pages; the project mounts them at /records/."""

from django.urls import path

from . import views as V

app_name = "records"

urlpatterns = [
    path("", V.index, name="index"),
    path("<slug:slug>/", V.record_list, name="list"),
    path("<slug:slug>/new/", V.record_create, name="create"),
    path("<slug:slug>/export.csv", V.record_export, name="export"),
    path("<slug:slug>/bulk/", V.record_bulk, name="bulk"),
    path("<slug:slug>/<int:pk>/", V.record_detail, name="detail"),
    path("<slug:slug>/<int:pk>/edit/", V.record_edit, name="edit"),
    path("<slug:slug>/<int:pk>/delete/", V.record_delete, name="delete"),
]
