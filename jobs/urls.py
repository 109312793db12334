from __future__ import annotations

from django.urls import path

from jobs import views

app_name = "jobs"

urlpatterns = [
    path("", views.job_list, name="list"),
    path("jobs.csv", views.job_list_csv, name="csv"),
    path("alerts/", views.alert_list, name="alerts"),
    path("alerts/acknowledge/", views.alerts_acknowledge_all, name="alerts-acknowledge"),
    path("alerts/<int:pk>/acknowledge/", views.alert_acknowledge, name="alert-acknowledge"),
    path("<int:pk>/", views.job_detail, name="detail"),
    path("<int:pk>/row/", views.job_row, name="row"),
    path("<int:pk>/cancel/", views.job_cancel, name="cancel"),
]
