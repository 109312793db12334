from __future__ import annotations

from django.urls import path

from segments import views

app_name = "segments"

urlpatterns = [
    path("", views.segment_list, name="list"),
    path("new/", views.segment_create, name="create"),
    path("run/", views.segment_run, name="run"),
    path("validate/", views.segment_validate, name="validate"),
    path("convert/", views.segment_convert, name="convert"),
    path("estimate/", views.segment_estimate_start, name="estimate"),
    path("estimate/<int:job_id>/", views.segment_estimate_panel, name="estimate-panel"),
    path("estimate/<int:job_id>/preview/", views.segment_preview_page, name="preview-page"),
    path("estimate/<int:job_id>/profile/", views.segment_profile, name="profile"),
    path("<int:pk>/", views.segment_edit, name="edit"),
    path("<int:pk>/versions/", views.segment_versions, name="versions"),
    path("<int:pk>/versions/<int:number>/restore/", views.segment_version_restore,
         name="restore"),
    path("<int:pk>/delete/", views.segment_delete_view, name="delete"),
]
