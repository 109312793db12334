from __future__ import annotations

from django.urls import path

from jobs import views

app_name = "jobs"

urlpatterns = [
    path("", views.job_list, name="list"),
    path("<int:pk>/", views.job_detail, name="detail"),
    path("<int:pk>/row/", views.job_row, name="row"),
    path("<int:pk>/cancel/", views.job_cancel, name="cancel"),
]
