"""/discovery/: the CMDB health page, its drill-down lists and actions, and the discovery runs."""

from django.urls import path

from . import views

app_name = "discovery"
urlpatterns = [
    path("", views.health, name="health"),
    path("cis/", views.ci_list, name="ci_list"),
    path("cis/register/", views.register_selected, name="register_selected"),
    path("cis/<int:ci_id>/register/", views.register, name="register"),
    path("cis/<int:ci_id>/retire/", views.retire, name="retire"),
    path("drifts/", views.drift_list, name="drift_list"),
    path("drifts/<int:drift_id>/accept/", views.accept_drift, name="accept_drift"),
    path("drifts/<int:drift_id>/reject/", views.reject_drift, name="reject_drift"),
    path("duplicates/", views.duplicate_list, name="duplicate_list"),
    path("duplicates/<int:duplicate_id>/merge/", views.merge_duplicate, name="merge_duplicate"),
    path("duplicates/<int:duplicate_id>/dismiss/", views.dismiss_duplicate, name="dismiss_duplicate"),
    path("runs/", views.run_list, name="run_list"),
    path("runs/<int:run_id>/", views.run_detail, name="run_detail"),
]
