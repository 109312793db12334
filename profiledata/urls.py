from django.urls import path

from profiledata import views

app_name = "profiledata"

urlpatterns = [
    path("", views.overview, name="overview"),
    path("add/", views.add_data, name="add"),
    path("datasets/<slug:dataset_id>/delete/", views.dataset_delete, name="dataset-delete"),
]
