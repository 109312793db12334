from __future__ import annotations

from django.urls import path

from exports import views

app_name = "exports"

urlpatterns = [
    path("", views.export_list, name="list"),
    path("new/", views.export_create, name="create"),
    path("datasets/", views.dataset_list, name="datasets"),
    path("plans/<int:pk>/", views.export_plan, name="plan"),
    path("<int:pk>/", views.export_detail, name="detail"),
    path("<int:pk>/row/", views.export_row, name="row"),
    path("<int:pk>/include-empty-profiles/", views.export_include_empty, name="include-empty"),
    path("<int:pk>/files/<slug:file_id>/<path:name>/preview/", views.export_preview,
         name="preview"),
    path("<int:pk>/files/<slug:file_id>/<path:name>/download/", views.export_download,
         name="download"),
    path("<int:pk>/files/<slug:file_id>/<path:name>/csv/", views.export_download_csv,
         name="csv"),
]
